"""Models whose attention a packed mask cannot express (a sliding window shorter than the
prompt, chunked attention, flash-attention kernels) are scored one candidate per sequence,
and get exactly the model's own scores."""

import numpy as np
import pytest
import torch

from llara.config.run import FinetuneConfig
from tests.conftest import paper_method
from llara.data.tables import Samples
from llara.evaluation import scoring
from llara.evaluation.scoring import packed_scoring_exact, score_candidates
from llara.model.llara import build_llara
from llara.model.llm import add_llara_tokens, tiny_tokenizer
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import TEMPLATES
from tests.evaluation.reference import title_log_likelihood

TITLES = [f"Film {i}" for i in range(20)]
TEMPLATE = TEMPLATES["movies"][0]


def windowed_model(window: int):
    from transformers import MistralConfig, MistralForCausalLM

    tokenizer = tiny_tokenizer(TITLES)
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tokenizer) + 8, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                           sliding_window=window, max_position_embeddings=1024,
                           initializer_range=0.3)
    llm = MistralForCausalLM(config)
    add_llara_tokens(llm, tokenizer)
    model = build_llara(paper_method(FinetuneConfig(llm="tiny")), llm, tokenizer,
                        torch.randn(20, 8))
    with torch.no_grad():  # LoRA B starts at zero: move it, so the adapters take part
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    return model.eval(), PromptBuilder(tokenizer, TITLES, 1024)


def direct_scores(model, builder, samples, candidates) -> np.ndarray:
    """Each candidate's title after the prompt as one plain sequence, the model's own
    attention (its window included)."""
    return np.array([[title_log_likelihood(model, builder, samples, candidates, TEMPLATE, row,
                                           k, TITLES[item])
                      for k, item in enumerate(candidates[row])] for row in range(len(samples))])


def test_a_window_shorter_than_the_prompt_is_scored_by_the_models_own_attention(monkeypatch):
    model, builder = windowed_model(window=16)
    samples = Samples.from_histories([[1, 2, 3], [4, 5]], [6, 7], 10, 20)
    candidates = np.array([[6, 8, 9], [7, 10, 11]])
    expected = direct_scores(model, builder, samples, candidates)
    got = score_candidates(model, builder, samples, candidates, TEMPLATE, batch_size=2).scores
    assert np.allclose(got, expected, atol=1e-4)
    # The packed path's own mask would have dropped the window: forced, it scores otherwise.
    monkeypatch.setattr(scoring, "packed_scoring_exact", lambda config, width: True)
    forced = score_candidates(model, builder, samples, candidates, TEMPLATE).scores
    assert not np.allclose(forced, expected, atol=1e-3)


def test_packing_stays_where_it_is_exact():
    model, builder = windowed_model(window=4096)  # longer than any prompt here
    assert packed_scoring_exact(model.llm.config, 600)
    assert not packed_scoring_exact(model.llm.config, 5000)


@pytest.mark.parametrize("changes, exact", [
    ({}, True),
    ({"_attn_implementation": "flash_attention_2"}, False),
    ({"sliding_window": 64, "use_sliding_window": False}, True),  # Qwen2: window off
    ({"sliding_window": 64, "layer_types": ["full_attention", "sliding_attention"]}, False),
    ({"sliding_window": 64, "layer_types": ["full_attention"] * 2}, True),
    ({"attention_chunk_size": 128}, False),
])
def test_which_configs_packing_can_express(changes, exact):
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=32, num_attention_heads=4)
    for key, value in changes.items():
        setattr(config, key, value)
    assert packed_scoring_exact(config, 500) is exact
