"""`llara data holdout`: each user's latest training rows go to the LLM stage, the rest to the
recommender; the source is never changed, and nothing the split did not write is replaced."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from llara.common.errors import ConfigError, DataError
from llara.data import holdout_split, newest_rows
from llara.data.holdout import default_parts
from tests.data.test_tables import DAMAGES, damage_parquet


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def source(toy_inputs, tmp_path):
    data, _ = toy_inputs
    shutil.copytree(data, tmp_path / "data")
    return tmp_path / "data"


def test_newest_rows_takes_each_users_last_rows_in_table_order():
    users = np.array([7, 3, 7, 7, 3, 9, 7])  # interleaved, as a table may hold them
    assert newest_rows(users, 1).tolist() == [4, 5, 6]
    assert newest_rows(users, 2).tolist() == [1, 3, 4, 5, 6]
    assert newest_rows(users, 10).tolist() == list(range(7))


def test_the_split_gives_each_users_newest_rows_to_the_llm_and_keeps_the_source(source):
    before = digests(source)
    report = holdout_split(source, last=2)
    assert (report.rec_dir, report.llm_dir) == default_parts(source, 2)
    full = pq.read_table(source / "train.parquet").to_pydict()
    llm = pq.read_table(report.llm_dir / "train.parquet").to_pydict()
    rec = pq.read_table(report.rec_dir / "train.parquet").to_pydict()
    assert sorted(llm["sample_id"] + rec["sample_id"]) == sorted(full["sample_id"])
    assert not set(llm["sample_id"]) & set(rec["sample_id"])
    for user in set(full["user"]):
        mine = [s for s, u in zip(full["sample_id"], full["user"]) if u == user]
        assert [s for s, u in zip(llm["sample_id"], llm["user"]) if u == user] == mine[-2:]
        assert [s for s, u in zip(rec["sample_id"], rec["user"]) if u == user] == mine[:-2]
    assert (report.rec_rows, report.llm_rows) == (len(rec["sample_id"]), len(llm["sample_id"]))
    for part, rows in ((report.rec_dir, report.rec_rows), (report.llm_dir, report.llm_rows)):
        meta = json.loads((part / "dataset.json").read_text())
        assert meta["samples"]["train"] == rows and meta["holdout"]["last"] == 2
        for name in ("items.parquet", "val.parquet", "test.parquet"):
            assert (part / name).read_bytes() == (source / name).read_bytes()
    assert digests(source) == before


def test_a_second_split_replaces_its_own_parts(source, tmp_path):
    first = holdout_split(source, last=2, rec_dir=tmp_path / "r", llm_dir=tmp_path / "l")
    again = holdout_split(source, last=3, rec_dir=tmp_path / "r", llm_dir=tmp_path / "l")
    assert again.llm_rows > first.llm_rows
    assert json.loads((tmp_path / "l" / "dataset.json").read_text())["holdout"]["last"] == 3


def test_a_folder_the_split_did_not_write_is_left_as_it_is(source, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("my notes")
    with pytest.raises(DataError, match="not a part written by `llara data holdout`"):
        holdout_split(source, last=2, rec_dir=mine)
    assert [p.name for p in mine.iterdir()] == ["notes.md"]
    other = tmp_path / "other-dataset"  # a prepared dataset is not a part either
    shutil.copytree(source, other)
    with pytest.raises(DataError, match="not a part"):
        holdout_split(source, last=2, llm_dir=other)
    assert digests(other) == digests(source)
    assert not default_parts(source, 2)[0].exists()  # refused before writing anything


@pytest.mark.parametrize("where", ["source", "inside", "above"])
def test_a_part_never_writes_over_the_source(source, where):
    before = digests(source)
    target = {"source": source, "inside": source / "rec", "above": source.parent}[where]
    with pytest.raises(ConfigError, match="would write over the source dataset"):
        holdout_split(source, last=2, rec_dir=target)
    assert digests(source) == before


def test_bad_options_are_named(source, tmp_path):
    with pytest.raises(ConfigError, match="invalid '--last': 0"):
        holdout_split(source, last=0)
    for llm_dir in (tmp_path / "x", tmp_path / "x" / "inside"):
        with pytest.raises(ConfigError, match="overlap"):
            holdout_split(source, last=2, rec_dir=tmp_path / "x", llm_dir=llm_dir)
    with pytest.raises(DataError, match="recommender's part would be empty"):
        holdout_split(source, last=1000)
    with pytest.raises(DataError, match="no dataset.json"):
        holdout_split(tmp_path / "nothing", last=2)
    assert not any(p.exists() for p in default_parts(source, 1000))


def test_popularity_counts_come_from_the_whole_training_table_it_was_split_from(source,
                                                                               tmp_path):
    from llara.data import PreparedDataset, whole_training_set

    report = holdout_split(source, last=2)
    part = PreparedDataset.open(report.llm_dir)
    assert whole_training_set(part).directory.resolve() == source.resolve()
    whole = PreparedDataset.open(source)
    assert whole_training_set(whole) is whole
    shutil.move(source, tmp_path / "moved")
    with pytest.raises(DataError, match="is gone"):  # not the part's few rows, silently
        whole_training_set(part)


def test_the_dataset_may_be_the_current_folder(source, monkeypatch):
    """`llara data holdout .`: the parts go beside the folder "." names, not nowhere."""
    monkeypatch.chdir(source)
    assert default_parts(Path("."), 2) == default_parts(source, 2)
    report = holdout_split(".", last=2)
    assert report.rec_dir == source.resolve().with_name("data-rec-last2")
    assert report.llm_dir == source.resolve().with_name("data-llm-last2")
    assert (report.llm_dir / "train.parquet").is_file()
    monkeypatch.chdir(source.parent / "data-rec-last2")
    assert default_parts(Path("../data"), 3)[0] == source.resolve().with_name("data-rec-last3")


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_training_table_is_one_line_naming_it(source, how):
    damage_parquet(source / "train.parquet", how)
    with pytest.raises(DataError) as caught:
        holdout_split(source, last=2)
    message = str(caught.value)
    assert message.startswith(f"{source / 'train.parquet'}: not a readable Parquet file")
    assert "\n" not in message
    assert not any(p.exists() for p in default_parts(source, 2))  # nothing written
