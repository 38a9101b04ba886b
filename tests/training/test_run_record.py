"""One run per output folder, and checkpoints bound to their inputs by content."""

import json
import shutil

import pytest

from llara.common.atomic import ForeignFilesError
from llara.common.errors import ConfigError, DataError
from llara.config.data import DataConfig
from llara.config.io import apply_overrides
from llara.data.holdout import holdout_split
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.inference.trained import load_trained
from llara.recsys.checkpoint import load_checkpoint, save_checkpoint
from llara.training.inputs import checked_run_config
from llara.training.loop import train_local
from llara.training.run_record import RECORD_FILE, RunRecord, config_changes
from tests.conftest import synthetic_log, toy_config, write_ml100k

QUIET = dict(progress=False, log=lambda *_: None)


@pytest.fixture
def own_inputs(toy_inputs, tmp_path):
    """Copies of the toy dataset and SASRec that a test may change."""
    data, rec = toy_inputs
    shutil.copytree(data, tmp_path / "data")
    shutil.copytree(rec, tmp_path / "sasrec")
    return tmp_path / "data", tmp_path / "sasrec"


def test_a_run_records_its_config_and_inputs_and_refuses_another_run_in_its_folder(own_inputs,
                                                                                  tmp_path):
    config = toy_config(own_inputs, tmp_path / "run", max_train_samples=8)
    train_local(config, **QUIET)
    record = RunRecord.read(tmp_path / "run")
    assert record.status == "finished" and set(record.inputs) == {
        "data", "rec_checkpoint", "fusion_rec_checkpoint"}
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    other = apply_overrides(config, ["train.lr=0.01", "train.seed=3"])
    with pytest.raises(ConfigError, match=r"holds another run \(train.lr: 0.001 -> 0.01; "
                                          r"train.seed: 0 -> 3\)"):
        train_local(other, **QUIET)
    after = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert after == before  # refused before any work: nothing written over
    lines = []
    train_local(config, progress=False, log=lines.append)  # the same run: trained again, said
    assert any("one process does not resume" in line for line in lines)


def test_a_folder_with_a_metrics_log_no_run_recorded_is_left_as_it_is(own_inputs, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"mine": 1}\n')
    with pytest.raises(ConfigError, match="holds metrics.jsonl but no run-record.json"):
        train_local(toy_config(own_inputs, out, max_train_samples=8), **QUIET)
    assert (out / "metrics.jsonl").read_text() == '{"mine": 1}\n'
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl"]


def test_config_changes_name_every_option_but_the_free_ones():
    before = {"train": {"lr": 1.0, "seed": 0}, "distributed": {"max_failures": 0}}
    after = {"train": {"lr": 2.0, "seed": 0}, "distributed": {"max_failures": 3}, "x": 1}
    assert config_changes(before, after) == ["train.lr: 1.0 -> 2.0", "x: None -> 1"]


def retrain_recommender(rec_dir, seed_shift: float = 1e-3):
    """`llara rec train` again into the same folder: other weights, same shape."""
    loaded = load_checkpoint(rec_dir)
    for parameter in loaded.model.parameters():
        parameter.data.add_(seed_shift)
    save_checkpoint(rec_dir, loaded.model, loaded.config, loaded.num_items, loaded.max_history,
                    loaded.info)


def test_a_checkpoint_refuses_a_recommender_trained_again_into_its_folder(own_inputs, tmp_path):
    checkpoint = train_local(toy_config(own_inputs, tmp_path / "run", max_train_samples=8),
                             **QUIET).checkpoint_dir
    assert checked_run_config(checkpoint).rec_checkpoint == str(own_inputs[1])
    retrain_recommender(own_inputs[1])
    with pytest.raises(DataError, match=r"inputs changed since it was trained: the "
                                        r"recommender .*sasrec \(rec_checkpoint: digest"):
        checked_run_config(checkpoint)
    with pytest.raises(DataError, match="rec_checkpoint: digest"):
        load_trained(checkpoint, "cpu", log=lambda *_: None)


def test_a_checkpoint_refuses_data_prepared_again_with_another_split(own_inputs, tmp_path):
    checkpoint = train_local(toy_config(own_inputs, tmp_path / "run", max_train_samples=8),
                             **QUIET).checkpoint_dir
    raw = write_ml100k(tmp_path / "raw", synthetic_log(num_users=60), 40)
    prepare_dataset(raw, own_inputs[0], DataConfig(num_candidates=10, split_seed=7))
    with pytest.raises(DataError, match=r"the prepared dataset .*data \(data_dir: digest"):
        checked_run_config(checkpoint)


def test_an_old_checkpoint_without_digests_is_used_with_a_warning(own_inputs, tmp_path):
    checkpoint = train_local(toy_config(own_inputs, tmp_path / "run", max_train_samples=8),
                             **QUIET).checkpoint_dir
    payload = json.loads((checkpoint / "run.json").read_text())
    del payload["inputs"]
    (checkpoint / "run.json").write_text(json.dumps(payload))
    lines = []
    checked_run_config(checkpoint, log=lines.append)
    assert lines and "records no digest of its inputs" in lines[0]


