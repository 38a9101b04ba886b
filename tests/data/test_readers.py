from pathlib import Path

import pytest

from llara.common.errors import DataError
from llara.data.table_readers import read_raw
from tests.conftest import synthetic_log, write_ml1m, write_ml100k, write_recbole

ROWS = synthetic_log(num_users=5, num_items=12, length=4)


@pytest.mark.parametrize("writer, fmt", [(write_ml100k, "movielens-100k"),
                                         (write_ml1m, "movielens-1m"),
                                         (write_recbole, "recbole")])
def test_each_format_reads_the_same_log(tmp_path, writer, fmt):
    raw = read_raw(writer(tmp_path / fmt, ROWS, 12))
    assert raw.source == fmt
    assert raw.item_ids == [str(i) for i in range(1, 13)]
    assert [raw.user_ids[u] for u in raw.users] == [str(u) for u, *_ in ROWS]
    assert [raw.item_ids[i] for i in raw.items] == [str(i) for _, i, *_ in ROWS]
    assert raw.timestamps.tolist() == [float(t) for *_, t in ROWS]
    assert raw.ratings.tolist() == [float(r) for _, _, r, _ in ROWS]


def test_titles_and_extra_text(tmp_path):
    ml = read_raw(write_ml100k(tmp_path / "a", ROWS, 12))
    assert ml.titles[0] == "The Movie 1" and ml.extras[0] == "01-Jan-1995; Western"
    rb = read_raw(write_recbole(tmp_path / "b", ROWS, 12))
    assert rb.titles[2] == "A Game 3" and rb.extras[2] == "release_year: 2001"
    m1 = read_raw(write_ml1m(tmp_path / "c", ROWS, 12))
    assert m1.titles[0] == "Film 1" and m1.extras[0] == "Drama, Comedy"


def _expect(path: Path, match: str):
    with pytest.raises(DataError, match=match) as info:
        read_raw(path)
    return info.value


def test_unknown_item_id_names_file_and_line(tmp_path):
    raw = write_ml100k(tmp_path, ROWS, 12)
    lines = (raw / "u.data").read_text().splitlines()
    lines[6] = "1\t99\t3\t1000"
    (raw / "u.data").write_text("\n".join(lines) + "\n")
    error = _expect(raw, "unknown item id '99'")
    assert error.line == 7 and error.path.endswith("u.data")


def test_non_numeric_timestamp(tmp_path):
    raw = write_ml1m(tmp_path, ROWS, 12)
    text = (raw / "ratings.dat").read_text().splitlines()
    text[2] = "1::2::3::yesterday"
    (raw / "ratings.dat").write_text("\n".join(text) + "\n")
    error = _expect(raw, "'yesterday' is not a number")
    assert error.line == 3 and error.column == "timestamp"


def test_empty_file(tmp_path):
    raw = write_ml100k(tmp_path, ROWS, 12)
    (raw / "u.data").write_text("")
    _expect(raw, "u.data: file is empty")


def test_missing_recbole_column(tmp_path):
    raw = write_recbole(tmp_path, ROWS, 12)
    inter = raw / "toy.inter"
    inter.write_text("user_id:token\titem_id:token\trating:float\n1\t2\t3\n")
    error = _expect(raw, "missing column 'timestamp'")
    assert error.line == 1


def test_short_row_says_what_was_expected(tmp_path):
    raw = write_ml100k(tmp_path, ROWS, 12)
    (raw / "u.data").write_text("1\t2\t3\n")
    _expect(raw, r"line 1: found 3 field\(s\) \(expected at least 4 fields")


def test_unrecognised_folder(tmp_path):
    _expect(tmp_path, "cannot tell the raw format")


def test_lines_arrow_refuses_but_the_formats_allow_still_read(tmp_path):
    """A trailing tab or an extra field in u.data, a line of spaces: read as before."""
    raw = write_ml100k(tmp_path, ROWS, 12)
    lines = (raw / "u.data").read_text().splitlines()
    lines[0] += "\t"
    lines[1] += "\textra"
    lines.insert(2, "   ")
    (raw / "u.data").write_text("\n".join(lines) + "\n")
    data = read_raw(raw)
    assert [data.item_ids[i] for i in data.items] == [str(i) for _, i, *_ in ROWS]
