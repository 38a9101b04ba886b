"""Injection, frozen parts, and checkpoints of the LLaRA module, on a tiny random model."""

import pytest
import torch

from llara.config.projector import ProjectorConfig
from llara.config.run import FinetuneConfig
from tests.conftest import paper_method
from llara.model.batch import collate_prompts
from llara.model.llara import build_llara, load_llara
from llara.model.llm import load_llm
from llara.model.projector import PROJECTORS, build_projector
from llara.prompts.templates import TEMPLATES, render_prompt
from llara.prompts.tokenize import tokenize_prompt

TITLES = [f"Film {i}" for i in range(12)]


def make_model(seed=0):
    torch.manual_seed(seed)
    llm, tokenizer = load_llm("tiny", extra_text=TITLES)
    table = torch.randn(12, 8)
    return build_llara(paper_method(FinetuneConfig(llm="tiny")), llm, tokenizer, table), table


def make_batch(model, hybrid=True):
    prompts = []
    for history, candidates, answer in (([1, 2, 3], [4, 5, 1], 4), ([7], [8, 9, 2, 11], 9)):
        text = render_prompt(TEMPLATES["movies"][0], [TITLES[i] for i in history],
                             [TITLES[i] for i in candidates], hybrid)
        prompts.append(tokenize_prompt(model.tokenizer, text, TITLES[answer],
                                       history + candidates, hybrid, 1024))
    return collate_prompts(prompts, model.tokenizer.pad_token_id)


def test_injection_matches_a_reference_loop_and_touches_nothing_else():
    model, table = make_model()
    batch = make_batch(model)
    injected = model.embed(batch.input_ids, batch.slot_items, hybrid=True)
    plain = model.llm.get_input_embeddings()(batch.input_ids)
    expected = plain.clone()
    slot_ids = set(model.tokenizer.convert_tokens_to_ids(["[HistoryEmb]", "[CansEmb]"]))
    for row in range(batch.input_ids.shape[0]):  # the original code's per-token loop
        k = 0
        for t in range(batch.input_ids.shape[1]):
            if int(batch.input_ids[row, t]) in slot_ids:
                item = int(batch.slot_items[row, k])
                expected[row, t] = model.projector(table[item])
                k += 1
    assert torch.allclose(injected, expected, atol=1e-6)
    slots = torch.isin(batch.input_ids, model.slot_token_ids)
    assert torch.equal(injected[~slots], plain[~slots])
    assert torch.equal(model.embed(batch.input_ids, batch.slot_items, hybrid=False), plain)


def test_right_padded_rows_need_no_attention_mask():
    model, _ = make_model()
    model.eval()
    batch = make_batch(model)
    assert not batch.attention_mask.all()  # the second row is padded
    embeds = model.embed(batch.input_ids, batch.slot_items, hybrid=True)
    positions = (batch.attention_mask.cumsum(1) - 1).clamp(min=0)
    masked = model.llm.get_decoder()(inputs_embeds=embeds, attention_mask=batch.attention_mask,
                                     position_ids=positions).last_hidden_state
    real = batch.attention_mask.bool()
    assert torch.allclose(model.hidden_states(batch, hybrid=True)[real], masked[real], atol=1e-5)


@pytest.mark.parametrize("hybrid", [True, False])
def test_a_step_changes_only_lora_and_projector(hybrid):
    model, table = make_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    loss = model.loss(make_batch(model, hybrid), hybrid=hybrid)
    loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n or n.startswith("projector.") for n in changed)
    assert any("lora_" in n for n in changed)
    # Text-only batch: the projector gets no update at all.
    assert any(n.startswith("projector.") for n in changed) == hybrid
    assert torch.equal(model.item_embeddings, table)  # the recommender stays frozen