def test_a_holdout_part_refuses_a_source_changed_or_gone(own_inputs, tmp_path):
    """Popularity counts the source's training table: a part checks it is the one it was
    split from, instead of falling back to its own rows."""
    from llara.data.holdout import whole_training_set

    data, _ = own_inputs
    report = holdout_split(data, last=2)
    part = PreparedDataset.open(report.llm_dir)
    assert whole_training_set(part).directory == data
    raw = write_ml100k(tmp_path / "raw", synthetic_log(num_users=60), 40)
    prepare_dataset(raw, data, DataConfig(num_candidates=10, split_seed=9))
    with pytest.raises(DataError, match="changed since this part was split from it"):
        whole_training_set(part)
    shutil.rmtree(data)
    with pytest.raises(DataError, match="is gone"):
        whole_training_set(part)


def test_a_damaged_run_record_is_one_line(tmp_path):
    (tmp_path / RECORD_FILE).write_text("{")
    with pytest.raises(DataError, match="unreadable run record"):
        RunRecord.read(tmp_path)
    (tmp_path / RECORD_FILE).write_text(json.dumps({"format": "x"}))
    with pytest.raises(DataError, match="not a run record"):
        RunRecord.read(tmp_path)


def test_discarding_a_run_removes_only_a_recorded_runs_folder(own_inputs, tmp_path):
    from llara.training.run_record import discard_run

    out = tmp_path / "run"
    train_local(toy_config(own_inputs, out, max_train_samples=8), **QUIET)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ForeignFilesError, match="notes.txt"):
        discard_run(out)
    assert (out / "notes.txt").read_text() == "mine" and (out / "best").is_dir()
    (out / "notes.txt").unlink()
    (out / "shards").mkdir()  # `llara data shards` may have built them first: kept
    (out / "shards" / "manifest.json").write_text("{}")
    assert discard_run(out) and sorted(p.name for p in out.iterdir()) == ["shards"]
    assert not discard_run(out)  # nothing but shards: nothing to discard
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "metrics.jsonl").write_text("x")
    with pytest.raises(ConfigError, match="no run-record.json"):
        discard_run(foreign)
    assert (foreign / "metrics.jsonl").read_text() == "x"


def test_a_run_that_failed_before_its_first_checkpoint_gives_way(own_inputs, tmp_path):
    """A typo in the first try leaves a record but nothing to resume or use: the corrected
    run takes the folder, and says so."""
    from llara.config.io import apply_overrides

    config = toy_config(own_inputs, tmp_path / "run", max_train_samples=8)
    with pytest.raises(Exception):
        train_local(apply_overrides(config, ["llm=/nowhere/model.gguf"]), **QUIET)
    assert RunRecord.read(tmp_path / "run").status == "running"
    lines = []
    train_local(apply_overrides(config, ["train.lr=0.002"]), progress=False, log=lines.append)
    assert any("stopped before its first checkpoint" in line for line in lines)
    assert RunRecord.read(tmp_path / "run").config["train"]["lr"] == 0.002


def test_the_record_compares_paths_resolved_and_inputs_by_content(own_inputs, tmp_path):
    from llara.training.run_record import plain_config

    config = apply_overrides(toy_config(own_inputs, tmp_path / "run"),
                             [f"shards.dir={tmp_path / 'shards'}"])
    record = RunRecord(plain_config(config), {"data": "d"})
    same = apply_overrides(config, [f"output_dir={tmp_path / 'x' / '..' / 'run'}",
                                    f"shards.dir={tmp_path / 'a' / '..' / 'shards'}"])
    moved = apply_overrides(config, [f"data_dir={tmp_path / 'copy-of-data'}"])
    assert record.changes_for(same, {"data": "d"}) == []
    assert record.changes_for(moved, {"data": "d"}) == []  # the digest decides
    assert record.changes_for(moved, {"data": "e"}) == ["the digest of data"]


def test_hard_negatives_count_the_budget_and_the_schedule_in_answered_rows(own_inputs,
                                                                           tmp_path):
    """With candidates.source=recommender the local loop trains `max_train_samples` rows whose
    answer was retrieved: its steps are planned on them, so the curriculum and the learning
    rate run their whole course."""
    import math

    from llara.data.prepare import PreparedDataset
    from llara.recsys.checkpoint import load_checkpoint
    from llara.recsys.retrieval import answered_rows
    from llara.training.inputs import eligible

    config = apply_overrides(toy_config(own_inputs, tmp_path / "run", max_train_samples=24),
                             ["candidates.source=recommender", "candidates.retrieve=10"])
    lines = []
    result = train_local(config, progress=False, log=lines.append)
    dataset = PreparedDataset.open(own_inputs[0])
    train = eligible(dataset.samples("train"), config.prompt.min_history)
    answered = answered_rows(load_checkpoint(own_inputs[1]).model, train, 10)
    assert 0 < len(answered) < len(train)
    assert any(f"answer of {len(answered)} of {len(train)} training rows" in line
               for line in lines)
    assert result.steps == math.ceil(min(24, len(answered)) / config.train.batch_size)
