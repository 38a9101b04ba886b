"""Train the LLM stage on rows its recommender never trained on (stacking without leakage),
in a study's workdir: `llara data holdout` (llara/data/holdout.py says why) on the study's
data, and SASRec with the study's settings on the recommender's part.

    python bench/holdout_split.py --workdir runs/lfm32 --last 5

writes, beside the study's `data/` (which it reads, and leaves as it is):
  data-rec-last5/   the training table without each user's last 5 rows (val and test as in data/)
  data-llm-last5/   only those rows as the training table
  sasrec-last5/     SASRec trained on data-rec-last5 (the study's settings)
A study arm then trains on them, fused with and compared against the study's own SASRec
(trained on every row; the arm's fusion_rec_checkpoint), e.g.:

    python bench/llara_quality.py --curve --resume --workdir runs/lfm32 --dataset lastfm ... \
        --arms "slot:holdout=5"        # data_dir and rec_checkpoint: the parts above
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llara.data import PreparedDataset, holdout_split
from llara.recsys.train import train_recommender

from study import STUDY_SASREC


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True,
                        help="a study's workdir (bench/llara_quality.py --workdir): its data/")
    parser.add_argument("--last", type=int, default=5, help="rows per user for the LLM stage")
    args = parser.parse_args()
    tag = f"last{args.last}"
    report = holdout_split(args.workdir / "data", args.last, args.workdir / f"data-rec-{tag}",
                           args.workdir / f"data-llm-{tag}")
    print(f"{report.rec_rows + report.llm_rows} training rows of {report.users} users: "
          f"{report.rec_rows} for the recommender, {report.llm_rows} for the LLM stage")
    train_recommender(PreparedDataset.open(report.rec_dir), STUDY_SASREC,
                      args.workdir / f"sasrec-{tag}", progress=False)


if __name__ == "__main__":
    main()
