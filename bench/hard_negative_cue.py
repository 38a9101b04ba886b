"""How often the answer is the candidate the recommender scores lowest in hard-negative
training lists: the cue a list would give away (chance: 1 in the list's length).

    python bench/hard_negative_cue.py data/movielens-100k runs/rec/sasrec --rows 4096 --top 20

Prints recall@top on the sampled training rows, the share the old lists (a missed answer put in
place of the lowest-scored candidate) would give, and the share in the lists training uses now
(rows whose answer was retrieved), beside the rerank protocol's test lists.
"""

from __future__ import annotations

import argparse

import numpy as np

from llara.data.prepare import PreparedDataset
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.retrieval import retrieve
from llara.training.inputs import eligible


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("rec_checkpoint")
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--min-history", type=int, default=3)
    args = parser.parse_args()
    dataset = PreparedDataset.open(args.data)
    train = eligible(dataset.samples("train"), args.min_history)
    rows = train.select(np.random.default_rng(0).permutation(len(train))[:args.rows])
    model = load_checkpoint(args.rec_checkpoint).model
    ranks = retrieve(model, rows, args.top).target_ranks  # (N,)
    hit, last = ranks < args.top, args.top - 1
    print(f"{len(rows)} training rows, recall@{args.top} {hit.mean():.4f}")
    print(f"old lists: the answer is the lowest-scored candidate in "
          f"{np.mean(~hit | (ranks == last)):.4f} of lists")
    print(f"lists now: {hit.sum()} rows kept; the answer is the lowest-scored in "
          f"{np.mean(ranks[hit] == last):.4f} of them, its mean rank {ranks[hit].mean():.2f}")
    test = retrieve(model, dataset.samples("test"), args.top).target_ranks
    print(f"rerank protocol, test rows: mean rank among hits {test[test < args.top].mean():.2f}")


if __name__ == "__main__":
    main()
