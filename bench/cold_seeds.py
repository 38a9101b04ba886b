"""One arm's fused ranking at a fixed (level, w), or at each seed's own, over several training
seeds: HR@1 on the test rows with a new target, a warm one and all rows, and on the
cold-only lists, each against SASRec and TF-IDF with a two-level bootstrap (seeds and users
resampled).

    python bench/cold_seeds.py WORK --arm map-drop30-genres-n2048 --seeds 0,1 \
        --data WORK/data/ml-cold --level 1.0 --weight 4 [--text-suffix -text --text-weight 2]

Each seed needs runs/<arm>-s<seed>/pred-test.parquet and pred-test.cold-only.parquet
(`llara evaluate --split test --predictions`). With --text-suffix, a model trained on both
prompt kinds is read as bench/cold_ensemble.py reads it: its text-only predictions
(pred-test<suffix>.parquet and pred-test<suffix>.cold-only.parquet, from
bench/prompt_predictions.py --prompts text) join at --text-weight, and with --content-weight
c x the content baseline's cosine (bench/cold_ensemble.py --content-weights, a study arm).
--level (a quantile, or `mean`), --weight, --text-weight and --content-weight take one value
for every seed, or one per seed (comma-separated, in --seeds' order): each seed's stored
choice, which bench/cold_fusion.py --select or bench/cold_ensemble.py --product show.
--baselines (bench/content_baseline.py --json) adds the LLM-embedding content baseline on the
random lists."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from cold_ensemble import embedding_ranks, ensemble_ranks, pair, with_content
from cold_fusion import read_predictions
from llara.data.prepare import PreparedDataset
from llara.evaluation.fusion import fused_scores, ranks_of, without_cold
from llara.evaluation.intervals import interval_text, seeded_paired_interval
from llara.inference.report import content_ranks
from llara.recsys.content import ContentIndex


def hits_of(ranks: np.ndarray) -> np.ndarray:
    return (np.asarray(ranks) == 0).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--arm", required=True, help="the run name without -s<seed>")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--level", default="1.0",
                        help="the cold level: one for every seed, or one per seed (comma-separated)")
    parser.add_argument("--weight", default="4",
                        help="SASRec's weight: one for every seed, or one per seed")
    parser.add_argument("--text-suffix", help="read each seed's text-only predictions too "
                        "(a model trained with curriculum.schedule=mixed)")
    parser.add_argument("--text-weight", default="0",
                        help="with --text-suffix: the text-only reading's weight, one for every "
                        "seed or one per seed")
    parser.add_argument("--baselines", type=Path, help="bench/content_baseline.py --json: "
                        "compare with its LLM-embedding baseline too")
    parser.add_argument("--content-weight", default="0",
                        help="with --text-suffix: c x the content baseline's cosine joins the "
                        "ensemble (bench/cold_ensemble.py --content-weights, a study arm), one "
                        "for every seed or one per seed")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    def per_seed(option: str, text: str) -> dict[int, float | None]:
        try:
            values = [None if v == "mean" and option == "level" else float(v)
                      for v in text.split(",")]
        except ValueError:
            parser.error(f"--{option} takes numbers{' or mean' if option == 'level' else ''}; "
                         f"got {text!r}")
        if len(values) not in (1, len(seeds)):
            parser.error(f"--{option} needs one value, or one per seed ({len(seeds)}); got "
                         f"{len(values)}")
        return dict(zip(seeds, values * len(seeds) if len(values) == 1 else values))

    level, weight = per_seed("level", args.level), per_seed("weight", args.weight)
    text_weight = per_seed("text-weight", args.text_weight)
    content_weight = per_seed("content-weight", args.content_weight)
    if (any(text_weight.values()) or any(content_weight.values())) and not args.text_suffix:
        parser.error("--text-weight and --content-weight need --text-suffix (the text-only "
                     "predictions)")
    data = PreparedDataset.open(args.data)
    cold = data.cold_mask()
    index = ContentIndex.from_dataset(data) if any(content_weight.values()) else None
    embeddings = json.loads(args.baselines.read_text()) if args.baselines else None
    print("| lists | rows | count | HR@1 (per seed) | - SASRec | - TF-IDF |"
          + (" - LLM embeddings |" if embeddings else ""))
    print("|---|---|---|---|---|---|" + ("---|" if embeddings else ""))
    for lists, suffix in (("random", ""), ("cold-only", ".cold-only")):
        hits = []
        for seed in seeds:
            path = args.work / "runs" / f"{args.arm}-s{seed}" / f"pred-test{suffix}.parquet"
            p = read_predictions(path)
            if args.text_suffix:  # the one model's two readings and SASRec
                run = f"{args.arm}-s{seed}"
                both = pair(args.work, (run, ""), (run, args.text_suffix),
                            f"pred-test{{}}{suffix}.parquet")
                if index is not None:
                    both = with_content(both, data, index, "test")
                hits.append(hits_of(ensemble_ranks(both, cold, text_weight[seed],
                                                   weight[seed], level[seed],
                                                   content_weight[seed])))
            else:
                rec = without_cold(p["rec"], p["candidates"], cold, level[seed])
                hits.append(hits_of(ranks_of(fused_scores(p["llm"], rec, weight[seed]),
                                             p["candidates"], p["targets"])))
            if seed == seeds[0]:  # the rows, lists, SASRec and TF-IDF are every seed's
                table = pq.read_table(path)
                sasrec = hits_of(ranks_of(p["rec"], p["candidates"], p["targets"]))
                tfidf = hits_of(content_ranks(table, data, "test"))
                groups, new = p["groups"], cold[p["targets"]]
                llm_embeddings = hits_of(embedding_ranks(embeddings, table)) \
                    if embeddings and lists == "random" else None
        hits = np.stack(hits)  # (S, N)
        slices = (("new", new), ("warm", ~new), ("all", np.ones(len(new), bool))) \
            if lists == "random" else (("new", new),)
        for name, keep in slices:
            h = hits[:, keep]
            each = " / ".join(f"{row.mean():.4f}" for row in h)
            print(f"| {lists} | {name} | {int(keep.sum())} | {h.mean():.4f} ({each}) | "
                  f"{interval_text(seeded_paired_interval(h - sasrec[keep], groups[keep]))} | "
                  f"{interval_text(seeded_paired_interval(h - tfidf[keep], groups[keep]))} |"
                  + (f" {interval_text(seeded_paired_interval(h - llm_embeddings[keep], groups[keep]))} |"
                     if llm_embeddings is not None else (" - |" if embeddings else "")))


if __name__ == "__main__":
    main()
