"""Ray Data shard building: content equals the library's prompts, reruns are byte-identical."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from llara.config.data import DataConfig
from llara.data.candidates import sample_candidates
from llara.data.prepare import PreparedDataset
from llara.data.released import import_released
from llara.model.llm import load_tokenizer
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import templates_for
from llara.ray_jobs.build_shards import build_shards
from llara.training.shards import (SHARD_SCHEMA, ShardManifest, prompts_from_rows, template_choice,
                                   training_order)
from tests.conftest import toy_config
from tests.data.test_released import toy_rows, write_released


def in_training_order(samples, epoch: int):
    """`samples` in the order the epoch's training shards hold them (shards.seed 0)."""
    return samples.select(np.lexsort((samples.sample_id,
                                      training_order(0, epoch, samples.sample_id))))


@pytest.fixture(scope="module")
def toy_shards(ray_local, toy_inputs, tmp_path_factory) -> Path:
    """Shards of the toy run's defaults, built once for the tests that only read them."""
    return build_shards(toy_config(toy_inputs, tmp_path_factory.mktemp("toy-shards") / "run"),
                        progress=False, log=lambda *_: None)


def test_shards_hold_both_prompt_variants_of_every_sample(toy_shards, toy_inputs, tmp_path):
    config = toy_config(toy_inputs, tmp_path / "run")
    directory = toy_shards
    manifest = ShardManifest.read(directory)
    dataset = PreparedDataset.open(toy_inputs[0])
    train = dataset.samples("train")
    kept = train.select(np.flatnonzero(train.len_history >= config.prompt.min_history))
    assert manifest.splits["train"]["rows"] == len(kept) > 64  # more than one shard
    assert len(manifest.splits["train"]["files"]) == -(-len(kept) // 64)
    table = pq.read_table(manifest.files(directory, "train"))
    assert table.schema.equals(SHARD_SCHEMA)
    # training rows in the epoch's seeded order, every row once
    kept = in_training_order(kept, 0)
    assert table["sample_id"].to_pylist() == kept.sample_id.tolist()

    titles = dataset.titles()
    builder = PromptBuilder(load_tokenizer("tiny", titles), titles, config.prompt.max_length)
    templates = templates_for("movies")
    rows = np.arange(5)
    candidates = sample_candidates(kept, dataset.num_items, 10, 0, epoch=0)
    chosen = [templates[i] for i in template_choice(0, kept.sample_id[rows], len(templates))]
    for hybrid in (True, False):
        expected = builder.build(kept, candidates, rows, chosen, hybrid, True)
        assert prompts_from_rows(table.slice(0, 5), hybrid) == expected
    assert table["candidates"].to_pylist()[:5] == candidates[:5].tolist()

    # Evaluation shards keep every sample and the lists `llara evaluate` uses.
    test = pq.read_table(manifest.files(directory, "test"))
    samples = dataset.samples("test")
    assert test.num_rows == len(samples)
    assert test["candidates"].to_pylist() == sample_candidates(
        samples, dataset.num_items, 10, 0).tolist()
    assert set(test["template"].to_pylist()) == {0}


def test_rebuilding_with_the_same_seed_is_byte_identical(toy_shards, toy_inputs, tmp_path):
    first = toy_shards
    config = toy_config(toy_inputs, tmp_path / "b")
    config.shards.concurrency = 2
    config.shards.rows_per_shard = 64
    second = build_shards(config, progress=False, log=lambda *_: None)
    names = sorted(p.name for p in first.glob("*.parquet"))
    assert names == sorted(p.name for p in second.glob("*.parquet")) and len(names) > 3
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    config.shards.seed, config.shards.splits = 1, ("train",)
    third = build_shards(config, progress=False, log=lambda *_: None)
    assert (first / "train-e0-00000.parquet").read_bytes() != \
        (third / "train-e0-00000.parquet").read_bytes()


def test_shard_bytes_do_not_depend_on_how_rows_were_chunked(toy_shards, tmp_path):
    import pyarrow as pa

    from llara.training.shards import write_shard

    directory = toy_shards
    table = pq.read_table(directory / "train-e0-00000.parquet")
    stitched = pa.concat_tables([table.slice(0, 10), table.slice(10, 30), table.slice(40)])
    assert stitched.column(0).num_chunks == 3
    write_shard(stitched, tmp_path / "stitched.parquet")
    assert (tmp_path / "stitched.parquet").read_bytes() == \
        (directory / "train-e0-00000.parquet").read_bytes()


def test_recommender_source_shards_train_on_retrieved_lists(ray_local, toy_inputs, tmp_path):
    from llara.config.candidates import CandidateConfig
    from llara.recsys.checkpoint import load_checkpoint
    from llara.recsys.retrieval import training_lists

    config = toy_config(toy_inputs, tmp_path / "run")
    config.candidates = CandidateConfig(source="recommender", retrieve=8)
    config.shards.splits = ("train", "test")
    directory = build_shards(config, progress=False, log=lambda *_: None)
    manifest = ShardManifest.read(directory)
    assert (manifest.key["candidate_source"], manifest.key["retrieve"]) == ("recommender", 8)
    dataset = PreparedDataset.open(toy_inputs[0])
    train = dataset.samples("train")
    kept = train.select(np.flatnonzero(train.len_history >= config.prompt.min_history))
    expected = training_lists(kept, "recommender", dataset.num_items, 8, 0, 0,
                              load_checkpoint(toy_inputs[1]).model)
    assert 0 < len(expected.rows) < len(kept)  # only the rows whose answer was retrieved
    table = pq.read_table(manifest.files(directory, "train"))
    by_id = dict(zip(table["sample_id"].to_pylist(), table["candidates"].to_pylist()))
    assert sorted(by_id) == sorted(kept.sample_id[expected.rows].tolist())
    assert manifest.splits["train"]["rows"] == len(expected.rows)
    assert [by_id[s] for s in kept.sample_id[expected.rows].tolist()] == expected.items.tolist()
    # Evaluation shards keep the paper's lists whatever the training source.
    test = pq.read_table(manifest.files(directory, "test"))
    assert test["candidates"].to_pylist() == sample_candidates(
        dataset.samples("test"), dataset.num_items, 10, 0).tolist()


def test_released_tables_without_a_test_split_get_train_and_val_shards(ray_local, toy_inputs,
                                                                        tmp_path):
    # `llara train` and the demo build shards for every split in shards.splits; the paper's
    # LastFM tables have no test rows.
    tables = toy_rows(users=24)
    del tables["test"]
    write_released(tmp_path / "lastfm", tables)
    # Kept as released: the validation rows stay, there is no test split.
    import_released(tmp_path / "lastfm", tmp_path / "data", DataConfig(carve_validation=False))
    config = toy_config((tmp_path / "data", toy_inputs[1]), tmp_path / "run")
    assert "test" in config.shards.splits
    said = []
    directory = build_shards(config, progress=False, log=said.append)
    manifest = ShardManifest.read(directory)
    val = PreparedDataset.open(tmp_path / "data").samples("val")
    assert set(manifest.splits) == {"train", "val"} and manifest.splits["val"]["rows"] == len(val)
    assert "test: none in this dataset, no shards" in said
    # The default carves validation users out of training: the released rows are the test.
    import_released(tmp_path / "lastfm", tmp_path / "carved", DataConfig())
    config = toy_config((tmp_path / "carved", toy_inputs[1]), tmp_path / "run-carved")
    manifest = ShardManifest.read(build_shards(config, progress=False, log=lambda *_: None))
    assert set(manifest.splits) == {"train", "val", "test"}
    assert manifest.splits["test"]["rows"] == len(tables["val"])


def test_every_epoch_trains_on_the_lists_the_local_loop_draws(ray_local, toy_inputs, tmp_path):
    """Epoch e's training shards hold the negatives `training_lists(..., epoch=e)` draws for
    each sample: the same seed gives the Ray path and the local loop the same lists."""
    from llara.recsys.retrieval import training_lists

    config = toy_config(toy_inputs, tmp_path / "run", epochs=2)
    directory = build_shards(config, progress=False, log=lambda *_: None)
    manifest = ShardManifest.read(directory)
    assert len(manifest.splits["train"]["epochs"]) == 2
    dataset = PreparedDataset.open(toy_inputs[0])
    train = dataset.samples("train")
    kept = train.select(np.flatnonzero(train.len_history >= config.prompt.min_history))
    tables = [pq.read_table(manifest.files(directory, "train", e)) for e in (0, 1)]
    for epoch, table in enumerate(tables):
        ordered = in_training_order(kept, epoch)
        assert table["sample_id"].to_pylist() == ordered.sample_id.tolist()
        local = training_lists(ordered, "random", dataset.num_items, 10, 0, epoch)
        assert table["candidates"].to_pylist() == local.items.tolist()
    assert tables[0]["sample_id"].to_pylist() != tables[1]["sample_id"].to_pylist()
    lists = [dict(zip(t["sample_id"].to_pylist(), t["candidates"].to_pylist())) for t in tables]
    assert [lists[0][s] for s in kept.sample_id.tolist()] != \
        [lists[1][s] for s in kept.sample_id.tolist()]  # fresh negatives every epoch
    # The local loop's own epoch-1 lists for a subset of samples are the same rows' lists.
    subset = kept.select(np.arange(3, 9))
    assert training_lists(subset, "random", dataset.num_items, 10, 0, 1).items.tolist() == \
        [lists[1][s] for s in subset.sample_id.tolist()]


def test_a_limited_run_trains_on_random_users_not_the_first_few(ray_local, toy_inputs,
                                                                tmp_path):
    """Prepared tables keep a user's rows together; a limit (or max_train_samples, which takes
    a prefix of the shards) must still sample across users, a new sample each epoch."""
    config = toy_config(toy_inputs, tmp_path / "run", epochs=2)
    config.shards.splits, config.shards.limit = ("train", "test"), 40
    manifest = ShardManifest.read(build_shards(config, progress=False, log=lambda *_: None))
    dataset = PreparedDataset.open(toy_inputs[0])
    train = dataset.samples("train")
    head_users = set(train.user[:40])
    for epoch in (0, 1):
        drawn = in_training_order(train, epoch).select(np.arange(40))
        drawn = drawn.select(np.flatnonzero(drawn.len_history >= config.prompt.min_history))
        table = pq.read_table(manifest.files(Path(config.shard_dir()), "train", epoch))
        assert table["sample_id"].to_pylist() == drawn.sample_id.tolist()
        assert len(set(drawn.user)) >= 2 * len(head_users)
    assert pq.read_table(manifest.files(Path(config.shard_dir()), "test"))[
        "sample_id"].to_pylist() == dataset.samples("test").sample_id[:40].tolist()


def test_shards_are_rebuilt_when_anything_that_shapes_them_changes(ray_local, toy_inputs,
                                                                    tmp_path):
    import copy
    import shutil

    from llara.ray_jobs.train import shard_manifest, shards_outdated

    def outdated(config) -> str | None:  # why the shards on disk cannot serve config; no build
        return shards_outdated(config, None, lambda *_: None)[1]

    said = []
    templates = tmp_path / "templates.txt"
    templates.write_text("History: [HistoryHere]. Pick one of [CansHere]. Answer:\n")
    config = toy_config(toy_inputs, tmp_path / "run")
    config.shards.dir = str(tmp_path / "shards")
    config.shards.splits, config.shards.limit = ("train",), 64  # each build is quick
    config.prompt.template_file = str(templates)
    first = shard_manifest(config, None, False, said.append)
    said.clear()
    assert shard_manifest(config, None, False, said.append) == first and said == []

    # Another dataset folder with the same catalogue: item ids would still be valid.
    other = tmp_path / "other-data"
    shutil.copytree(toy_inputs[0], other)
    moved = copy.deepcopy(config)
    moved.data_dir = str(other)
    assert outdated(moved) == (f"shards in {tmp_path / 'shards'} were built for other inputs "
                               f"(data_dir (\"{toy_inputs[0]}\" -> \"{other}\"))")
    # The same folder edited in place: the dataset's content.
    (other / "dataset.json").write_text((other / "dataset.json").read_text() + "\n")
    assert outdated(moved).endswith("; dataset)")
    # The prompt's options; the template file, then the same file edited.
    for option, value, change in [
            ("template_file", None, f"template_file (\"{templates}\" -> null)"),
            ("min_history", 3, "min_history (2 -> 3)")]:
        changed = copy.deepcopy(config)
        setattr(changed.prompt, option, value)
        assert change in outdated(changed)
    templates.write_text("Seen: [HistoryHere]. Choose from [CansHere]. Answer:\n")
    assert outdated(config).endswith("(templates)")
    config.train.epochs = 2
    assert "epochs (1 -> 2)" in outdated(config)
    said.clear()
    rebuilt = shard_manifest(config, None, False, said.append)
    assert said[0].startswith(f"shards in {tmp_path / 'shards'} were built for other inputs (")
    assert said[0].endswith("): rebuilding") and "templates" in said[0]
    rows = pq.read_table(rebuilt.files(tmp_path / "shards", "train"))
    tokenizer = load_tokenizer("tiny", PreparedDataset.open(toy_inputs[0]).titles())
    assert tokenizer.decode(rows["input_ids"][0].as_py()).count("Choose from") == 1
    assert outdated(config) is None  # nothing changed: reused
    config.train.epochs = 1
    assert outdated(config) is None  # two epochs serve a one-epoch run
