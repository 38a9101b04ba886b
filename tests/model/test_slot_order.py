"""Slots in text order: a template that lists the candidates before the history injects each
item's own vector at its slot, and the user state reads the history wherever it is."""

import numpy as np
import torch

from llara.model.batch import collate_prompts
from llara.prompts.templates import CANDIDATE_SLOT, HISTORY_SLOT
from tests.model.test_heads import TEMPLATE, batch_of, lists, make, samples

CANDIDATES_FIRST = ("Pick the next movie among [CountHere] candidates: [CansHere]. The user "
                    "watched [HistoryHere].[UserHere] Answer:")


def slot_vectors(model, batch, prompts):
    """{(row, item, kind): injected vector} read off the embedded prompt."""
    with torch.no_grad():
        embeds = model.embed(batch.input_ids, batch.slot_items, hybrid=True)
    ids = {model.tokenizer.convert_tokens_to_ids(HISTORY_SLOT): "history",
           model.tokenizer.convert_tokens_to_ids(CANDIDATE_SLOT): "candidate"}
    found = {}
    for row, prompt in enumerate(prompts):
        for position, item in zip(prompt.slot_positions, prompt.slot_items):
            kind = ids[prompt.input_ids[position]]
            found[row, item, kind] = embeds[row, position]
    return found


def test_a_candidates_first_template_gives_each_slot_its_own_items_vector():
    model, builder, _ = make("slot", "cond")
    rows = samples(4, seed=3)
    cands = lists(rows, 6, seed=3)
    prompts, batch = batch_of(builder, rows, cands)
    swapped = builder.build(rows, cands, range(len(rows)), CANDIDATES_FIRST, True, False)
    swapped_batch = collate_prompts(swapped, builder.tokenizer.pad_token_id)
    for row, prompt in enumerate(swapped):  # text order: the candidates, then the history
        history = rows.history[row, :rows.len_history[row]].tolist()
        assert prompt.slot_items == cands[row].tolist() + history
    # The user state is the same whichever place the history takes.
    assert torch.allclose(model.user_states(batch.input_ids, batch.slot_items),
                          model.user_states(swapped_batch.input_ids, swapped_batch.slot_items))
    # Every slot carries its own item's projection ([e ; u*e] for candidates, [e ; 0] for
    # history items), the same vector in both templates.
    ours, theirs = slot_vectors(model, batch, prompts), slot_vectors(model, swapped_batch,
                                                                     swapped)
    assert ours.keys() == theirs.keys()
    users = model.user_states(batch.input_ids, batch.slot_items)
    for (row, item, kind), vector in theirs.items():
        e = model.item_embeddings[item]
        second = users[row] * e if kind == "candidate" else torch.zeros_like(e)
        with torch.no_grad():
            expected = model.projector(torch.cat([e, second]))
        assert torch.allclose(vector, expected, atol=1e-6), (row, item, kind)
        assert torch.allclose(vector, ours[row, item, kind], atol=1e-6)


def test_the_slot_head_reads_each_candidate_at_its_own_slot_in_either_order():
    model, builder, _ = make("slot", "cond")
    torch.nn.init.normal_(model.head.score.weight)  # a head that tells candidates apart
    rows = samples(3, seed=5)
    cands = lists(rows, 5, seed=5)
    swapped = builder.build(rows, cands, range(len(rows)), CANDIDATES_FIRST, True, False)
    batch = collate_prompts(swapped, builder.tokenizer.pad_token_id)
    with torch.no_grad():
        hidden = model.hidden_states(batch, True)
        scores = model.candidate_scores(batch, True)
    for row, prompt in enumerate(swapped):
        # candidate c's slot is the c-th [CansEmb], and it holds candidate c's item
        slot_of = dict(zip(prompt.slot_positions, prompt.slot_items))
        assert [slot_of[p] for p in prompt.candidate_positions] == cands[row].tolist()
        expected = hidden[row, prompt.candidate_positions] @ model.head.score.weight[0] + \
            model.head.score.bias
        assert torch.allclose(scores[row], expected, atol=1e-5)
    assert np.isfinite(scores.numpy()).all()


def test_the_built_in_templates_list_the_history_first():
    # what the other tests compare the candidates-first template against
    assert TEMPLATE.index("[HistoryHere]") < TEMPLATE.index("[CansHere]")
