"""Precision: `auto` is bf16 where the hardware multiplies bf16 natively, else fp32."""

import pytest
import torch

from llara.common import device
from llara.common.device import autocast_for, uses_bf16


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


def test_the_cpu_probe_reads_the_flags():
    text = open("/proc/cpuinfo").read() if __import__("os").path.exists("/proc/cpuinfo") else ""
    expected = "avx512_bf16" in text.split() or "amx_bf16" in text.split()
    step.cpu_has_bf16.cache_clear()
    assert step.cpu_has_bf16() == expected
