"""The paper's released tables imported as they are: JSON lines or pandas pickles (read by a
restricted unpickler), a names file, the paper's filters counted, bad input refused with the
file and line, and nothing written unless all is well."""

import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from llara.common.errors import DataError
from llara.config.data import DataConfig
from llara.data.pickles import RefusedPickle, frame_rows
from llara.data.prepare import PreparedDataset
from llara.data.released import import_released, is_released

ITEMS = 30
PAD = ITEMS


def toy_rows(users: int = 12, length: int = 8, seed: int = 0) -> dict[str, list[dict]]:
    """LastFM-shaped rows: every position of a training user's log, the released quirk
    included (the first row of each user has len_history 1 and no item); one row per
    validation/test user."""
    rng = np.random.default_rng(seed)
    tables = {"train": [], "val": [], "test": []}
    for user in range(users):
        log = rng.choice(ITEMS, length, replace=False).tolist()
        split = "val" if user % 4 == 0 else "test" if user % 4 == 1 else "train"
        positions = range(length) if split == "train" else [length - 1]
        for position in positions:
            history = log[max(0, position - 10):position]
            tables[split].append({"history": history + [PAD] * (10 - len(history)),
                                  "len_history": max(1, len(history)), "next": log[position]})
    return tables


def write_released(folder, tables, names=None, pickled=False):
    folder.mkdir(parents=True, exist_ok=True)
    files = {"train": ("train.jsonl", "train_data.df"), "val": ("val.jsonl", "Val_data.df"),
             "test": ("test.jsonl", "Test_data.df")}
    for split, rows in tables.items():
        jsonl, pickle_name = files[split]
        if pickled:
            pd.DataFrame({"seq": [r["history"] for r in rows],
                          "len_seq": [r["len_history"] for r in rows],
                          "next": [r["next"] for r in rows]}).to_pickle(folder / pickle_name)
        else:
            (folder / jsonl).write_text("".join(json.dumps(r) + "\n" for r in rows))
    names = names or [f"{i}::Artist {i}, The" for i in range(ITEMS)]
    (folder / "id2name.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return folder


def test_json_lines_import_keeps_the_tables_and_counts_what_it_drops(tmp_path):
    tables = toy_rows()
    del tables["test"]
    source = write_released(tmp_path / "raw", tables)
    assert is_released(source)
    report = import_released(source, tmp_path / "data", DataConfig(carve_validation=False))
    train = report.splits["train"]
    assert train.read == len(tables["train"]) and train.no_history == 6  # one per train user
    assert train.kept == train.read - 6 and train.llm_stage == sum(
        r["len_history"] >= 3 for r in tables["train"])
    assert report.splits["val"].kept == 3 and "test" not in report.splits
    assert report.domain == "music"
    data = PreparedDataset.open(tmp_path / "data")
    assert data.num_items == ITEMS and data.padding_id == PAD and data.domain == "music"
    assert data.titles()[4] == "Artist 4, The"  # artist names are not cleaned like movies
    val = data.samples("val")
    assert val.history.tolist() == [r["history"] for r in tables["val"]]
    assert val.next.tolist() == [r["next"] for r in tables["val"]]
    meta = json.loads((tmp_path / "data" / "dataset.json").read_text())
    assert meta["samples"]["test"] == 0 and meta["test_source"] == "none"
    with pytest.raises(DataError, match="no test rows .*expected --split train or val"):
        data.samples("test")


def test_without_a_test_table_validation_users_are_carved_out_of_training(tmp_path):
    tables = toy_rows(users=40)
    del tables["test"]
    source = write_released(tmp_path / "raw", tables)
    as_released = import_released(source, tmp_path / "kept", DataConfig(carve_validation=False))
    report = import_released(source, tmp_path / "data", DataConfig(rows_per_user=2))
    assert "2 of the training table's 20 users" in report.carved  # 10% of its users
    data = PreparedDataset.open(tmp_path / "data")
    val, test, train = (data.samples(s) for s in ("val", "test", "train"))
    # The released validation rows are the test rows now, with the ids (and so the candidate
    # lists) they had as the validation rows.
    kept = PreparedDataset.open(tmp_path / "kept").samples("val")
    assert test.history.tolist() == kept.history.tolist()
    assert test.sample_id.tolist() == kept.sample_id.tolist()
    # Two users' last two rows validate; none of those users' rows train.
    assert len(val) == 4 and len(set(val.user)) == 2
    assert not set(val.user) & set(train.user)
    assert len(train) + report.splits["val"].read == as_released.splits["train"].kept
    logs = {}
    for row in tables["train"]:  # rebuild each user's log from the released rows
        if row["len_history"] == 1 and row["history"][0] == PAD:
            logs[len(logs)] = []
        logs[len(logs) - 1].append(row["next"])
    for user in set(val.user):
        log = logs[int(user.split("-")[1])]
        rows = np.flatnonzero(np.array(val.user) == user)
        assert val.next[rows].tolist() == log[-2:]
        assert val.history[rows[-1], :val.len_history[rows[-1]]].tolist() == log[-11:-1]
    meta = json.loads((tmp_path / "data" / "dataset.json").read_text())
    assert meta["test_source"] == "the released validation rows (reported only)"
    assert meta["validation_source"] == report.carved


def test_carving_without_a_validation_share_is_a_clear_error(tmp_path):
    from llara.common.errors import ConfigError

    tables = toy_rows()
    del tables["test"]
    source = write_released(tmp_path / "raw", tables)
    with pytest.raises(ConfigError, match="data.split_ratios.*carve_validation"):
        import_released(source, tmp_path / "data", DataConfig(split_ratios=(0.9, 0.0, 0.1)))
    assert not (tmp_path / "data").exists()


def test_pickles_import_like_their_json_lines(tmp_path):
    tables = toy_rows(seed=1)
    write_released(tmp_path / "json", tables)
    write_released(tmp_path / "pickled", tables, pickled=True)
    with pytest.raises(DataError, match="is a pickle.*--allow-pickle"):
        import_released(tmp_path / "pickled", tmp_path / "refused", DataConfig())
    assert not (tmp_path / "refused").exists()
    import_released(tmp_path / "json", tmp_path / "a", DataConfig())
    import_released(tmp_path / "pickled", tmp_path / "b", DataConfig(), allow_pickle=True)
    for split in ("train", "val", "test"):
        a = PreparedDataset.open(tmp_path / "a").samples(split)
        b = PreparedDataset.open(tmp_path / "b").samples(split)
        assert np.array_equal(a.history, b.history) and np.array_equal(a.next, b.next)


def test_the_restricted_unpickler_refuses_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return os.system, ("echo owned > " + str(tmp_path / "owned"),)

    (tmp_path / "train_data.df").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(RefusedPickle, match=r"refers to (posix|nt)\.system"):
        frame_rows(tmp_path / "train_data.df")
    assert not (tmp_path / "owned").exists()
    # the same through the importer, with --allow-pickle: refused, nothing written
    write_released(tmp_path / "raw", {"val": toy_rows()["val"]})
    (tmp_path / "raw" / "train_data.df").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(RefusedPickle, match="system"):
        import_released(tmp_path / "raw", tmp_path / "data", DataConfig(), allow_pickle=True)
    assert not (tmp_path / "data").exists() and not (tmp_path / "owned").exists()


class Call:
    """Pickles as `function(*args)`: how a hostile file names whatever global it likes."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def hostile_arrow_frame(kind, length: int, data: bytes):
    """A DataFrame call wrapping a pyarrow array that states `length` rows over `data`."""
    import pandas
    import pyarrow as pa
    import pyarrow.lib

    state = (kind, length, 0, 0, [None, pa.py_buffer(data), pa.py_buffer(b"x")], [], None)
    return Call(pandas.DataFrame, Call(pyarrow.lib._restore_array, state))


@pytest.mark.parametrize("kind, length, data, match", [
    # a string array whose offsets buffer is 8 bytes for 10^9 rows: reading it would read
    # past the buffer (a crash, or heap contents in the imported table)
    ("large_string", 10**9, b"\0" * 8, "inconsistent Arrow array.*too small"),
    ("int64", 10**9, b"\0" * 8, "Arrow type .int64.; only string columns"),
])
def test_hostile_arrow_payloads_are_refused_before_anything_reads_them(tmp_path, kind, length,
                                                                       data, match):
    import pyarrow as pa

    path = tmp_path / "train_data.df"
    path.write_bytes(pickle.dumps(hostile_arrow_frame(getattr(pa, kind)(), length, data)))
    with pytest.raises(RefusedPickle, match=match):
        frame_rows(path)


@pytest.mark.parametrize("payload, match", [
    (lambda: Call(bytearray, 10**12), "bytearray from a size"),
    (lambda: Call(__import__("pyarrow").lib.type_for_alias, "int64"), "Arrow type 'int64'"),
    (lambda: Call(__import__("pyarrow").lib.py_buffer, Call(bytearray, 10**12)),
     "bytearray from a size"),
])
def test_checked_constructors_refuse_what_a_table_never_holds(tmp_path, payload, match):
    path = tmp_path / "train_data.df"
    path.write_bytes(pickle.dumps(payload()))
    with pytest.raises(RefusedPickle, match=match):
        frame_rows(path)


@pytest.mark.parametrize("make", [
    lambda: pickle.dumps(Call(__import__("pandas").core.indexes.base._new_Index,
                              __import__("pandas").Index, {}))[:-1],  # truncated
    lambda: pickle.dumps(Call(__import__("pandas").core.indexes.base._new_Index,
                              __import__("pandas").Index, {})),  # pandas raises inside
    lambda: pickle.dumps(Call(__import__("pandas").DataFrame, {"a": [1, 2], "b": [1]})),
    lambda: b"not a pickle at all",
])
def test_damaged_pickles_are_one_line_errors(tmp_path, make):
    path = tmp_path / "train_data.df"
    path.write_bytes(make())
    with pytest.raises(DataError, match=r"train_data\.df: not a readable pickle") as info:
        frame_rows(path)
    assert "\n" not in str(info.value)


def broken(kind: str, tables: dict) -> tuple[dict, list | None, str]:
    """A table or names file with one defect, and the error it must give."""
    rows = tables["train"]
    names = None
    if kind == "unknown id":
        rows[5]["next"] = ITEMS + 3
        match = "train.jsonl, line 6, column 'next': item id 33 is outside the catalogue"
    elif kind == "long history":
        rows[2]["history"] = rows[2]["history"] + [PAD]
        match = "train.jsonl, line 3, column 'history': history has 11 entries"
    elif kind == "length":
        rows[7]["len_history"] += 1
        match = "train.jsonl, line 8, column 'len_history': len_history .* disagrees"
    elif kind == "missing column":
        del rows[0]["next"]
        match = "train.jsonl, line 1, column 'next': missing column 'next'"
    elif kind == "name gap":
        names = [f"{i}::Artist {i}" for i in range(ITEMS) if i != 7] + [f"{ITEMS}::Extra"]
        match = "id2name.txt: no item 7 among 30 names"
    elif kind == "superscript id":  # a digit to isdigit(), not a number to int()
        names = [f"{i}::Artist {i}" for i in range(ITEMS)]
        names[4] = "\u00b2::Artist"
        match = r"id2name.txt, line 5: cannot read '\u00b2::Artist'"
    elif kind == "name twice":
        names = [f"{i}::Artist {i}" for i in range(ITEMS)] + ["3::Again"]
        match = "id2name.txt, line 31: item id 3 appears twice"
    else:
        names = [f"{i}::Artist {i}" for i in range(ITEMS)]
        names[9] = "9::DJ [CansEmb]"
        match = r"line 10: the name 'DJ \[CansEmb\]' holds the prompt marker \[CansEmb\]"
    return tables, names, match


@pytest.mark.parametrize("kind", ["unknown id", "long history", "length", "missing column",
                                  "name gap", "superscript id", "name twice", "marker"])
def test_bad_tables_are_refused_naming_the_file_and_line_and_nothing_is_written(tmp_path,
                                                                             kind):
    tables, names, match = broken(kind, toy_rows())
    source = write_released(tmp_path / "raw", tables, names)
    out = tmp_path / "data"
    out.mkdir()
    (out / "dataset.json").write_text("an earlier output")
    with pytest.raises(DataError, match=match):
        import_released(source, out, DataConfig())
    assert [p.name for p in out.iterdir()] == ["dataset.json"]  # untouched
    assert (out / "dataset.json").read_text() == "an earlier output"


def test_movielens_item_file_names_movies(tmp_path):
    tables = toy_rows()
    source = write_released(tmp_path / "raw", tables)
    (source / "id2name.txt").unlink()
    (source / "u.item").write_text("".join(f"{i + 1}|Heat {i}, The (1995)|x\n"
                                           for i in range(ITEMS)), encoding="latin-1")
    report = import_released(source, tmp_path / "data", DataConfig())
    data = PreparedDataset.open(tmp_path / "data")
    assert report.domain == "movies" and data.titles()[0] == "The Heat 0"
    # --set domain=... overrides what the names file implies
    import_released(source, tmp_path / "other", DataConfig(domain="games"))
    assert PreparedDataset.open(tmp_path / "other").domain == "games"
