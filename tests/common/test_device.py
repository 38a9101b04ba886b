"""Precision: `auto` is bf16 where the hardware multiplies bf16 natively (never emulated),
explicit settings win, and the precision asked for is the precision run, whatever dtype a
checkpoint was saved in."""

import pytest
import torch

from llara.common import device
from llara.common.device import autocast_for, base_dtype, deepspeed_bf16, native_bf16, uses_bf16
from llara.config import FinetuneConfig
from llara.model.llm import load_llm
from llara.training.inputs import run_inputs
from tests.conftest import toy_config


@pytest.mark.parametrize("native", [True, False])
def test_auto_follows_the_cpu_and_explicit_settings_win(monkeypatch, native):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: native)
    assert uses_bf16("auto", "cpu") is native
    assert uses_bf16("bf16", "cpu") and not uses_bf16("fp32", "cpu")
    with autocast_for("auto", "cpu"):
        product = torch.ones(4, 4) @ torch.ones(4, 4)
    assert product.dtype == (torch.bfloat16 if native else torch.float32)
    with autocast_for("fp32", "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.parametrize("ampere", [True, False])
def test_gpus_count_only_native_bf16(monkeypatch, ampere):
    """torch.cuda.is_bf16_supported() says True on a V100 or T4 because it counts emulation;
    every path asks native_bf16, which asks without it."""
    def supported(including_emulation: bool = True) -> bool:
        return ampere or including_emulation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    assert native_bf16("cuda") is ampere and native_bf16("cuda:1") is ampere
    assert uses_bf16("auto", "cuda") is ampere
    assert deepspeed_bf16("auto", "cuda") is ampere
    assert base_dtype("auto", "cuda", inference=True) == \
        (torch.bfloat16 if ampere else torch.float32)
    assert uses_bf16("bf16", "cuda") and deepspeed_bf16("bf16", "cuda")  # asked for: run
    assert not deepspeed_bf16("bf16", "cpu")  # CPU workers train under autocast


def test_base_weights_fp32_for_training_bf16_for_inference_where_bf16_is_on(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    assert base_dtype("bf16", "cpu") == torch.float32  # training: autocast over fp32
    assert base_dtype("auto", "cpu") == torch.float32
    assert base_dtype("bf16", "cpu", inference=True) == torch.bfloat16
    assert base_dtype("fp32", "cpu", inference=True) == torch.float32
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert base_dtype("auto", "cpu", inference=True) == torch.float32


@pytest.mark.parametrize("saved", [torch.float16, torch.bfloat16])
def test_a_half_precision_checkpoint_runs_in_the_precision_asked_for(tmp_path, saved,
                                                                    toy_inputs, monkeypatch):
    """A folder whose config says float16 (a Llama-2 release) or bfloat16 once loaded in that
    dtype with train.precision fp32: training ran in fp16 without autocast or a scaler."""
    model, tokenizer = load_llm("tiny")
    model.to(saved).save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    assert f'"{str(saved).removeprefix("torch.")}"' in (tmp_path / "hf" / "config.json").read_text()
    for precision, inference, expected in (("fp32", False, torch.float32),
                                           ("fp32", True, torch.float32),
                                           ("bf16", False, torch.float32),
                                           ("bf16", True, torch.bfloat16)):
        llm, _ = load_llm(str(tmp_path / "hf"), base_dtype(precision, "cpu", inference))
        assert {p.dtype for p in llm.parameters()} == {expected}
    config: FinetuneConfig = toy_config(toy_inputs, tmp_path / "run", precision="fp32")
    config.llm = str(tmp_path / "hf")
    inputs = run_inputs(config, "cpu", None, log=lambda *_: None, inference=True)
    assert {p.dtype for p in inputs.llm.parameters()} == {torch.float32}
