"""The paper's released LastFM training table, turned back into the log it was cut from, so that
`llara data prepare` can apply the cold-item protocol to it (the released tables themselves are
the paper's split and are refused by `--cold-items`).

    python bench/lastfm_log.py ../shared/data/llara_ref/lastfm /tmp/lastfm-log
    llara data prepare /tmp/lastfm-log --cold-items 0.2 --cold-by random ...

The released training rows are each user's rows in order, unnamed: a row whose history is not
the previous row's history one step on starts a new user (the rule `llara data prepare
--format llara` uses). Each user's sequence is the last row's history plus its target, extended
back through the earlier rows. The table holds no times, only order, so the log's `position`
column is the order within a user; cold items must be chosen `--cold-by random`. The released
validation rows (one short row for each of 122 other users) are left out: their users' earlier
interactions are not in the release.

Writes log.csv (user,item,position) and items.csv (item,title): artist names from id2name.txt.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def user_sequences(train_jsonl: Path, padding: int) -> list[list[int]]:
    """Each released training user's whole sequence of item ids, in order."""
    sequences: list[list[int]] = []
    previous: list[int] | None = None
    with train_jsonl.open() as handle:
        for line in handle:
            row = json.loads(line)
            history = [i for i in row["history"] if i != padding]
            if previous is None or history != previous:
                # A new user: its first row may carry an empty history (the first item).
                sequences.append(list(history))
            sequences[-1].append(row["next"])
            previous = (history + [row["next"]])[-len(row["history"]):]
    return sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("released", type=Path, help="folder with train.jsonl and id2name.txt")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    names = {}
    for line in (args.released / "id2name.txt").read_text(encoding="utf-8").splitlines():
        item, _, name = line.partition("::")
        names[int(item)] = name
    sequences = user_sequences(args.released / "train.jsonl", padding=len(names))
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "log.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("user", "item", "position"))
        for user, sequence in enumerate(sequences):
            writer.writerows((f"u{user}", item, position)
                             for position, item in enumerate(sequence))
    with (args.out / "items.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("item", "title"))
        writer.writerows(sorted(names.items()))
    lengths = sorted(len(s) for s in sequences)
    print(f"{len(sequences)} users, {sum(lengths)} interactions, {len(names)} items; "
          f"sequence length median {lengths[len(lengths) // 2]}, max {lengths[-1]}")


if __name__ == "__main__":
    main()
