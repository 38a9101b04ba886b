"""Ranking heads and the user state, on a tiny random model: each head's scores equal a direct
computation, candidates and their slots stay aligned however the list is shuffled, 2 to the
most candidates work, a checkpoint reloads to the same scores, and training moves only what
it should."""

import numpy as np
import pytest
import torch

from llara.common.errors import ConfigError
from llara.config.io import apply_overrides
from llara.config.recommender import RecommenderConfig
from llara.config.run import FinetuneConfig
from llara.data.tables import Samples
from llara.evaluation.scoring import score_candidates
from llara.model.batch import collate_prompts
from llara.model.heads import letter_label_ids
from llara.model.llara import build_llara, load_llara
from llara.model.llm import load_llm
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import CANDIDATE_SLOT, LETTER_LABELS, TEMPLATES, USER_SLOT
from llara.recsys.models import build_recommender

ITEMS = 60
TITLES = [f"Film {i}" for i in range(ITEMS)]
TEMPLATE = TEMPLATES["movies"][0]


def make(head: str = "slot", user: str = "none", seed: int = 0):
    """(model, builder, config) with a random tiny LLM, item table and SASRec."""
    torch.manual_seed(seed)
    llm, tokenizer = load_llm("tiny", extra_text=TITLES)
    # both user-state options set: the run defaults must not decide what an arm means
    options = [f"scoring.head={head}", f"prompt.user_token={str(user == 'token').lower()}",
               f"prompt.conditioned_candidates={str(user == 'cond').lower()}"]
    config = apply_overrides(FinetuneConfig(llm="tiny"), options)
    encoder = build_recommender(RecommenderConfig(embedding_dim=8), ITEMS, 10).eval()
    table = encoder.item_embeddings().detach().clone()
    model = build_llara(config, llm, tokenizer, table, encoder)
    model.eval()
    return model, PromptBuilder.for_run(tokenizer, TITLES, config), config


def samples(rows: int, seed: int = 0) -> Samples:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 10, rows)
    history = np.full((rows, 10), ITEMS)
    for r, n in enumerate(lengths):
        history[r, :n] = rng.choice(ITEMS, n, replace=False)
    return Samples.from_histories([h[:n].tolist() for h, n in zip(history, lengths)],
                                  rng.integers(0, ITEMS, rows).tolist(), 10, ITEMS)


