"""The bench scripts import each other as top-level modules (they run as `python bench/x.py`),
so their tests import them with bench/ on the path."""

import importlib
import sys

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def bench_module():
    """bench_module(name) imports bench/<name>.py; bench/ leaves the path after the module."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(REPO / "bench"))
