import json

import numpy as np
import pytest

from llara.common.atomic import ForeignFilesError
from llara.common.errors import ConfigError, DataError
from llara.config.data import DataConfig
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.data.tables import read_samples
from tests.conftest import synthetic_log, write_ml100k


def test_user_level_split_and_windows(toy_raw, tmp_path):
    report = prepare_dataset(toy_raw, tmp_path / "out", DataConfig(split_seed=1))
    data = PreparedDataset.open(tmp_path / "out")
    splits = {s: data.samples(s) for s in ("train", "val", "test")}
    users = {s: set(samples.user) for s, samples in splits.items()}
    assert not (users["train"] & users["val"]) and not (users["train"] & users["test"])
    assert not (users["val"] & users["test"])
    assert len(users["val"]) == len(users["test"]) == 12  # 10% of 120 users each
    assert report.samples["train"] == 96 * (14 - 1)  # one sample per interaction after the first
    # Evaluation users give one sample each: final interaction, the 10 items before it.
    log = synthetic_log()
    val = splits["val"]
    for row in range(len(val)):
        items = [i - 1 for u, i, *_ in log if str(u) == val.user[row]]
        assert val.next[row] == items[-1]
        assert val.history[row].tolist() == items[-11:-1]
        assert val.len_history[row] == 10
    train = splits["train"]
    short = train.len_history < 10
    assert short.any()
    # Right padding, oldest first, as in the paper's released tables.
    row = int(np.flatnonzero(train.len_history == 3)[0])
    assert train.history[row, 3:].tolist() == [40] * 7
    ids = np.concatenate([s.sample_id for s in splits.values()])
    assert len(np.unique(ids)) == len(ids)
    meta = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert meta["num_items"] == 40 and meta["padding_id"] == 40


def test_rows_per_user_gives_each_held_out_user_their_last_k_interactions(toy_raw, tmp_path):
    one = prepare_dataset(toy_raw, tmp_path / "one", DataConfig(split_seed=1))
    many = prepare_dataset(toy_raw, tmp_path / "many", DataConfig(split_seed=1, rows_per_user=4))
    assert many.samples["val"] == 4 * one.samples["val"] == 48
    assert many.samples["train"] == one.samples["train"]  # the same users train
    first, data = (PreparedDataset.open(tmp_path / x) for x in ("one", "many"))
    log = synthetic_log()
    val = data.samples("val")
    for user in set(val.user):
        items = [i - 1 for u, i, *_ in log if str(u) == user]
        rows = np.flatnonzero(np.array(val.user) == user)
        assert val.next[rows].tolist() == items[-4:]  # oldest first
        for row, end in zip(rows, range(len(items) - 4, len(items))):
            length = min(10, end)
            assert val.history[row, :length].tolist() == items[end - length:end]
    # K = 1 is today's protocol: each user's final row is the same row.
    finals = first.samples("val")
    last = [int(np.flatnonzero(np.array(val.user) == u)[-1]) for u in finals.user]
    assert val.next[last].tolist() == finals.next.tolist()
    assert val.history[last].tolist() == finals.history.tolist()
    # ... under the same sample ids (which seed the candidate lists); training rows too.
    assert val.sample_id[last].tolist() == finals.sample_id.tolist()
    assert data.samples("train").sample_id.tolist() == first.samples("train").sample_id.tolist()
    ids = np.concatenate([data.samples(s).sample_id for s in ("train", "val", "test")])
    assert sorted(ids.tolist()) == list(range(len(ids)))


def test_rows_per_user_must_be_positive():
    with pytest.raises(ConfigError, match="data.rows_per_user"):
        DataConfig(rows_per_user=0)


def test_same_seed_same_tables_other_seed_other_split(toy_raw, tmp_path):
    prepare_dataset(toy_raw, tmp_path / "a", DataConfig(split_seed=3))
    prepare_dataset(toy_raw, tmp_path / "b", DataConfig(split_seed=3))
    prepare_dataset(toy_raw, tmp_path / "c", DataConfig(split_seed=4))
    a, b, c = (PreparedDataset.open(tmp_path / x).samples("val") for x in "abc")
    assert a.user == b.user and a.user != c.user


def test_min_history_drops_short_training_samples(toy_raw, tmp_path):
    report = prepare_dataset(toy_raw, tmp_path / "out", DataConfig(min_history=3))
    assert report.samples["train"] == 96 * (14 - 3)
    train = PreparedDataset.open(tmp_path / "out").samples("train", min_history=3)
    assert train.len_history.min() == 3