def lists(rows: Samples, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.stack([rng.choice(ITEMS, count, replace=False) for _ in range(len(rows))])
    out[:, 0] = rows.next  # the true item is first, then shuffled by the callers
    return np.stack([rng.permutation(row) for row in out])


def batch_of(builder, rows, cands, hybrid=True):
    prompts = builder.build(rows, cands, range(len(rows)), TEMPLATE, hybrid, False)
    return prompts, collate_prompts(prompts, builder.tokenizer.pad_token_id)


@pytest.mark.parametrize("head", ["slot", "letter"])
def test_head_scores_equal_a_direct_computation(head):
    model, builder, _ = make(head)
    rows = samples(3)
    cands = lists(rows, 7)
    prompts, batch = batch_of(builder, rows, cands)
    with torch.no_grad():
        hidden = model.hidden_states(batch, True)  # (B, T, H)
        got = model.candidate_scores(batch, True)  # (B, C)
    weight = model.llm.get_output_embeddings().weight
    for r, prompt in enumerate(prompts):
        if head == "slot":
            states = hidden[r, prompt.candidate_positions]  # (C, H)
            expected = states @ model.head.score.weight[0] + model.head.score.bias
        else:
            labels = letter_label_ids(builder.tokenizer)[:7]
            expected = weight[labels] @ hidden[r, len(prompt.input_ids) - 1]
        assert torch.allclose(got[r], expected, atol=1e-5)
    # score_candidates ranks by the log-softmax of the same scores
    ranking = score_candidates(model, builder, rows, cands, TEMPLATE)
    assert np.allclose(ranking.scores, torch.log_softmax(got, -1).numpy(), atol=1e-5)


@pytest.mark.parametrize("head", ["slot", "letter", "title"])
def test_every_head_scores_in_fp32_under_bf16_autocast(head):
    # bf16 logits of size 10-30 are rounded by 0.06-0.12, enough to reorder close candidates
    model, builder, _ = make(head)
    if head == "slot":  # away from its zero start, so that rounding could show
        torch.nn.init.normal_(model.head.score.weight, std=0.5)
    rows = samples(3)
    cands = lists(rows, 7)
    _, batch = batch_of(builder, rows, cands)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = model.hidden_states(batch, True)  # (B, T, H), bf16 under autocast
        logits = model.token_logits(hidden[:, -1])  # (B, V)
        scores = None if head == "title" else model.candidate_scores(batch, True)  # (B, C)
    weight = model.llm.get_output_embeddings().weight.float()
    assert logits.dtype == torch.float32
    assert torch.allclose(logits, hidden[:, -1].float() @ weight.T, atol=1e-4)
    if scores is not None:
        assert scores.dtype == torch.float32
        with torch.no_grad():
            direct = model.head(hidden.float(), batch)  # the same states, no autocast
        assert torch.allclose(scores, direct, atol=1e-4)


def test_title_head_is_the_lm_and_scores_titles():
    model, builder, _ = make("title")
    assert model.head is None
    rows = samples(2)
    ranking = score_candidates(model, builder, rows, lists(rows, 5), TEMPLATE)
    assert ranking.scores.shape == (2, 5) and (ranking.scores < 0).all()


@pytest.mark.parametrize("head", ["slot", "letter"])
def test_candidates_and_their_slots_stay_aligned_when_shuffled(head):
    model, builder, _ = make(head)
    rows = samples(4)
    base = lists(rows, 9)
    candidate_slot = builder.tokenizer.convert_tokens_to_ids(CANDIDATE_SLOT)
    for seed in range(3):
        shuffled = np.stack([np.random.default_rng(seed + r).permutation(row)
                             for r, row in enumerate(base)])
        prompts, batch = batch_of(builder, rows, shuffled)
        for r, prompt in enumerate(prompts):
            assert prompt.target == int(np.flatnonzero(shuffled[r] == rows.next[r])[0])
            assert [prompt.input_ids[p] for p in prompt.candidate_positions] == \
                [candidate_slot] * 9
            # the item injected at each candidate slot is that candidate
            order = [prompt.slot_positions.index(p) for p in prompt.candidate_positions]
            assert [prompt.slot_items[i] for i in order] == shuffled[r].tolist()
            text = builder.tokenizer.decode(prompt.input_ids)
            if head == "letter":  # each label sits just before its own candidate's title
                gap = " "
                for label, item in zip(LETTER_LABELS, shuffled[r]):
                    assert f"({label}) {TITLES[item]}{gap}{CANDIDATE_SLOT}" in text
        assert torch.equal(batch.targets, torch.tensor([p.target for p in prompts]))


@pytest.mark.parametrize("head", ["title", "slot", "letter"])
def test_two_and_the_most_candidates_both_work(head):
    model, builder, _ = make(head)
    most = len(letter_label_ids(builder.tokenizer)) if head == "letter" else 50
    rows = samples(2)
    for count in (2, most):
        ranking = score_candidates(model, builder, rows, lists(rows, count), TEMPLATE)
        assert ranking.scores.shape == (2, count) and np.isfinite(ranking.scores).all()
    if head == "letter":
        with pytest.raises(ConfigError, match="letter labels"):
            score_candidates(model, builder, samples(1), np.arange(most + 1)[None, :] % ITEMS,
                             TEMPLATE)


@pytest.mark.parametrize("head, user", [("slot", "token"), ("letter", "cond"),
                                        ("title", "none")])
def test_a_checkpoint_reloads_to_the_same_scores(tmp_path, head, user):
    model, builder, config = make(head, user)
    with torch.no_grad():
        for parameter in model.trainable_parameters():  # away from the fresh start
            parameter.add_(0.05 * torch.randn_like(parameter))
    rows = samples(3)
    cands = lists(rows, 6)
    before = score_candidates(model, builder, rows, cands, TEMPLATE).scores
    model.save(tmp_path / "ckpt", config, {})
    llm, tokenizer = load_llm("tiny", extra_text=TITLES)
    reloaded, loaded_config, _ = load_llara(tmp_path / "ckpt", llm, tokenizer,
                                            model.item_embeddings, model.user_encoder)
    assert loaded_config.scoring.head == head
    assert (tmp_path / "ckpt" / "head.safetensors").is_file() == (head == "slot")
    after = score_candidates(reloaded, builder, rows, cands, TEMPLATE).scores
    assert np.allclose(before, after, atol=1e-5)


def test_user_token_carries_the_recommenders_state_of_the_history():
    model, builder, _ = make("slot", "token")
    rows = samples(3)
    prompts, batch = batch_of(builder, rows, lists(rows, 5))
    user_slot = builder.tokenizer.convert_tokens_to_ids(USER_SLOT)
    with torch.no_grad():
        embeds = model.embed(batch.input_ids, batch.slot_items, True)
        for r in range(len(rows)):
            state = model.user_encoder.encode(torch.as_tensor(rows.history[r:r + 1]),
                                              torch.as_tensor(rows.len_history[r:r + 1]))
            # in the item embeddings' scale: the direction is what ranks items
            state = state / state.norm() * model.item_embeddings.norm(dim=1).mean()
            (position,) = (batch.input_ids[r] == user_slot).nonzero()[:, 0].tolist()
            assert torch.allclose(embeds[r, position], model.projector(state)[0], atol=1e-5)
    text = builder.tokenizer.decode(prompts[0].input_ids)
    assert "Their profile: [UserEmb]." in text and text.index("[UserEmb]") < \
        text.index("[CansEmb]")  # every candidate can read it


def test_conditioned_candidates_carry_the_recommenders_own_score():
    model, builder, _ = make("slot", "cond")
    rows = samples(2)
    cands = lists(rows, 4)
    captured = []
    hook = model.projector.register_forward_hook(lambda m, i, o: captured.append(i[0]))
    _, batch = batch_of(builder, rows, cands)
    with torch.no_grad():
        model.embed(batch.input_ids, batch.slot_items, True)
    hook.remove()
    inputs = captured[0]  # (S, 2E): history items first in each row, then candidates
    width = model.item_embeddings.shape[1]
    with torch.no_grad():
        users = model.user_encoder.encode(torch.as_tensor(rows.history),
                                          torch.as_tensor(rows.len_history))
        users = users / users.norm(dim=1, keepdim=True) * \
            model.item_embeddings.norm(dim=1).mean()  # the scale the projector sees
        scores = users @ model.item_embeddings.T  # (B, N) u . e, the recommender's order
    at = 0
    for r in range(len(rows)):
        n = int(rows.len_history[r])
        assert torch.all(inputs[at:at + n, width:] == 0)  # history: [e ; 0]
        at += n
        for c, item in enumerate(cands[r]):
            assert torch.allclose(inputs[at + c, width:].sum(), scores[r, item], atol=1e-4)
        at += len(cands[r])


@pytest.mark.parametrize("head, user", [("slot", "token"), ("letter", "cond")])
def test_a_step_moves_only_lora_projector_and_head(head, user):
    model, builder, _ = make(head, user)
    model.train()
    rows = samples(4)
    _, batch = batch_of(builder, rows, lists(rows, 6))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.trainable_parameters(), lr=0.5)
    loss = model(batch, True)
    loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n or n.startswith(("projector.", "head."))
                           for n in changed)
    assert any(n.startswith("head.") for n in changed) == (head == "slot")
    assert not model.user_encoder.training  # frozen: no dropout in the user state
