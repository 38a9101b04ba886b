# Everything a fresh machine needs: a virtual environment in .venv with the CPU build of torch
# first (a bare `torch` would pull a multi-GB CUDA build), then this package.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
# DeepSpeed ships as a source archive whose build imports torch: build it against the torch
# installed above, not a CUDA torch that build isolation would fetch.
DEEPSPEED ?= deepspeed==0.19.8
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet setuptools wheel
	$(BIN)/python -m pip install --quiet --no-build-isolation "$(DEEPSPEED)"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/llara demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/rec_baselines.py