def test_failure_leaves_existing_output_untouched(toy_raw, tmp_path):
    out = tmp_path / "out"
    prepare_dataset(toy_raw, out, DataConfig())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (toy_raw / "u.data").write_text("1\t2\t3\tnot-a-time\n")
    with pytest.raises(DataError, match="not-a-time"):
        prepare_dataset(toy_raw, out, DataConfig())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_reading_a_table_with_a_missing_column(toy_raw, tmp_path):
    import pyarrow.parquet as pq

    prepare_dataset(toy_raw, tmp_path / "out", DataConfig())
    path = tmp_path / "out" / "val.parquet"
    pq.write_table(pq.read_table(path).drop(["next"]), path)
    with pytest.raises(DataError, match="missing column 'next'"):
        read_samples(path, 40)


def test_history_shorter_than_the_minimum_is_rejected(tmp_path):
    raw = write_ml100k(tmp_path / "raw", synthetic_log(num_users=30), 40)
    ref = tmp_path / "ref"
    ref.mkdir()
    row = {"history": [1] + [40] * 9, "len_history": 1, "next": 2}
    (ref / "val.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match="shorter than the minimum") as info:
        prepare_dataset(raw, tmp_path / "out", DataConfig(min_history=3), reference_dir=ref)
    assert info.value.line == 1
    assert not (tmp_path / "out").exists()


def test_preparing_into_the_raw_folder_keeps_every_raw_file(toy_raw, tmp_path):
    (toy_raw / "NOTES.txt").write_text("my notes")
    before = {p.name: p.read_bytes() for p in toy_raw.iterdir()}
    with pytest.raises(ForeignFilesError, match=r"refusing to replace.*NOTES\.txt, u\.data"):
        prepare_dataset(toy_raw, toy_raw, DataConfig())
    assert {p.name: p.read_bytes() for p in toy_raw.iterdir()} == before


def test_an_output_folder_above_the_raw_folder_is_refused(tmp_path):
    raw = write_ml100k(tmp_path / "data" / "ml100k", synthetic_log(num_users=30), 40)
    with pytest.raises(ForeignFilesError, match="ml100k"):
        prepare_dataset(raw, tmp_path / "data", DataConfig())
    assert sorted(p.name for p in raw.iterdir()) == ["u.data", "u.item"]


def test_released_tables_are_not_replaced_by_their_import(tmp_path):
    from llara.data.released import import_released

    source = tmp_path / "lastfm"
    source.mkdir()
    (source / "id2name.txt").write_text("".join(f"{i}::Artist {i}\n" for i in range(30)))
    rows = [{"history": [1, 2, 3] + [30] * 7, "len_history": 3, "next": 4}]
    for name in ("train.jsonl", "val.jsonl"):
        (source / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    with pytest.raises(ForeignFilesError, match="id2name.txt"):
        import_released(source, source, DataConfig())
    assert {p.name: p.read_bytes() for p in source.iterdir()} == before


def test_prompt_titles_add_the_year_and_genres_of_the_item_file(toy_raw, tmp_path):
    prepare_dataset(toy_raw, tmp_path / "out", DataConfig())
    data = PreparedDataset.open(tmp_path / "out")
    titles = data.titles()
    assert data.prompt_titles("title") == titles
    with_year, with_genres = data.prompt_titles("year"), data.prompt_titles("genres")
    assert len(with_year) == len(with_genres) == len(titles)
    assert all(y.startswith(t + " (") and g.startswith(y[:-1]) for t, y, g in
               zip(titles, with_year, with_genres))
    assert any(len(g) > len(y) for y, g in zip(with_year, with_genres))


def test_user_ids_that_only_look_like_numbers_sort_as_text():
    from llara.data.readers import RawDataset
    from llara.data.sequences import build_user_logs

    # "²" is a digit to str.isdigit() but no number to int(): it sorts after the numbers
    raw = RawDataset(item_ids=["a", "b"], titles=["A", "B"], extras=["", ""],
                     user_ids=["10", "\u00b2", "2"], users=np.array([0, 1, 2, 0]),
                     items=np.array([0, 1, 0, 1]), ratings=np.full(4, 5.0, np.float32),
                     timestamps=np.array([1.0, 2.0, 3.0, 4.0]), source="test")
    assert [log.user for log in build_user_logs(raw)] == ["2", "10", "\u00b2"]
