"""The paper's released validation rows stay exactly as they are; their users never train."""

import json

import pytest

from llara.common.errors import DataError
from llara.config.data import DataConfig
from llara.data.prepare import PreparedDataset, prepare_dataset
from tests.conftest import SHARED_REF, synthetic_log, write_ml100k

REF_ML = SHARED_REF / "movielens"


@pytest.fixture(scope="module")
def movielens_prepared(movielens_raw, tmp_path_factory):
    if not (REF_ML / "val.jsonl").is_file():
        pytest.fail(f"reference rows missing at {REF_ML}")
    out = tmp_path_factory.mktemp("ml") / "prepared"
    report = prepare_dataset(movielens_raw, out, DataConfig(), reference_dir=REF_ML)
    return report, PreparedDataset.open(out)


def test_every_reference_row_is_kept_exactly(movielens_prepared):
    report, data = movielens_prepared
    rows = [json.loads(line) for line in (REF_ML / "val.jsonl").read_text().splitlines()]
    val = data.samples("val")
    assert len(val) == len(rows) == 94
    for row, (h, n, hist, nxt) in enumerate(zip(val.history, val.len_history, val.next,
                                                  val.history_ratings)):
        assert h.tolist() == rows[row]["history"]
        assert n == rows[row]["len_history"] and val.next[row] == rows[row]["next"]
        assert nxt.tolist() == [float(r) for r in rows[row]["history_ratings"]]
        assert val.next_rating[row] == rows[row]["next_rating"]
    assert report.reference.unambiguous == 94
    assert report.test_source.startswith("own split")


def test_no_training_sample_repeats_a_reference_row(movielens_prepared):
    report, data = movielens_prepared
    val, train, test = data.samples("val"), data.samples("train"), data.samples("test")

    def key(s, r):
        return tuple(s.history[r, :s.len_history[r]].tolist()), int(s.next[r])

    reference_keys = {key(val, r) for r in range(len(val))}
    assert not reference_keys & {key(train, r) for r in range(len(train))}
    excluded = set(report.reference.excluded_users)
    assert len(excluded) == 94 and set(val.user) == excluded
    assert not excluded & set(train.user) and not excluded & set(test.user)
    assert not set(test.user) & set(train.user)
    assert len(test) == 94  # 1/9 of the 849 remaining users: the 8:1:1 shares without val


def _reference_dir(tmp_path, rows, name="val.jsonl"):
    ref = tmp_path / "ref"
    ref.mkdir(exist_ok=True)
    (ref / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ref


def _row_of(log, user, upto, width=10, pad=40):
    items = [(i - 1, r) for u, i, r, _ in log if u == user][:upto]
    history, target = items[:-1][-width:], items[-1]
    return {"history": [i for i, _ in history] + [pad] * (width - len(history)),
            "len_history": len(history), "next": target[0],
            "history_ratings": [r for _, r in history] + [0] * (width - len(history)),
            "next_rating": target[1]}


def test_matching_on_sets_tolerates_tied_timestamps(tmp_path):
    log = synthetic_log(num_users=30)
    # Two of user 5's interactions share a timestamp and appear swapped in the reference row.
    tied = [(u, i, r, 1_000_000 if u == 5 else t) for u, i, r, t in log]
    raw = write_ml100k(tmp_path / "raw", tied, 40)
    row = _row_of(log, 5, upto=14)
    row["history"][0], row["history"][1] = row["history"][1], row["history"][0]
    row["history_ratings"][0], row["history_ratings"][1] = (row["history_ratings"][1],
                                                            row["history_ratings"][0])
    report = prepare_dataset(raw, tmp_path / "out", DataConfig(),
                             reference_dir=_reference_dir(tmp_path, [row]))
    assert report.reference.unambiguous == 1 and report.reference.excluded_users == ["5"]
    data = PreparedDataset.open(tmp_path / "out")
    assert "5" not in set(data.samples("train").user)
    assert data.samples("val").user == ["5"]


def test_reference_test_rows_are_used_when_given(tmp_path):
    log = synthetic_log(num_users=30)
    raw = write_ml100k(tmp_path / "raw", log, 40)
    ref = _reference_dir(tmp_path, [_row_of(log, 3, 14)])
    _reference_dir(tmp_path, [_row_of(log, 4, 14), _row_of(log, 9, 14)], "test.jsonl")
    report = prepare_dataset(raw, tmp_path / "out", DataConfig(), reference_dir=ref)
    assert report.samples["test"] == 2 and report.test_source == "reference"
    train_users = set(PreparedDataset.open(tmp_path / "out").samples("train").user)
    assert not {"3", "4", "9"} & train_users and len(train_users) == 27


def test_pickles_need_explicit_permission(tmp_path):
    pandas = pytest.importorskip("pandas")
    log = synthetic_log(num_users=30)
    raw = write_ml100k(tmp_path / "raw", log, 40)
    ref = tmp_path / "ref"
    ref.mkdir()
    pandas.DataFrame([_row_of(log, 2, 14)]).to_pickle(ref / "Val_data.df")
    with pytest.raises(DataError, match="--allow-pickle"):
        prepare_dataset(raw, tmp_path / "out", DataConfig(), reference_dir=ref)
    assert not (tmp_path / "out").exists()
    # Read by the restricted unpickler (pandas and numpy classes only), with the released
    # pickles' own column names (seq, len_seq) as well as ours.
    report = prepare_dataset(raw, tmp_path / "out", DataConfig(), reference_dir=ref,
                             allow_pickle=True)
    assert report.reference.unambiguous == 1
    row = _row_of(log, 2, 14)
    row["seq"], row["len_seq"] = row.pop("history"), row.pop("len_history")
    pandas.DataFrame([row]).to_pickle(ref / "Val_data.df")
    report = prepare_dataset(raw, tmp_path / "out", DataConfig(), reference_dir=ref,
                             allow_pickle=True)
    assert report.reference.unambiguous == 1


@pytest.mark.parametrize("line, match", [
    ("not json", "not valid JSON"),
    ('{"history": [1, 2], "len_history": 2, "next": 3}', "history has 2 entries"),
    ('{"history": [1,2,3,4,5,6,7,8,9,10], "len_history": 10}', "missing field 'next'"),
    ('{"history": [1,2,3,4,5,6,7,8,9,10], "len_history": 10, "next": 77}', "unknown item id 77"),
])
def test_bad_reference_rows(tmp_path, line, match):
    raw = write_ml100k(tmp_path / "raw", synthetic_log(num_users=30), 40)
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "val.jsonl").write_text(line + "\n")
    with pytest.raises(DataError, match=match) as info:
        prepare_dataset(raw, tmp_path / "out", DataConfig(), reference_dir=ref)
    assert info.value.line == 1 and info.value.path.endswith("val.jsonl")


