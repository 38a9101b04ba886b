"""The paper's released validation/test rows: loading them and finding the users behind them.

The paper never released its preprocessing, so its rows are kept exactly as they are and the
users who produced them are identified in the raw log and kept out of training. A row's items
and ratings come from one user's log; ties in timestamps (and, as measured on MovieLens-100K,
rows that do not end at the user's final interaction) make exact order useless, so a user
matches a row when their log holds every item of the row with its rating (a rating only one
side records is not compared: a log without ratings matches on items). A user whose log holds
every item but not every rating is a partial match: kept out of training too, and counted.
Rows matching nobody at all mean the rows are not from this log: that stops the prepare step.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llara.common.errors import DataError
from llara.data.pickles import frame_rows
from llara.data.sequences import UserLog
from llara.data.tables import Samples

REFERENCE_FILES = {"val": ("val.jsonl", "Val_data.df"), "test": ("test.jsonl", "Test_data.df")}
RELEASED_COLUMNS = {"seq": "history", "len_seq": "len_history"}
"""The released pickles' column names -> ours (the JSON-lines copies already use ours)."""


def renamed_columns(row: dict) -> dict:
    return {RELEASED_COLUMNS.get(key, key): value for key, value in row.items()}


def _row_to_arrays(row: dict, path: Path, lineno: int, width: int):
    for key in ("history", "len_history", "next"):
        if key not in row:
            raise DataError(path, f"missing field '{key}'", line=lineno, column=key,
                            expected="history, len_history, next")
    history, length, target = row["history"], row["len_history"], row["next"]
    if not isinstance(history, list) or len(history) != width:
        raise DataError(path, f"history has {len(history) if isinstance(history, list) else 0}"
                        " entries", line=lineno, column="history",
                        expected=f"a list of {width} item ids (data.max_history)")
    ratings = row.get("history_ratings", [math.nan] * width)
    if not isinstance(ratings, list) or len(ratings) != width:
        raise DataError(path, "history_ratings does not match history", line=lineno,
                        column="history_ratings", expected=f"a list of {width} numbers")
    try:
        return ([int(i) for i in history], int(length), int(target),
                [float(r) for r in ratings], float(row.get("next_rating", math.nan)))
    except (TypeError, ValueError):
        raise DataError(path, "non-numeric id or rating", line=lineno,
                        expected="integers for ids and lengths, numbers for ratings") from None


def rows_from_jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(path, f"not valid JSON ({err.msg})", line=lineno,
                                expected="one JSON object per line") from None
            if not isinstance(row, dict):
                raise DataError(path, "not a JSON object", line=lineno)
            rows.append((lineno, row))
    if not rows:
        raise DataError(path, "file is empty", expected="one JSON object per line")
    return rows


def rows_from_pickle(path: Path) -> list[tuple[int, dict]]:
    rows = [(line, renamed_columns(row)) for line, row in frame_rows(path)]
    if not rows:
        raise DataError(path, "table is empty")
    return rows


def load_reference_split(directory: str | Path, width: int,
                         allow_pickle: bool = False) -> dict[str, tuple[Path, list[tuple]]]:
    """Read val (required) and test (optional) rows; returns split -> (path, parsed rows)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "reference split directory not found")
    result = {}
    for split, (jsonl_name, pickle_name) in REFERENCE_FILES.items():
        jsonl, pickled = directory / jsonl_name, directory / pickle_name
        if jsonl.is_file():
            path, rows = jsonl, rows_from_jsonl(jsonl)
        elif pickled.is_file():
            if not allow_pickle:
                raise DataError(pickled, "is a pickle; pickle runs code from the file",
                                expected="convert it to JSON lines, or pass --allow-pickle "
                                "if you trust it")
            path, rows = pickled, rows_from_pickle(pickled)
        elif split == "val":
            raise DataError(directory, f"no {jsonl_name}",
                            expected=f"{jsonl_name} (or {pickle_name} with --allow-pickle)")
        else:
            continue
        result[split] = (path, [(ln, *_row_to_arrays(r, path, ln, width)) for ln, r in rows])
    return result


def rows_to_samples(rows: list[tuple], first_id: int) -> Samples:
    n = len(rows)
    return Samples(
        np.arange(first_id, first_id + n, dtype=np.int64), [None] * n,
        np.array([r[1] for r in rows], np.int64).reshape(n, -1),
        np.array([r[2] for r in rows], np.int64), np.array([r[3] for r in rows], np.int64),
        np.array([r[4] for r in rows], np.float32).reshape(n, -1),
        np.array([r[5] for r in rows], np.float32))


@dataclass
class MatchReport:
    """How reference rows were traced back to users of the raw log."""

    rows: int = 0
    unambiguous: int = 0
    ambiguous: int = 0
    partial: int = 0
    """Rows whose items one or more users hold, but not with the row's ratings."""
    unmatched: int = 0
    ending_at_final_interaction: int = 0
    excluded_users: list[str] = field(default_factory=list)


def match_reference_users(samples: Samples, logs: list[UserLog],
                          source: str = "reference rows") -> MatchReport:
    """Fill samples.user where one user's log holds every (item, rating) pair of a row.

    Several candidates are narrowed to those whose final interaction is the row's target;
    still several: ambiguous, and every candidate is excluded from training. Users holding
    the row's items with other ratings are partial matches, excluded and counted. When no row
    matches anyone, DataError: the rows are not from this log.
    """
    pairs: list[dict[int, set]] = []
    users_by_item: dict[int, set[int]] = defaultdict(set)
    for index, log in enumerate(logs):
        owned: dict[int, set] = defaultdict(set)
        for item, rating in zip(log.items.tolist(), log.ratings.tolist()):
            owned[item].add(None if math.isnan(rating) else rating)
            users_by_item[item].add(index)
        pairs.append(owned)
    report = MatchReport(rows=len(samples))
    excluded: set[int] = set()
    for row in range(len(samples)):
        length = int(samples.len_history[row])
        items = samples.history[row, :length].tolist() + [int(samples.next[row])]
        ratings = samples.history_ratings[row, :length].tolist() + [float(samples.next_rating[row])]
        holders = sorted(users_by_item.get(items[-1], set()))
        found = [u for u in holders if _holds(pairs[u], items, ratings, True)]
        if not found:
            partial = [u for u in holders if _holds(pairs[u], items, ratings, False)]
            report.partial += bool(partial)
            report.unmatched += not partial
            excluded.update(partial)
            continue
        if len(found) > 1:
            final = [u for u in found if int(logs[u].items[-1]) == items[-1]]
            if len(final) == 1:
                excluded.update(found)
                found = final
        if len(found) == 1:
            report.unambiguous += 1
            samples.user[row] = logs[found[0]].user
            report.ending_at_final_interaction += int(logs[found[0]].items[-1]) == items[-1]
        else:
            report.ambiguous += 1
        excluded.update(found)
    if report.unmatched == report.rows:
        raise DataError(source, f"none of the {report.rows} reference rows matches a user of "
                        "the raw log (by its items and ratings)",
                        expected="the released rows of this dataset and its raw log")
    report.excluded_users = [logs[u].user for u in sorted(excluded)]
    return report


def _holds(owned: dict[int, set], items: list[int], ratings: list[float], strict: bool) -> bool:
    """Whether a log (item -> its ratings, None where unrated) holds every item of a row;
    `strict`: with the row's ratings too, where both sides have one."""
    for item, rating in zip(items, ratings):
        if item not in owned:
            return False
        known = owned[item]
        if strict and not math.isnan(rating) and None not in known and rating not in known:
            return False
    return True