def test_save_and_reload_give_the_same_logits(tmp_path):
    model, table = make_model()
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    for _ in range(2):
        model.loss(make_batch(model), hybrid=True).backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    batch = make_batch(model)
    expected = model.hidden_states(batch, hybrid=True)
    model.save(tmp_path / "ck", paper_method(FinetuneConfig(llm="tiny")), {"step": 2})
    assert {p.name for p in (tmp_path / "ck").iterdir()} == {"adapter", "projector.safetensors",
                                                             "run.json"}
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ck" / "adapter" / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and all("lora_" in k for k in keys)  # adapters only, no embedding copy
    torch.manual_seed(0)  # the same base weights as make_model(0)
    llm, tokenizer = load_llm("tiny", extra_text=TITLES)
    reloaded, config, info = load_llara(tmp_path / "ck", llm, tokenizer, table)
    assert info["step"] == 2 and config.llm == "tiny"
    assert torch.allclose(reloaded.hidden_states(batch, hybrid=True), expected, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(PROJECTORS))
def test_projector_kinds_map_e_to_h(kind):
    projector = build_projector(ProjectorConfig(kind=kind, hidden_size=16, depth=4), 8, 32)
    assert projector(torch.randn(5, 8)).shape == (5, 32)
    if kind == "mlp":  # the paper's Linear -> GELU -> Linear
        assert [type(m).__name__ for m in projector] == ["Linear", "GELU", "Linear"]
    if kind == "deep_mlp":
        assert sum(isinstance(m, torch.nn.Linear) for m in projector) == 4


@pytest.mark.slow
def test_compiled_layers_over_bf16_frozen_weights_train_like_the_eager_model():
    """The GPU fast path (bf16 frozen weights, adapters fed the compute dtype, compiled decoder
    layers) on the CPU: same loss as the eager model, fp32 trained weights, and only they move."""
    from llara.model.llara import compile_decoder_layers

    losses, grads = [], []
    for compiled in (False, True):
        model, table = make_model()
        model.llm.to(torch.bfloat16)
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:  # as loading in bf16 leaves them: LoRA stays fp32
                parameter.data = parameter.data.float()
        if compiled:
            compile_decoder_layers(model)
        batch = make_batch(model)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model.loss(batch, hybrid=True)
        loss.backward()
        torch.optim.AdamW(model.trainable_parameters(), lr=1e-2).step()
        changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        assert changed and all("lora_" in n or n.startswith("projector.") for n in changed)
        assert {p.dtype for p in model.trainable_parameters()} == {torch.float32}
        assert all(p.dtype == torch.bfloat16 for n, p in model.llm.named_parameters()
                   if not p.requires_grad)
        losses.append(float(loss))
        grads.append(torch.cat([p.grad.flatten() for p in model.projector.parameters()]))
    assert losses[1] == pytest.approx(losses[0], rel=2e-2)
    assert torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0) > 0.98


def test_fresh_modules_take_their_own_learning_rate_and_adapters_keep_the_run_s():
    from llara.config.scoring import ScoringConfig
    torch.manual_seed(0)
    llm, tokenizer = load_llm("tiny", extra_text=TITLES)
    config = paper_method(FinetuneConfig(llm="tiny"))
    config.scoring = ScoringConfig(head="slot")
    model = build_llara(config, llm, tokenizer, torch.randn(12, 8))
    adapters, fresh = model.parameter_groups(1e-3, 10.0)
    assert (adapters["lr"], fresh["lr"]) == (1e-3, pytest.approx(1e-2))
    names = {id(p): n for n, p in model.named_parameters()}
    assert all("lora_" in names[id(p)] for p in adapters["params"])
    assert {names[id(p)].split(".")[0] for p in fresh["params"]} == {"projector", "head"}
    assert len(adapters["params"]) + len(fresh["params"]) == len(model.trainable_parameters())
    # scale 1: the single group that checkpoints written before the option hold
    (single,) = model.parameter_groups(1e-3)
    assert len(single["params"]) == len(model.trainable_parameters())


def test_compiling_on_a_cpu_without_a_cxx_compiler_names_the_option(monkeypatch):
    from torch._inductor import config as inductor_config

    from llara.common.errors import ConfigError
    from llara.model.llara import compile_decoder_layers
    model, _ = make_model()
    monkeypatch.setattr(inductor_config.cpp, "cxx", ("no-such-compiler-llara",))
    with pytest.raises(ConfigError, match=r"train\.compile.*C\+\+ compiler"):
        compile_decoder_layers(model)
    assert not any(hasattr(layer, "_compiled_call_impl") and layer._compiled_call_impl
                   for layer in model.llm.get_decoder().layers)
