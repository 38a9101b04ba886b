import pytest
import torch

from llara.config.recommender import RecommenderConfig
from llara.recsys.checkpoint import load_checkpoint, load_item_embeddings, save_checkpoint
from llara.recsys.models import RECOMMENDERS, build_recommender

NUM_ITEMS, WIDTH = 30, 10


def _batch():
    lengths = torch.tensor([1, 4, 10])
    history = torch.full((3, WIDTH), NUM_ITEMS)
    for row, length in enumerate(lengths.tolist()):
        history[row, :length] = torch.randint(0, NUM_ITEMS, (length,))
    return history, lengths


@pytest.mark.parametrize("name", sorted(RECOMMENDERS))
def test_output_shapes(name):
    model = build_recommender(RecommenderConfig(model=name, embedding_dim=16), NUM_ITEMS, WIDTH)
    history, lengths = _batch()
    assert model(history, lengths).shape == (3, NUM_ITEMS)
    assert model.encode(history, lengths).shape == (3, 16)
    assert model.item_embeddings().shape == (NUM_ITEMS, 16)


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_padding_does_not_leak_into_the_state(name):
    model = build_recommender(RecommenderConfig(model=name, embedding_dim=16), NUM_ITEMS, WIDTH)
    model.eval()
    history, lengths = _batch()
    changed = history.clone()
    changed[0, 1:] = 3  # garbage after the real item must not matter with right padding
    assert torch.allclose(model(history, lengths)[0], model(changed, lengths)[0], atol=1e-5)


@pytest.mark.parametrize("name", sorted(RECOMMENDERS))
def test_checkpoint_round_trip_and_exported_embeddings(name, tmp_path):
    config = RecommenderConfig(model=name, embedding_dim=16)
    model = build_recommender(config, NUM_ITEMS, WIDTH).eval()
    save_checkpoint(tmp_path / "ck", model, config, NUM_ITEMS, WIDTH, {"note": "x"})
    loaded = load_checkpoint(tmp_path / "ck")
    history, lengths = _batch()
    # Tolerances: the reloaded model is frozen, and autograd-tracking and frozen parameters
    # may take different kernels on some CPUs (equal to ~1e-7, not to the bit).
    with torch.no_grad():
        assert torch.allclose(model(history, lengths), loaded.model(history, lengths),
                              rtol=1e-5, atol=1e-6)
        expected = model.item_embeddings()
    table = load_item_embeddings(tmp_path / "ck")
    assert table.shape == (NUM_ITEMS, 16) and table.dtype == torch.float32
    assert torch.allclose(table, expected, rtol=1e-5, atol=1e-6)
    assert loaded.info["note"] == "x"
    assert not any(p.requires_grad for p in loaded.model.parameters())  # frozen for LLaRA


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    from llara.common.errors import DataError

    config = RecommenderConfig(embedding_dim=16)
    save_checkpoint(tmp_path / "ck", build_recommender(config, NUM_ITEMS, WIDTH), config,
                    NUM_ITEMS, WIDTH, {})
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot load weights"):
        load_checkpoint(tmp_path / "ck")
    with pytest.raises(DataError, match="no config.json"):
        load_checkpoint(tmp_path)
