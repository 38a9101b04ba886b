"""What makes a shard folder unfit for a run, named key by key."""

from llara.training.shard_key import changed_keys, tokenizer_fingerprint


def test_changed_keys_name_each_difference_and_hide_digests():
    found = {"data_dir": "/a", "dataset": "1f2e", "min_history": 3, "epochs": 2}
    assert changed_keys(found, dict(found)) == []
    wanted = {**found, "data_dir": "/b", "dataset": "9a9a", "min_history": 2}
    assert changed_keys(found, wanted) == ['data_dir ("/a" -> "/b")', "dataset",
                                           "min_history (3 -> 2)"]
    assert changed_keys(found, {**found, "scoring": "slot"}) == \
        ['scoring ("<missing>" -> "slot")']


def test_shards_of_more_epochs_serve_a_shorter_run():
    found = {"epochs": 3}
    assert changed_keys(found, {"epochs": 2}) == []
    assert changed_keys(found, {"epochs": 4}) == ["epochs (3 -> 4)"]


def test_a_tokenizer_is_known_by_its_files(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"a": 1}')
    first = tokenizer_fingerprint(str(tmp_path))
    assert tokenizer_fingerprint(str(tmp_path)) == first
    (tmp_path / "tokenizer.json").write_text('{"a": 2}')
    second = tokenizer_fingerprint(str(tmp_path))
    assert second != first
    (tmp_path / "model.safetensors").write_text("weights do not shape prompts")
    assert tokenizer_fingerprint(str(tmp_path)) == second
    assert tokenizer_fingerprint("HuggingFaceTB/SmolLM2-135M") == \
        "name:HuggingFaceTB/SmolLM2-135M"
