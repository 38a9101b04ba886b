"""Train the LLM stage on rows its recommender never trained on (stacking without leakage).

The default LLM stage trains on rows that SASRec also trained on, so each candidate's
[e ; u*e] hands it SASRec's score where SASRec has memorised the answer: on LastFM SASRec's
HR@1 is 0.93 on its own training rows against 0.31 on validation users, and the LLM learns to
trust it that much (training loss 0.32, validation choice loss 4.0 at 512 samples). Stacked
generalisation (Wolpert 1992) fits the second stage on the first stage's out-of-sample
predictions instead. Here, in time: SASRec trains on every user's training rows but the last
N, the LLM stage on those last N rows only (each user's latest, closest in time to the
validation and test rows).

    python bench/holdout_split.py --workdir runs/lfm32 --last 5

writes, beside the study's `data/` (which it reads, and leaves as it is):
  data-rec-last5/   the training table without each user's last 5 rows (val and test as in data/)
  data-llm-last5/   only those rows as the training table
  sasrec-last5/     SASRec trained on data-rec-last5 (the study's settings)
A study arm then trains on them, and is fused with and compared against the study's own
SASRec (trained on every row), e.g.:

    python bench/llara_quality.py --curve --resume --workdir runs/lfm32 --dataset lastfm ... \
        --arms "slot:holdout=5"        # data_dir and rec_checkpoint: the parts above
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from llara.data.prepare import PreparedDataset
from llara.recsys.train import train_recommender

from study import STUDY_SASREC, newest_rows


def write_split(source: Path, target: Path, rows: np.ndarray, note: str) -> None:
    """A copy of the dataset in `source` whose training table holds `rows` only."""
    if target.exists():
        raise SystemExit(f"{target} exists: remove it (it is this script's) or pick --last")
    tmp = target.with_name(target.name + ".tmp")
    shutil.copytree(source, tmp)
    table = pq.read_table(source / "train.parquet").take(rows)
    pq.write_table(table, tmp / "train.parquet")
    meta = json.loads((source / "dataset.json").read_text())
    meta["samples"]["train"] = len(rows)
    meta["training_rows"] = note
    (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    tmp.rename(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True,
                        help="a study's workdir (bench/llara_quality.py --workdir): its data/")
    parser.add_argument("--last", type=int, default=5, help="rows per user for the LLM stage")
    args = parser.parse_args()
    if args.last < 1:
        raise SystemExit("--last must be at least 1")
    data = args.workdir / "data"
    users = pq.read_table(data / "train.parquet", columns=["user"])["user"].to_numpy()
    llm_rows = newest_rows(users, args.last)
    rec_rows = np.setdiff1d(np.arange(len(users)), llm_rows)
    tag = f"last{args.last}"
    write_split(data, args.workdir / f"data-rec-{tag}", rec_rows,
                f"the training table without each user's last {args.last} rows")
    write_split(data, args.workdir / f"data-llm-{tag}", llm_rows,
                f"each user's last {args.last} rows of the training table only")
    print(f"{len(users)} training rows of {len(np.unique(users))} users: {len(rec_rows)} for "
          f"the recommender, {len(llm_rows)} for the LLM stage")
    train_recommender(PreparedDataset.open(args.workdir / f"data-rec-{tag}"), STUDY_SASREC,
                      args.workdir / f"sasrec-{tag}", progress=False)


if __name__ == "__main__":
    main()
