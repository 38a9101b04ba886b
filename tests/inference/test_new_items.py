"""New items at serving time, in this process: checked, appended under a lock, read by every
Recommender, and ranked at once."""

import json
import threading

import numpy as np
import pytest
import torch

from llara.config.serving import ServingConfig
from llara.data.items import ItemIndex
from llara.inference.new_items import (NewItem, NewItemError, add_to_model, append_new_items,
                                       history_without_new, new_item, read_new_items)
from llara.inference.requests import RequestError
from llara.inference.serving import Recommender, checkpoint_version
from llara.inference.trained import load_trained


@pytest.mark.parametrize("value, words", [
    ("Saga", "JSON object"), ({"name": "x"}, "unknown key 'name'"), ({"title": ""}, "non-empty"),
    ({"title": "x" * 301}, "at most 300"), ({"title": "A", "text": 3}, "text must be"),
    ({"title": "A", "text": "y" * 2001}, "at most 2000"), ({"title": "A\nB"}, "control"),
])
def test_bad_new_items_are_named(value, words):
    with pytest.raises(NewItemError, match=words):
        new_item(value, "items[0]")


def test_the_file_grows_under_its_limit_and_refuses_repeated_titles(tmp_path):
    path = tmp_path / "new.jsonl"
    known = ItemIndex.build(["B"], ["B (1995)"])
    assert read_new_items(path) == ([], 0)
    assert append_new_items(path, [NewItem("A 1", "x")], known, limit=3) == 0
    assert append_new_items(path, [NewItem("A 2")], known, limit=3) == 1
    before = path.read_bytes()
    for batch in (["a 1"], ["B"], ["b (1995)"], ["C (1999)", "c"]):
        with pytest.raises(NewItemError, match="in the catalogue already"):
            append_new_items(path, [NewItem(title) for title in batch], known, limit=5)
    with pytest.raises(NewItemError, match="max_new_items=3"):
        append_new_items(path, [NewItem("C"), NewItem("D")], known, limit=3)
    assert path.read_bytes() == before  # a refusal writes nothing
    items, offset = read_new_items(path)
    assert items == [NewItem("A 1", "x"), NewItem("A 2")] and offset == len(before)
    first_line = before.index(b"\n") + 1
    assert read_new_items(path, first_line) == ([NewItem("A 2")], len(before))
    path.write_bytes(before + b'{"title": "half')  # a line still being written waits
    assert read_new_items(path, offset) == ([], offset)
    with pytest.raises(NewItemError, match="cut line"):
        append_new_items(path, [NewItem("D")], known, limit=5)
    path.write_bytes(before + b"{not json\n")
    with pytest.raises(NewItemError, match="line 3"):
        read_new_items(path, offset)


def test_concurrent_appends_keep_every_item_once(tmp_path):
    path = tmp_path / "new.jsonl"
    errors = []

    def add(n):
        try:
            append_new_items(path, [NewItem(f"Item {n}")], ItemIndex.build([], []), limit=100)
        except NewItemError as err:  # pragma: no cover - the test fails below
            errors.append(err)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(i.title for i in read_new_items(path)[0]) == \
        sorted(f"Item {n}" for n in range(16))


def test_histories_drop_what_the_recommender_has_no_row_for():
    history = np.array([[1, 12, 2, 10], [11, 12, 10, 10]])
    out, lengths = history_without_new(history, np.array([3, 2]), known=10)
    assert out.tolist() == [[1, 2, 10, 10], [10, 10, 10, 10]]
    assert lengths.tolist() == [2, 1]


def test_a_new_item_is_read_by_its_content(cold_checkpoint):
    trained = load_trained(cold_checkpoint, "cpu", log=lambda *_: None)
    model = trained.model
    size = model.item_embeddings.shape[0]
    ids = add_to_model(trained, [NewItem("Star Saga 11 (1990)", "Action")])
    assert ids == [size] and trained.num_items == size + 1
    assert model.item_embeddings.shape[0] == size + 1 and bool(model.cold_items[-1])
    # Its slot vector is the content map's reading of its text, as a cold item's is.
    assert torch.allclose(model.item_embeddings[-1], trained.cold.content_map.vectors(
        _features(trained, size)).squeeze(0))
    assert model.user_encoder is not None  # the fixture conditions candidates on it
    assert model.user_encoder.items.embedding.weight.shape[0] == size + 2
    assert model.user_encoder.items.num_items == size + 1
    assert model.user_encoder.items.embedding.padding_idx == size + 1
    assert trained.items.resolve("Star Saga 11") == size
    assert trained.titles[size] == "Star Saga 11 (1990)"


def _features(trained, item):
    from llara.recsys.content_map import feature_matrix
    return feature_matrix(trained.cold.index, np.array([item]))