def test_a_log_without_ratings_matches_rows_with_ratings_on_their_items(tmp_path):
    log = synthetic_log(num_users=30)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "toy.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n" + "".join(
        f"{u}\t{i}\t{t}\n" for u, i, _, t in log))
    (raw / "toy.item").write_text("item_id:token\tmovie_title:token_seq\n" + "".join(
        f"{i}\tFilm {i}\n" for i in range(1, 41)))
    rows = [_row_of(log, 4, 14), _row_of(log, 7, 14)]
    report = prepare_dataset(raw, tmp_path / "out", DataConfig(),
                             reference_dir=_reference_dir(tmp_path, rows))
    assert report.reference.unambiguous == 2 and report.reference.excluded_users == ["4", "7"]
    assert not {"4", "7"} & set(PreparedDataset.open(tmp_path / "out").samples("train").user)


def test_rows_whose_ratings_disagree_are_partial_matches_kept_out_of_training(tmp_path):
    log = synthetic_log(num_users=30)
    raw = write_ml100k(tmp_path / "raw", log, 40)
    changed = _row_of(log, 6, 14)
    changed["next_rating"] = 1 + changed["next_rating"] % 5  # not what user 6 gave it
    report = prepare_dataset(raw, tmp_path / "out", DataConfig(), reference_dir=_reference_dir(
        tmp_path, [_row_of(log, 2, 14), changed]))
    ref = report.reference
    assert (ref.unambiguous, ref.partial, ref.unmatched) == (1, 1, 0)
    # user 6, and any other user whose log holds the changed row's items, never trains
    assert {"2", "6"} <= set(ref.excluded_users)
    train = set(PreparedDataset.open(tmp_path / "out").samples("train").user)
    assert not set(ref.excluded_users) & train


def test_rows_of_another_dataset_stop_the_prepare_step(tmp_path):
    raw = write_ml100k(tmp_path / "raw", synthetic_log(num_users=30), 40)
    other = synthetic_log(num_users=30, seed=9)  # items no user of this log has in this order
    rows = [_row_of(other, u, 14) for u in (1, 2, 3)]
    for row in rows:
        row["history"][:row["len_history"]] = [(i * 7) % 40 for i in range(row["len_history"])]
    with pytest.raises(DataError, match="none of the 3 reference rows matches a user"):
        prepare_dataset(raw, tmp_path / "out", DataConfig(),
                        reference_dir=_reference_dir(tmp_path, rows))
    assert not (tmp_path / "out").exists()
