"""Precision: `auto` is bf16 where the hardware multiplies bf16 natively (never emulated),
explicit settings win, and the precision asked for is the precision run, whatever dtype a
checkpoint was saved in."""

import pytest
import torch

from llara.common import device
from llara.common.device import autocast_for, base_dtype, deepspeed_bf16, native_bf16, uses_bf16
from llara.common.errors import ConfigError
from llara.config import FinetuneConfig
from llara.config.training import FinetuneTrainConfig
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
    assert base_dtype("auto", "cuda") == \
        (torch.bfloat16 if ampere else torch.float32)
    assert uses_bf16("bf16", "cuda") and deepspeed_bf16("bf16", "cuda")  # asked for: run
    assert not deepspeed_bf16("bf16", "cpu")  # CPU workers train under autocast


def test_frozen_base_weights_are_bf16_wherever_the_run_is(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    assert base_dtype("bf16", "cpu") == base_dtype("auto", "cpu") == torch.bfloat16
    assert base_dtype("fp32", "cpu") == torch.float32
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert base_dtype("auto", "cpu") == torch.float32


def test_training_keeps_what_trains_in_fp32_over_bf16_frozen_weights(toy_inputs, tmp_path):
    from llara.model.llara import build_llara

    config = toy_config(toy_inputs, tmp_path / "run", precision="bf16", attention="auto")
    inputs = run_inputs(config, "cpu", None, log=lambda *_: None)
    model = build_llara(config, inputs.llm, inputs.tokenizer, inputs.item_table)
    trained = {p.dtype for p in model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert trained == {torch.float32} and frozen == {torch.bfloat16}
    assert inputs.llm.config._attn_implementation == "eager"  # train.attention auto, CPU


@pytest.mark.parametrize("saved", [torch.float16, torch.bfloat16])
def test_a_half_precision_checkpoint_runs_in_the_precision_asked_for(tmp_path, saved,
                                                                    toy_inputs, monkeypatch):
    """A folder whose config says float16 (a Llama-2 release) or bfloat16 once loaded in that
    dtype with train.precision fp32: training ran in fp16 without autocast or a scaler."""
    model, tokenizer = load_llm("tiny")
    model.to(saved).save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    assert f'"{str(saved).removeprefix("torch.")}"' in (tmp_path / "hf" / "config.json").read_text()
    for precision, expected in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        llm, _ = load_llm(str(tmp_path / "hf"), base_dtype(precision, "cpu"))
        assert {p.dtype for p in llm.parameters()} == {expected}
    config: FinetuneConfig = toy_config(toy_inputs, tmp_path / "run", precision="fp32")
    config.llm = str(tmp_path / "hf")
    inputs = run_inputs(config, "cpu", None, log=lambda *_: None, inference=True)
    assert {p.dtype for p in inputs.llm.parameters()} == {torch.float32}


def test_bf16_mixed_keeps_fp32_base_weights_under_bf16_autocast(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)  # asked for: no hardware check
    assert base_dtype("bf16-mixed", "cpu") == torch.float32
    assert uses_bf16("bf16-mixed", "cpu")
    with autocast_for("bf16-mixed", "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert not deepspeed_bf16("bf16-mixed", "cuda")  # DeepSpeed's bf16 engine casts weights
    with pytest.raises(ConfigError, match="train.precision"):
        FinetuneTrainConfig(precision="bf16-true")


def test_attention_is_sdpa_on_gpus_eager_on_cpus_unless_asked():
    from llara.common.device import attention_implementation

    assert attention_implementation("auto", "cuda") == attention_implementation(
        "auto", "cuda:1") == "sdpa"
    assert attention_implementation("auto", "cpu") == "eager"
    assert attention_implementation("sdpa", "cpu") == "sdpa"
    assert attention_implementation("eager", "cuda") == "eager"
    with pytest.raises(ConfigError, match="train.attention"):
        FinetuneTrainConfig(attention="flash")