def test_the_recommender_ranks_new_items_in_candidates_and_history(cold_checkpoint, tmp_path):
    file = tmp_path / "new.jsonl"
    config = ServingConfig(checkpoint=str(cold_checkpoint), device="cpu", new_items=str(file),
                           num_candidates=6, new_item_candidates=2)
    one = Recommender(load_trained(cold_checkpoint, "cpu", log=lambda *_: None), config,
                      checkpoint_version(cold_checkpoint), lambda *_: None)
    other = Recommender(load_trained(cold_checkpoint, "cpu", log=lambda *_: None), config,
                        checkpoint_version(cold_checkpoint), lambda *_: None)
    size = one.num_items
    warm = one.parse(["Star Saga 1", "Star Saga 2"], candidates=[0, 4, 8, 12])
    (before,) = one.rank([warm])
    ids = one.add_items([{"title": "Star Saga 11 (1990)", "text": "Action"},
                         {"title": "Farm Tales 11 (1991)", "text": "Children's"}])
    assert ids == [size, size + 1]
    (after,) = one.rank([one.parse(["Star Saga 1", "Star Saga 2"], candidates=[0, 4, 8, 12])])
    # Answers that hold no new item are as before (the user state keeps its scale).
    assert [i for i, _ in after] == [i for i, _ in before]
    assert np.allclose([s for _, s in after], [s for _, s in before], atol=1e-5)
    for service in (one, other):  # the second reads the file before it answers
        query = service.parse(["Star Saga 1", "Star Saga 2"], k=6)
        assert size in query.candidates and len(query.candidates) == 6
        assert query.origin(size)[0] == "new"
        pinned = service.parse(["Star Saga 1"], pin=[1, 2, 3, 5, 6])
        assert len(pinned.candidates) == 6 and pinned.candidates[:5] == [1, 2, 3, 5, 6]
        (ranked,) = service.rank([query])
        assert {item for item, _ in ranked} == set(query.candidates)
        assert all(np.isfinite(score) for _, score in ranked)
        with_new = service.parse(["Star Saga 1", "Star Saga 11"], candidates=[0, size + 1, 5])
        (ranked,) = service.rank([with_new])
        assert len(ranked) == 3
    late = Recommender(load_trained(cold_checkpoint, "cpu", log=lambda *_: None), config,
                       checkpoint_version(cold_checkpoint), lambda *_: None)
    assert late.num_items == size + 2  # a replica started later reads them at start-up
    assert late.items.resolve("Farm Tales 11") == size + 1
    for title in ("star saga 11 (1990)", "Star Saga 1", "Star Saga 1 (1990)"):
        with pytest.raises(RequestError, match="already"):
            one.add_items([{"title": title}])
    assert json.loads(file.read_text().splitlines()[0])["title"] == "Star Saga 11 (1990)"
    file.write_text(file.read_text() + "{broken\n")  # written by hand, damaged
    with pytest.raises(RequestError, match="cannot be read") as refused:
        other.parse(["Star Saga 1"], k=3)
    assert refused.value.status == 503


def test_the_service_fuses_new_candidates_at_the_checkpoints_cold_level(cold_checkpoint,
                                                                        tmp_path):
    file = tmp_path / "new.jsonl"

    def service(level, fusion="1"):
        trained = load_trained(cold_checkpoint, "cpu", log=lambda *_: None)
        trained.info = {**trained.info,
                        "fusion": {"weight": 1.0, "serves": "fused", "cold_level": level}}
        config = ServingConfig(checkpoint=str(cold_checkpoint), device="cpu",
                               new_items=str(file), num_candidates=6, fusion=fusion)
        return Recommender(trained, config, "v", lambda *_: None)

    high = service(1.0)
    assert high.cold_level == 1.0
    assert service(1.0, "recommender").cold_level is None  # no LLM term: the warm mean
    (new,) = high.add_items([{"title": "Star Saga 11 (1990)", "text": "Action"}])
    mean = service(None)
    assert mean.cold_level is None and mean.num_items == high.num_items
    scores = {}
    for name, each in (("high", high), ("mean", mean)):
        (ranked,) = each.rank([each.parse(["Star Saga 1", "Star Saga 2"],
                                          candidates=[0, 4, 8, new])])
        scores[name] = dict(ranked)
    # As high as the best warm candidate's recommender score is above the warm mean.
    assert scores["high"][new] > scores["mean"][new]
    # A stored text weight adds the text-only prompts' reading (a second pass) to the ranking.
    both = service(1.0)
    both.trained.info["fusion"]["text_weight"] = 1.0
    both = Recommender(both.trained, both.config, "v", lambda *_: None)
    assert both.text_weight == 1.0 and high.text_weight == 0.0
    (ranked,) = both.rank([both.parse(["Star Saga 1", "Star Saga 2"], candidates=[0, 4, 8, new])])
    assert all(np.isfinite(s) for _, s in ranked)
    assert not np.allclose(sorted(dict(ranked).values()), sorted(scores["high"].values()))


def test_a_checkpoint_without_the_content_map_refuses_new_items(served_checkpoint, tmp_path):
    config = ServingConfig(checkpoint=str(served_checkpoint), device="cpu",
                           new_items=str(tmp_path / "new.jsonl"))
    service = Recommender(load_trained(served_checkpoint, "cpu", log=lambda *_: None), config,
                          checkpoint_version(served_checkpoint), lambda *_: None)
    with pytest.raises(RequestError, match="cold.content=map"):
        service.add_items([{"title": "Anything"}])
    assert not (tmp_path / "new.jsonl").exists()
    plain = Recommender(service.trained, ServingConfig(checkpoint=str(served_checkpoint)),
                        "v", lambda *_: None)
    with pytest.raises(RequestError, match="--new-items"):
        plain.add_items([{"title": "Anything"}])
