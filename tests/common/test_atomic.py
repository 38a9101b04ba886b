"""Folders are replaced only when they hold nothing but an earlier output of the same kind."""

import pytest

from llara.common.atomic import ForeignFilesError, atomic_directory, foreign_entries

OWNED = ("table.parquet", "meta.json", "part-*.parquet")


def test_an_earlier_output_is_replaced_as_a_whole(tmp_path):
    out = tmp_path / "out"
    with atomic_directory(out, OWNED) as tmp:
        (tmp / "table.parquet").write_text("old")
        (tmp / "part-0.parquet").write_text("old")
    with atomic_directory(out, OWNED) as tmp:
        (tmp / "table.parquet").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["table.parquet"]
    assert (out / "table.parquet").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left


def test_a_folder_with_foreign_files_is_refused_before_the_block_runs(tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    (out / "u.data").write_text("1\t2\t3\t4\n")
    (out / "NOTES.txt").write_text("mine")
    (out / "table.parquet").write_text("ours")
    ran = []
    with pytest.raises(ForeignFilesError, match=r"raw: refusing to replace.*2 entries.*"
                       r"NOTES\.txt, u\.data"):
        with atomic_directory(out, OWNED):
            ran.append(True)
    assert not ran
    assert sorted(p.name for p in out.iterdir()) == ["NOTES.txt", "table.parquet", "u.data"]
    assert (out / "NOTES.txt").read_text() == "mine"


def test_files_that_appear_while_the_block_runs_stop_the_swap(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ForeignFilesError, match="late.txt"):
        with atomic_directory(out, OWNED) as tmp:
            (tmp / "table.parquet").write_text("new")
            (out / "late.txt").write_text("a user's file")
    assert (out / "late.txt").read_text() == "a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_parent_folder_holding_other_folders_is_refused(tmp_path):
    (tmp_path / "data" / "ml100k").mkdir(parents=True)
    (tmp_path / "data" / "ml100k" / "u.data").write_text("x")
    assert foreign_entries(tmp_path / "data", OWNED) == ["ml100k"]
    with pytest.raises(ForeignFilesError, match="ml100k"):
        with atomic_directory(tmp_path / "data", OWNED):
            pass
    assert (tmp_path / "data" / "ml100k" / "u.data").read_text() == "x"


def test_a_file_in_the_way_is_refused(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(ForeignFilesError, match="is a file"):
        with atomic_directory(tmp_path / "out", OWNED):
            pass
    assert (tmp_path / "out").read_text() == "a file"
