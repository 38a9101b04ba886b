"""Logs as people download them: CSV, TSV, Parquet and JSON lines (plain or gzip), string ids,
ISO or epoch times, columns found by their usual names or mapped, and the MovieLens-25M and
Amazon Reviews 2023 layouts."""

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llara.common.errors import ConfigError, DataError
from llara.config import DataConfig
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.data.table_readers import TableLayout, detect_format, read_raw

START = 1_704_067_200  # 2024-01-01T00:00:00Z


def shop_log(users: int = 12, per_user: int = 6, items: int = 15, seed: int = 0):
    """(items [(id, title, category)], events [(user, item, epoch seconds, rating)])."""
    rng = np.random.default_rng(seed)
    catalogue = [(f"sku-{i:03d}", f"Gadget {i}, deluxe", ["audio", "video", "home"][i % 3])
                 for i in range(items)]
    events = [(f"user-{u:02d}", catalogue[int(rng.integers(items))][0],
               START + 3600 * (u * per_user + k), int(rng.integers(1, 6)))
              for u in range(users) for k in range(per_user)]
    return catalogue, events


def iso(seconds: int) -> str:
    return np.datetime_as_string(np.datetime64(seconds, "s"), unit="s") + "Z"


def write_table(path: Path, header: list[str], rows: list[tuple]) -> Path:
    """One table in the kind its suffix names (.csv, .tsv, .parquet, .jsonl, each + .gz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = path.name.replace(".gz", "").rsplit(".", 1)[1]
    if kind == "parquet":
        pq.write_table(pa.table({h: [r[i] for r in rows] for i, h in enumerate(header)}), path)
        return path
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        if kind == "jsonl":
            for row in rows:
                handle.write(json.dumps(dict(zip(header, row))) + "\n")
        else:
            writer = csv.writer(handle, delimiter="\t" if kind == "tsv" else ",")
            writer.writerow(header)
            writer.writerows(rows)
    return path


def write_shop(folder: Path, suffix: str = ".csv", times=iso, user_column: str = "user_id"):
    catalogue, events = shop_log()
    write_table(folder / f"items{suffix}", ["item_id", "title", "category"], catalogue)
    write_table(folder / f"events{suffix}", [user_column, "item_id", "timestamp", "rating"],
                [(u, i, times(t), r) for u, i, t, r in events])
    return folder


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv", ".parquet", ".jsonl",
                                    ".jsonl.gz"])
def test_every_table_kind_reads_the_same_log(tmp_path, suffix):
    catalogue, events = shop_log()
    raw = read_raw(write_shop(tmp_path, suffix))
    assert raw.source == "table" and raw.item_ids == [c[0] for c in catalogue]
    assert raw.titles[1] == "Gadget 1, deluxe" and raw.extras[1] == "category: video"
    assert [raw.user_ids[u] for u in raw.users] == [e[0] for e in events]
    assert [raw.item_ids[i] for i in raw.items] == [e[1] for e in events]
    assert np.array_equal(raw.timestamps, [e[2] for e in events])
    assert np.array_equal(raw.ratings, [e[3] for e in events])
    assert raw.domain is None


@pytest.mark.parametrize("times", [lambda t: t, lambda t: t * 1000, lambda t: str(t),
                                   lambda t: iso(t).replace("T", " ").rstrip("Z"),
                                   lambda t: iso(t).replace("Z", "+00:00")],
                         ids=["seconds", "milliseconds", "seconds-text", "iso-naive",
                              "iso-offset"])
def test_times_in_any_common_form_become_epoch_seconds(tmp_path, times):
    _, events = shop_log()
    raw = read_raw(write_shop(tmp_path, ".csv", times))
    assert np.array_equal(raw.timestamps, [e[2] for e in events])


def test_columns_named_otherwise_map_with_an_option(tmp_path):
    folder = write_shop(tmp_path, user_column="shopper")
    with pytest.raises(DataError, match="found 0 interaction logs .*events.csv: shopper"):
        read_raw(folder)
    raw = read_raw(folder, layout=TableLayout(columns={"user": "shopper"}))
    assert raw.user_ids[0] == "user-00"
    with pytest.raises(DataError, match=r"no column 'client' \(--column user"):
        read_raw(folder, layout=TableLayout(columns={"user": "client"}))
    with pytest.raises(ConfigError, match="data.columns"):
        DataConfig(columns={"customer": "shopper"})


def test_bad_cells_name_the_file_line_and_column(tmp_path):
    folder = write_shop(tmp_path)
    lines = (folder / "events.csv").read_text().splitlines()
    lines[4] = "user-00,sku-001,yesterday,3"
    (folder / "events.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="'yesterday' is not a time") as info:
        read_raw(folder)
    assert info.value.line == 5 and info.value.column == "timestamp"
    lines[4] = "user-00,sku-999,2024-01-01T00:00:00Z,3"
    (folder / "events.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="unknown item id 'sku-999'") as info:
        read_raw(folder)
    assert info.value.line == 5 and info.value.column == "item_id"
    lines[4] = "user-00,sku-001,2024-01-01T00:00:00Z,five"
    (folder / "events.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="'five' is not a number") as info:
        read_raw(folder)
    assert info.value.line == 5 and info.value.column == "rating"


def test_a_parquet_row_is_named_by_its_number(tmp_path):
    catalogue, events = shop_log()
    write_table(tmp_path / "items.parquet", ["item_id", "title"], [c[:2] for c in catalogue])
    rows = [(u, i, iso(t), r) for u, i, t, r in events]
    rows[2] = (rows[2][0], "nope", rows[2][2], rows[2][3])
    write_table(tmp_path / "log.parquet", ["user_id", "item_id", "time", "rating"], rows)
    with pytest.raises(DataError, match="row 3: unknown item id 'nope'"):
        read_raw(tmp_path)


def test_a_folder_with_two_logs_asks_which(tmp_path):
    folder = write_shop(tmp_path)
    write_table(folder / "more.csv", ["user_id", "item_id", "timestamp"], [("a", "sku-001", 1)])
    with pytest.raises(DataError, match="found 2 interaction logs .*log_file=NAME"):
        read_raw(folder)
    raw = read_raw(folder, layout=TableLayout(log_file="events.csv"))
    assert len(raw.items) == len(shop_log()[1])


def write_movielens_25m(folder: Path) -> Path:
    write_table(folder / "movies.csv", ["movieId", "title", "genres"],
                [(1, "Toy Story (1995)", "Adventure|Animation|Children"),
                 (2, "Usual Suspects, The (1995)", "Crime|Mystery|Thriller"),
                 (3, "Heat (1995)", "Action|Crime|Thriller"),
                 (4, "Sabrina (1995)", "Comedy|Romance")])
    rng = np.random.default_rng(1)
    write_table(folder / "ratings.csv", ["userId", "movieId", "rating", "timestamp"],
                [(u, int(rng.integers(1, 5)), 3.5, 1_000_000_000 + 60 * (4 * u + k))
                 for u in range(1, 21) for k in range(4)])
    # The other files GroupLens ships beside them, which a reader must not take for the log.
    write_table(folder / "tags.csv", ["userId", "movieId", "tag", "timestamp"],
                [(1, 1, "pixar", 1_000_000_000)])
    write_table(folder / "links.csv", ["movieId", "imdbId", "tmdbId"], [(1, "0114709", 862)])
    return folder


def test_movielens_25m_as_downloaded(tmp_path):
    folder = write_movielens_25m(tmp_path / "ml-25m")
    assert detect_format(folder) == "movielens-25m"
    raw = read_raw(folder)
    assert raw.titles[1] == "The Usual Suspects" and raw.raw_titles[1] == \
        "Usual Suspects, The (1995)"
    assert raw.extras[0] == "genres: Adventure, Animation, Children"
    assert raw.domain == "movies" and len(raw.items) == 80


def write_amazon_2023(folder: Path, category: str = "Toys_and_Games") -> Path:
    items = [f"B0{i:08d}" for i in range(8)]
    meta = []
    for n, asin in enumerate(items):
        meta.append({"main_category": "Toys & Games", "title": f"Puzzle box {n}",
                     "average_rating": 4.5, "rating_number": 10 + n,
                     "features": ["wooden", "500 pieces"], "description": ["A puzzle."],
                     "price": None if n % 2 else 12.99,
                     "images": [{"thumb": "t.jpg", "large": "l.jpg", "variant": "MAIN"}],
                     "videos": [], "store": "PuzzleCo",
                     "categories": ["Toys & Games", "Puzzles"],
                     "details": {"Brand": "PuzzleCo"} if n % 2 else {"Age": "8+", "Pieces": 500},
                     "parent_asin": asin, "bought_together": None})
    reviews = []
    rng = np.random.default_rng(2)
    for u in range(15):
        for k in range(5):
            reviews.append({"rating": float(rng.integers(1, 6)), "title": "Great",
                            "text": "Loved it", "images": [], "asin": f"X{u}{k}",
                            "parent_asin": items[int(rng.integers(len(items)))],
                            "user_id": f"AE{u:04d}QX", "timestamp": 1_600_000_000_000 +
                            3_600_000 * (5 * u + k), "helpful_vote": 0,
                            "verified_purchase": True})
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in ((f"{category}.jsonl.gz", reviews), (f"meta_{category}.jsonl.gz", meta)):
        with gzip.open(folder / name, "wt", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in rows)
    return folder


def test_amazon_reviews_2023_as_downloaded(tmp_path):
    folder = write_amazon_2023(tmp_path / "amazon")
    assert detect_format(folder) == "amazon-2023"
    raw = read_raw(folder)
    assert raw.item_ids[0] == "B000000000" and raw.titles[0] == "Puzzle box 0"
    assert raw.extras[0] == ("main_category: Toys & Games; categories: Toys & Games, Puzzles; "
                             "store: PuzzleCo")
    assert raw.timestamps[0] == 1_600_000_000  # milliseconds -> seconds
    assert raw.domain == "products" and raw.user_ids[0] == "AE0000QX"


@pytest.mark.parametrize("shape", ["csv", "movielens-25m", "amazon-2023"])
def test_each_shape_prepares_end_to_end(tmp_path, shape):
    writers = {"csv": write_shop, "movielens-25m": write_movielens_25m,
               "amazon-2023": write_amazon_2023}
    folder = writers[shape](tmp_path / "raw")
    report = prepare_dataset(folder, tmp_path / "data", DataConfig(num_candidates=4))
    dataset = PreparedDataset.open(tmp_path / "data")
    assert report.samples["train"] > 0 and dataset.num_items == len(read_raw(folder).item_ids)
    expected = {"csv": ("items", "nowhere"), "movielens-25m": ("movies", "the source"),
                "amazon-2023": ("products", "the source")}[shape]
    assert (report.domain, report.domain_from) == expected and dataset.domain == expected[0]
    first_seen = dataset.first_seen()
    assert first_seen is not None and np.nanmin(first_seen) > 0
    mine = prepare_dataset(folder, tmp_path / "mine", DataConfig(num_candidates=4,
                                                                 domain="toys"))
    assert mine.domain_from == "data.domain" and PreparedDataset.open(
        tmp_path / "mine").domain == "toys"


def test_a_domain_is_a_plural_noun():
    from llara.prompts.templates import templates_for

    with pytest.raises(ConfigError, match="data.domain"):
        DataConfig(domain="Movies!")
    assert "20 books" in templates_for("books")[0].replace("[CountHere]", "20")
    assert templates_for("movies")[0].startswith("This user has watched")


def test_the_readme_shop_example_prepares_as_written(tmp_path):
    """The README's column-mapping command, on files shaped as the README describes them."""
    from tests.cli.test_cli import _llara

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    command = next(line for line in readme.replace("\\\n", " ").splitlines()
                   if line.strip().startswith("llara data prepare shop")).split()
    catalogue, events = shop_log(users=30)
    write_table(tmp_path / "shop" / "items.csv", ["sku", "name", "category"], catalogue)
    write_table(tmp_path / "shop" / "events.csv", ["customer", "sku", "ts", "stars"],
                [(u, i, iso(t), r) for u, i, t, r in events])
    done = _llara(*command[1:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert 'prompts call the items "products" (from data.domain)' in done.stdout
    dataset = PreparedDataset.open(tmp_path / "data" / "shop")
    assert dataset.num_items == len(catalogue) and dataset.domain == "products"


def test_every_source_format_has_a_reader():
    from llara.config.data import SOURCE_FORMATS
    from llara.data.table_readers import readers

    assert set(readers(TableLayout())) == set(SOURCE_FORMATS) - {"auto", "llara"}


def test_json_ids_stay_exact_and_a_null_first_value_is_no_problem(tmp_path):
    """Long numeric ids (Steam's 17 digits) stay distinct; a null in the first row does not
    decide a column's type; text and numbers mixed in one column name the line."""
    write_table(tmp_path / "items.jsonl", ["item_id", "title", "store"],
                [(1, "Game 1", None), (2, "Game 2", "Valve")])
    rows = [(76561197960287930, 1, START, None), (76561197960287931, 2, START + 1, 4.0),
            (76561197960287930, 2, START + 2, 5.0)]
    write_table(tmp_path / "log.jsonl", ["user_id", "item_id", "timestamp", "rating"], rows)
    raw = read_raw(tmp_path)
    assert sorted(raw.user_ids) == ["76561197960287930", "76561197960287931"]
    assert raw.extras == ["", "store: Valve"] and np.isnan(raw.ratings[0])
    write_table(tmp_path / "log.jsonl", ["user_id", "item_id", "timestamp"],
                [("a", 1, START), ("b", "2", START + 1)])
    with pytest.raises(DataError, match="text and numbers") as info:
        read_raw(tmp_path)
    assert info.value.line == 2 and info.value.column == "item_id"


def test_headers_as_spreadsheets_write_them(tmp_path):
    """A byte-order mark and spaces after the commas, as Excel and hand edits leave them."""
    catalogue, events = shop_log()
    write_table(tmp_path / "items.csv", ["item_id", "title"], [c[:2] for c in catalogue])
    text = "\ufeffuser_id, item_id, timestamp\n" + "".join(
        f"{u},{i},{iso(t)}\n" for u, i, t, _ in events)
    (tmp_path / "log.csv").write_text(text, encoding="utf-8")
    raw = read_raw(tmp_path)
    assert [raw.item_ids[i] for i in raw.items] == [e[1] for e in events]


def test_a_quoted_field_over_several_lines_keeps_line_numbers_right(tmp_path):
    catalogue, _ = shop_log()
    write_table(tmp_path / "items.csv", ["item_id", "title"], [c[:2] for c in catalogue])
    (tmp_path / "log.csv").write_text(
        "user_id,item_id,timestamp,review\n"
        'u1,sku-001,2024-01-01T00:00:00Z,"two\nlines"\n'
        "u1,sku-002,2024-01-01T01:00:00Z,ok\n"
        "u1,nope,2024-01-01T02:00:00Z,ok\n")
    with pytest.raises(DataError, match="unknown item id 'nope'") as info:
        read_raw(tmp_path)
    assert info.value.line == 5


def test_times_with_and_without_an_offset_mix(tmp_path):
    _, events = shop_log()
    forms = [iso, lambda t: iso(t).replace("T", " ").rstrip("Z")]
    rows = [(u, i, forms[n % 2](t), r) for n, (u, i, t, r) in enumerate(events)]
    catalogue, _ = shop_log()
    write_table(tmp_path / "items.csv", ["item_id", "title"], [c[:2] for c in catalogue])
    write_table(tmp_path / "log.csv", ["user_id", "item_id", "timestamp", "rating"], rows)
    assert np.array_equal(read_raw(tmp_path).timestamps, [e[2] for e in events])


def test_a_folder_with_another_json_document_still_finds_its_tables(tmp_path):
    folder = write_shop(tmp_path)
    (folder / "notes.json").write_text('{\n  "about": "a pretty-printed document"\n}\n')
    assert len(read_raw(folder).items) == len(shop_log()[1])


def test_file_options_are_plain_names():
    for option in ("log_file", "item_file"):
        with pytest.raises(ConfigError, match=f"data.{option}"):
            DataConfig(**{option: "../elsewhere.csv"})


def test_an_item_listed_twice_names_the_item_file_and_its_line(tmp_path):
    """Not the log: the item file holds the mistake (two categories once shared a prefix)."""
    write_table(tmp_path / "items.csv", ["sku", "name"], [("A-1", "Tea"), ("B-1", "Rake"),
                                                          ("A-1", "Coffee")])
    write_table(tmp_path / "events.csv", ["customer", "sku", "ts"],
                [("c", "A-1", 1), ("c", "B-1", 2)])
    layout = TableLayout(columns={"user": "customer", "item": "sku", "timestamp": "ts"})
    with pytest.raises(DataError, match=r"items.csv, line 4, column 'sku': item id 'A-1' is "
                       "listed a second time"):
        read_raw(tmp_path, "table", layout)
