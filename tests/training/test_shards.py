"""Shard rows built in process (Ray Data runs the same callable)."""

import numpy as np
import pyarrow.parquet as pq

from llara.config.io import to_dict
from llara.data.prepare import PreparedDataset
from llara.training.shard_key import shard_key
from llara.training.shards import SHARD_SCHEMA, ShardSpec, ShardTokenizer
from tests.conftest import toy_config


def shard_rows(config, dataset, split="train", rows=12):
    spec = ShardSpec.for_split(config, dataset, "tiny", split)
    source = pq.read_table(dataset.directory / f"{split}.parquet").slice(0, rows)
    return spec, ShardTokenizer(to_dict(spec))(source)


def test_a_batch_of_only_short_histories_gives_an_empty_shard_not_an_error(toy_inputs, tmp_path):
    # Ray Data can hand the tokenizer a batch whose rows training drops entirely (all under
    # min_history): the fast tokenizer fails on an empty list, and the build must not.
    dataset = PreparedDataset.open(toy_inputs[0])
    config = toy_config(toy_inputs, tmp_path / "run")
    spec = ShardSpec.for_split(config, dataset, "tiny", "train")
    source = pq.read_table(dataset.directory / "train.parquet")
    short = np.flatnonzero(dataset.samples("train").len_history < config.prompt.min_history)
    assert len(short) > 0
    table = ShardTokenizer(to_dict(spec))(source.take(short[:5]))
    assert table.num_rows == 0 and table.schema == SHARD_SCHEMA
    assert ShardTokenizer(to_dict(spec))(source.slice(0, 0)).num_rows == 0


def test_a_worker_reuses_its_tokenizer_until_the_titles_change_in_place(toy_inputs, tmp_path):
    # Ray's task workers outlive a build and serve the next: the cached tokenizer and titles
    # must follow a dataset rewritten at the same path.
    import shutil

    import pyarrow as pa

    from llara.training.shards import loaded_inputs

    data = tmp_path / "data"
    shutil.copytree(toy_inputs[0], data)
    config = toy_config((data, toy_inputs[1]), tmp_path / "run")

    def spec() -> dict:  # as a build's driver makes it, the shard key hashed anew
        dataset = PreparedDataset.open(data)
        return to_dict(ShardSpec.for_split(config, dataset, "tiny", "val",
                                           inputs=loaded_inputs(shard_key(config, dataset,
                                                                          "tiny"))))

    first = ShardTokenizer(spec())
    assert ShardTokenizer(spec()).builder is first.builder  # loaded once per process
    items = pq.read_table(data / "items.parquet")
    renamed = [f"Renamed Film {i}" for i in range(items.num_rows)]
    items = items.set_column(items.schema.get_field_index("title"), "title",
                             pa.array(renamed, pa.string()))
    pq.write_table(items, data / "items.parquet")
    second = ShardTokenizer(spec())
    assert second.builder is not first.builder and second.builder.titles[1:] == renamed[1:]
    table = second(pq.read_table(data / "val.parquet").slice(0, 2))
    assert "Renamed Film" in second.builder.tokenizer.decode(table["input_ids"][0].as_py())


def test_a_manifest_names_only_files_inside_its_folder(tmp_path):
    """A shard folder may come from a shared store: its manifest cannot point a run at files
    elsewhere, and a manifest of another shape is refused as a whole."""
    import json

    import pytest

    from llara.common.errors import DataError
    from llara.training.shards import SHARD_FORMAT, ShardManifest

    good = {"format": SHARD_FORMAT, "key": {}, "vocab_size": 10,
            "splits": {"train": {"rows": 2, "files": ["a.parquet"], "epochs": [["a.parquet"]]}}}
    (tmp_path / "manifest.json").write_text(json.dumps(good))
    assert ShardManifest.read(tmp_path).files(tmp_path, "train", 0) == [str(tmp_path / "a.parquet")]
    for splits, problem in (
            ({"train": {"rows": 2, "files": ["../x.parquet"], "epochs": [[]]}}, "not a file"),
            ({"train": {"rows": 2, "files": [], "epochs": [["/etc/passwd"]]}}, "not a file"),
            ({"val": {"files": ["v.parquet"]}}, "lacks its rows"),
            ({"train": {"rows": 2, "files": []}}, "per epoch")):
        (tmp_path / "manifest.json").write_text(json.dumps({**good, "splits": splits}))
        with pytest.raises(DataError, match=problem):
            ShardManifest.read(tmp_path)
        assert ShardManifest.found(tmp_path) is None


def test_the_cutoff_keeps_exactly_an_epochs_first_rows():
    """A limited build drops the rows past the epoch's first `limit` before sorting: what
    stays is that prefix, whatever the limit."""
    import pyarrow as pa

    from llara.training.shards import (ORDER_COLUMN, order_cutoff, rows_up_to, training_order,
                                       with_training_order)

    ids = np.random.default_rng(0).permutation(5000)
    table = with_training_order(pa.table({"sample_id": ids}), 3, 1)
    first = ids[np.argsort(training_order(3, 1, ids), kind="stable")]
    for limit in (1, 17, 4999):
        kept = rows_up_to(table, order_cutoff(3, 1, ids, limit))
        kept = kept.sort_by([(ORDER_COLUMN, "ascending")])["sample_id"].to_numpy()
        assert np.array_equal(kept, first[:limit])
    assert order_cutoff(3, 1, ids, 5000) is None
