"""The content baseline (llara.recsys.content) on a prepared dataset's evaluation rows, beside
popularity and chance, for a grid of recency decays and min_df.

    python bench/content_baseline.py DATA [--split test] [--decays 0.5,0.8,1.0]
        [--min-dfs 1,2] [--json PATH]

DATA: a folder written by `llara data prepare`. Each row is ranked on its own candidate list
(sample_candidates with the dataset's candidate_seed, as `llara evaluate` draws them). Rows
are reported all together, on the tail third by the target's training-target count
(intervals.popularity_slices), and on the rows whose target is a new item (one no training row
holds, as history or as target: `llara data prepare --set cold_items=0.1` makes some). HR@1
and NDCG@5, and each content arm's paired HR@1 difference from the default (decay 0.8,
min_df 2) with its 95% interval over users; figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from llara.data.candidates import sample_candidates
from llara.data.holdout import whole_training_set
from llara.data.prepare import PreparedDataset
from llara.evaluation.fusion import ranks_of
from llara.evaluation.intervals import (interval_text, paired_interval, per_row,
                                       popularity_slices, user_groups)
from llara.recsys.content import DEFAULT_DECAY, ContentIndex, content_scores
from llara.recsys.popularity import dataset_target_counts, popularity_scores


def figures(ranks: np.ndarray, rows: np.ndarray) -> dict[str, float]:
    values = per_row(ranks[rows])
    return {m: float(v.mean()) if len(v) else float("nan") for m, v in values.items()}


def llm_item_vectors(dataset: PreparedDataset, llm: str) -> np.ndarray:
    """(N, H) unit vectors: the mean of the LLM's input embeddings of each item's tokens
    (its title with year and genres, as prompt.item_text=genres writes it)."""
    import torch

    from llara.model.llm import load_llm, resolve_llm

    model, tokenizer = load_llm(resolve_llm(llm, None, lambda *_: None), layers=1)
    table = model.get_input_embeddings().weight.detach().float()  # (V, H)
    vectors = []
    for text in dataset.prompt_titles("genres"):
        ids = tokenizer(" " + text, add_special_tokens=False)["input_ids"]
        vectors.append(table[torch.as_tensor(ids)].mean(0))
    out = torch.stack(vectors).numpy()
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def dense_scores(vectors: np.ndarray, histories: np.ndarray, lengths: np.ndarray,
                 candidates: np.ndarray, decay: float) -> np.ndarray:
    """(N, C) cosine of each candidate's vector with the recency-weighted history profile."""
    width = histories.shape[1]
    age = lengths[:, None] - 1 - np.arange(width)[None, :]  # (N, L) 0 for the most recent
    weights = np.where(age >= 0, decay ** np.maximum(age, 0), 0.0)  # (N, L)
    safe = np.minimum(histories, len(vectors) - 1)
    profile = (weights[:, :, None] * vectors[safe]).sum(1)  # (N, H)
    profile /= np.maximum(np.linalg.norm(profile, axis=1, keepdims=True), 1e-9)
    return np.einsum("nh,nch->nc", profile, vectors[candidates])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--split", default="test")
    parser.add_argument("--decays", default="0.5,0.8,1.0")
    parser.add_argument("--min-dfs", default="1,2")
    parser.add_argument("--json", default=None)
    parser.add_argument("--llm", default=None, help="Also the LLM's own mean-pooled input "
                        "token embeddings of each item's text (title, year, genres) as the "
                        "item vector, e.g. smollm2-135m")
    args = parser.parse_args(argv)
    dataset = PreparedDataset.open(args.data)
    samples = dataset.samples(args.split)
    config = dataset.config
    candidates = sample_candidates(samples, dataset.num_items, config.num_candidates,
                                   config.candidate_seed)  # (N, C)
    train = whole_training_set(dataset).samples("train")
    seen = np.zeros(dataset.num_items, bool)
    seen[train.next] = True
    inside = np.arange(train.history.shape[1])[None, :] < train.len_history[:, None]
    seen[train.history[inside]] = True
    counts = dataset_target_counts(dataset)
    tail = popularity_slices(samples.next, counts) == "tail"
    groups = {"all": np.arange(len(samples)), "tail target": np.flatnonzero(tail),
              "new target": np.flatnonzero(~seen[samples.next])}
    arms = {"popularity": ranks_of(popularity_scores(counts, candidates), candidates,
                                   samples.next)}
    seconds = {}
    for min_df in (int(v) for v in args.min_dfs.split(",")):
        started = time.perf_counter()
        index = ContentIndex.from_dataset(dataset, min_df)
        seconds[f"index min_df={min_df}"] = time.perf_counter() - started
        for decay in (float(v) for v in args.decays.split(",")):
            started = time.perf_counter()
            scores = content_scores(index, samples.history, samples.len_history, candidates,
                                    decay)
            seconds[f"score min_df={min_df} decay={decay:g}"] = time.perf_counter() - started
            arms[f"content decay={decay:g} min_df={min_df} ({index.num_tokens} tokens)"] = \
                ranks_of(scores, candidates, samples.next)
    if args.llm:
        started = time.perf_counter()
        vectors = llm_item_vectors(dataset, args.llm)  # (N, H)
        for decay in (float(v) for v in args.decays.split(",")):
            arms[f"LLM embeddings decay={decay:g}"] = ranks_of(dense_scores(
                vectors, samples.history, samples.len_history, candidates, decay),
                candidates, samples.next)
        seconds["LLM embeddings"] = time.perf_counter() - started
    width = config.num_candidates
    chance = {"HitRatio@1": 1 / width,
              "NDCG@5": float(sum(1 / np.log2(r + 2) for r in range(min(5, width))) / width)}
    result = {"command": " ".join(["python", "bench/content_baseline.py", *sys.argv[1:]]),
              "data": str(dataset.directory), "split": args.split, "candidates": width,
              "rows": {name: len(rows) for name, rows in groups.items()},
              "users": {name: len({samples.user[i] for i in rows})
                        for name, rows in groups.items()},
              "arms": {name: {group: figures(ranks, rows) for group, rows in groups.items()}
                       for name, ranks in arms.items()},
              "chance": chance, "seconds": seconds,
              # Per-row ranks, in the split's row order (the lists `llara evaluate` scores),
              # so that another ranking's predictions pair with them.
              "sample_id": samples.sample_id.tolist(),
              "row_ranks": {name: ranks.tolist() for name, ranks in arms.items()}}
    # Each content arm's paired HR@1 difference from the default (decay DEFAULT_DECAY,
    # min_df 2) on all rows, with the 95% interval of a bootstrap over users.
    default = next((n for n in arms if n.startswith(f"content decay={DEFAULT_DECAY:g} "
                                                    "min_df=2 ")), None)
    groups_of = user_groups(samples.user, samples.sample_id)
    result["against_default"] = {
        name: paired_interval(per_row(ranks)["HitRatio@1"],
                              per_row(arms[default])["HitRatio@1"], groups_of)
        for name, ranks in arms.items() if default and name != default}
    print(f"{args.split}: {width} candidates; " + ", ".join(
        f"{name} {result['rows'][name]} rows ({result['users'][name]} users)"
        for name in groups))
    print(f"{'ranking':<46}" + "".join(f" {g + ' HR@1':>16} {'NDCG@5':>7}" for g in groups))
    for name, values in [*result["arms"].items(), ("chance", dict.fromkeys(groups, chance))]:
        print(f"{name:<46}" + "".join(f" {values[g]['HitRatio@1']:16.4f} "
                                      f"{values[g]['NDCG@5']:7.4f}" for g in groups))
    for name, interval in result["against_default"].items():
        print(f"HR@1 {name} - {default}: {interval_text(interval)}")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
