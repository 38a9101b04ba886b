"""Is there signal beside the recommender's score that an LLM could read from the prompt?

A probe, not an LLM: a conditional logit over each row's candidates (softmax over the list)
on the recommender's log-softmax score plus item facts the ID model never sees (release year
against the history's years, genre overlap with the history, popularity among training
targets), fitted on some held-out users and scored on the others (5 folds by user), then
paired against the recommender alone with the user bootstrap. If the facts add nothing to the
score here, text carrying them cannot be expected to lift the LLM past the recommender.

    python bench/signal_probe.py --workdir runs/q32      # a bench/llara_quality.py workdir
    python bench/signal_probe.py --workdir runs/q32 --raw ~/.cache/llara/datasets/movielens-100k

`--raw` (the raw dataset the workdir was prepared from, for its timestamps) adds what happened
around each row's time, which the sequence model never sees: how often other users took each
candidate in the 7 and 30 days before, and whether anyone had taken it yet.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from llara.data.candidates import sample_candidates  # noqa: E402
from llara.data.prepare import PreparedDataset  # noqa: E402
from llara.data.titles import item_facts  # noqa: E402
from llara.evaluation.fusion import log_softmax_rows, ranks_of  # noqa: E402
from llara.evaluation.intervals import (interval_text, paired_interval, per_row,  # noqa: E402
                                        user_groups)
from llara.recsys.checkpoint import load_checkpoint  # noqa: E402
from llara.recsys.popularity import target_counts  # noqa: E402
from llara.recsys.ranking import candidate_scores  # noqa: E402

FEATURE_SETS = {
    "recommender": ["rec"],
    "+ popularity": ["rec", "pop"],
    "+ year": ["rec", "year_after", "year_gap", "year_unknown"],
    "+ genres": ["rec", "genre_overlap"],
    "+ year + genres + popularity": ["rec", "pop", "year_after", "year_gap", "year_unknown",
                                     "genre_overlap"],
    "+ ratings (liked genres, liked items)": ["rec", "liked_genres", "liked_items"],
    "+ the LLM's title similarity": ["rec", "title_similarity"],
    "+ trending (7 and 30 days before the row)": ["rec", "trend_7d", "trend_30d"],
    "+ not yet taken by anyone, days since first taken": ["rec", "unborn", "age"],
    "all of the above": ["rec", "pop", "year_after", "year_gap", "year_unknown",
                         "genre_overlap", "liked_genres", "liked_items", "title_similarity",
                         "trend_7d", "trend_30d", "unborn", "age"],
}


def item_table(data: PreparedDataset) -> tuple[np.ndarray, np.ndarray]:
    """(N,) release year (nan where unknown) and (N, G) genre indicators."""
    import pyarrow.parquet as pq

    items = pq.read_table(data.directory / "items.parquet").to_pylist()
    facts = [item_facts(row["raw_title"] or row["title"], row["extra"] or "") for row in items]
    names = sorted({g for _, genres in facts for g in genres})
    years = np.array([float(y) if y else np.nan for y, _ in facts])
    genres = np.zeros((len(items) + 1, max(1, len(names))), np.float32)  # padding row: none
    for row, (_, item_genres) in enumerate(facts):
        for g in item_genres:
            genres[row, names.index(g)] = 1.0
    return np.append(years, np.nan), genres


TIME_FEATURES = ("trend_7d", "trend_30d", "unborn", "age")


def time_features(raw_dir: Path, data: PreparedDataset, samples, lists: np.ndarray
                  ) -> dict[str, np.ndarray]:
    """(B, C) features of each candidate at the time of its row, from the interactions of
    training users only (the held-out users' own rows never feed them): log counts in the 7
    and 30 days before the row, 1 where no training user had taken it yet, log days since one
    first did."""
    import pyarrow.parquet as pq

    from llara.data.table_readers import read_raw

    raw = read_raw(raw_dir)
    # Raw ids again, as the probe compares them with the tables' text ids.
    users_raw = [raw.user_ids[u] for u in raw.users]
    items_raw = [raw.item_ids[i] for i in raw.items]
    items = pq.read_table(data.directory / "items.parquet", columns=["item_id", "raw_id"])
    item_of = dict(zip(items.column("raw_id").to_pylist(), items.column("item_id").to_pylist()))
    when = {(u, item_of.get(i, -1)): t for u, i, t in zip(users_raw, items_raw, raw.timestamps)}
    missing = [(u, n) for u, n in zip(samples.user, samples.next) if (u, int(n)) not in when]
    if missing:
        raise SystemExit(f"--raw {raw_dir}: {len(missing)} rows (first {missing[0]}) have no "
                         "timestamp there; is it the dataset this workdir was prepared from?")
    train_users = set(pq.read_table(data.directory / "train.parquet", columns=["user"])
                      .column("user").to_pylist()) - set(samples.user)
    events = sorted((t, item_of[i]) for u, i, t in zip(users_raw, items_raw, raw.timestamps)
                    if u in train_users and i in item_of)
    times = np.array([t for t, _ in events])
    taken = np.array([i for _, i in events])
    first = np.full(data.num_items + 1, np.inf)
    np.minimum.at(first, taken, times)
    row_time = np.array([when[(u, int(n))] for u, n in zip(samples.user, samples.next)])
    counts = {days: np.zeros(lists.shape) for days in (7, 30)}
    for row, t in enumerate(row_time):
        for days, out in counts.items():
            lo, hi = np.searchsorted(times, [t - days * 86400, t])
            out[row] = np.bincount(taken[lo:hi], minlength=data.num_items + 1)[lists[row]]
    since = (row_time[:, None] - first[lists]) / 86400  # (B, C) days; -inf: never taken
    return {"trend_7d": np.log1p(counts[7]), "trend_30d": np.log1p(counts[30]),
            "unborn": (since <= 0).astype(float),
            "age": np.log1p(np.clip(np.nan_to_num(since, neginf=0.0), 0, None))}


@torch.no_grad()
def title_vectors(llm: str, titles: list[str], layer: int) -> np.ndarray:
    """(N + 1, H) unit mean-pooled hidden states of each title at `layer` of the untuned LLM
    (the padding row zero): what the pretrained model knows of a title, before any LLaRA
    training."""
    from llara.model.llm import load_llm, resolve_llm

    model, tokenizer = load_llm(resolve_llm(llm), layers=layer)
    model.eval()
    vectors = []
    for start in range(0, len(titles), 64):
        batch = tokenizer(titles[start:start + 64], return_tensors="pt", padding=True,
                          add_special_tokens=False)
        states = model.get_decoder()(**batch).last_hidden_state  # (B, T, H)
        mask = batch["attention_mask"][..., None].float()
        vectors.append(((states * mask).sum(1) / mask.sum(1)).numpy())
    table = np.vstack(vectors + [np.zeros((1, vectors[0].shape[1]))])
    table -= table[:-1].mean(0)  # pooled states share a large common direction
    table[-1] = 0.0
    return table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-9)


def features(samples, lists: np.ndarray, rec: np.ndarray, counts: np.ndarray,
             years: np.ndarray, genres: np.ndarray, embeddings: np.ndarray,
             title_table: np.ndarray) -> dict[str, np.ndarray]:
    """(B, C) per-candidate features of each row; `embeddings` (N, E) the recommender's
    items, read here with the history's ratings, which the recommender never sees."""
    history = samples.history  # (B, L) right-padded with the padding id
    real = history < len(counts)
    hist_years = np.where(real, years[history], np.nan)  # (B, L)
    latest = np.nanmax(np.where(np.isnan(hist_years), -np.inf, hist_years), axis=1)  # (B,)
    cand_years = years[lists]  # (B, C)
    known = ~np.isnan(cand_years) & np.isfinite(latest)[:, None]
    profile = (genres[history] * real[..., None]).sum(1)  # (B, G)
    profile /= np.maximum(profile.sum(1, keepdims=True), 1.0)
    cand_genres = genres[lists]  # (B, C, G)
    overlap = (cand_genres * profile[:, None, :]).sum(-1) / \
        np.maximum(cand_genres.sum(-1), 1.0)
    # Ratings centred on the user's own mean: what they liked more than usual.
    ratings = np.where(real, samples.history_ratings, 0.0)
    mean = ratings.sum(1, keepdims=True) / np.maximum(real.sum(1, keepdims=True), 1)
    liking = np.where(real, ratings - mean, 0.0)  # (B, L)
    liked = (genres[history] * liking[..., None]).sum(1)  # (B, G)
    table = np.vstack([embeddings, np.zeros((1, embeddings.shape[1]))])
    unit = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-9)
    taste = (unit[history] * liking[..., None]).sum(1)  # (B, E)
    history_titles = (title_table[history] * real[..., None]).sum(1)  # (B, H)
    history_titles /= np.maximum(np.linalg.norm(history_titles, axis=1, keepdims=True), 1e-9)
    return {"rec": log_softmax_rows(rec),
            "title_similarity": np.einsum("bch,bh->bc", title_table[lists], history_titles),
            "liked_genres": (cand_genres * liked[:, None, :]).sum(-1) /
            np.maximum(cand_genres.sum(-1), 1.0),
            "liked_items": np.einsum("bce,be->bc", unit[lists], taste),
            "pop": np.log1p(counts[lists]),
            "year_after": np.where(known, (cand_years >= latest[:, None]).astype(float), 0.0),
            "year_gap": np.where(known, np.minimum(np.abs(cand_years - latest[:, None]), 30.0)
                                 / 10.0, 0.0),
            "year_unknown": (~known).astype(float),
            "genre_overlap": overlap}


def fit_logit(x: np.ndarray, target: np.ndarray, steps: int = 300, l2: float = 1e-3
              ) -> np.ndarray:
    """Weights of a conditional logit: softmax over each row's candidates of x @ w."""
    xs = torch.as_tensor(x, dtype=torch.float64)  # (B, C, F)
    ys = torch.as_tensor(target)
    w = torch.zeros(x.shape[-1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(xs @ w, ys) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy()


def cross_fitted(x: np.ndarray, target: np.ndarray, groups: np.ndarray, folds: int = 5
                 ) -> tuple[np.ndarray, list[list[float]]]:
    """(B, C) scores of each row from a logit fitted on the other folds' users."""
    scores = np.zeros(x.shape[:2])
    fold_of = np.random.default_rng(0).permutation(groups.max() + 1)[groups] % folds
    weights = []
    for fold in range(folds):
        held = fold_of == fold
        w = fit_logit(x[~held], target[~held])
        scores[held] = x[held] @ w
        weights.append(w.round(3).tolist())
    return scores, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True,
                        help="holds data/ and sasrec/ (bench/llara_quality.py --workdir)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--llm", default="smollm2-135m", help="whose title states to read")
    parser.add_argument("--layer", type=int, default=0,
                        help="read the titles after this many decoder layers (0: all)")
    parser.add_argument("--raw", type=Path, default=None,
                        help="the raw dataset folder the workdir was prepared from: adds the "
                        "time arms (its timestamps)")
    parser.add_argument("--out", type=Path, default=None, help="results path without suffix")
    args = parser.parse_args()
    started = time.perf_counter()
    data = PreparedDataset.open(args.workdir / "data")
    samples = data.samples(args.split)
    lists = sample_candidates(samples, data.num_items, data.config.num_candidates,
                              data.config.candidate_seed)
    recommender = load_checkpoint(args.workdir / "sasrec").model
    rec = candidate_scores(recommender, samples, lists)
    embeddings = recommender.item_embeddings().detach().numpy()
    counts = target_counts(data.samples("train"), data.num_items).astype(np.float64)
    years, genres = item_table(data)
    titles = title_vectors(args.llm, data.titles(), args.layer)
    table = features(samples, lists, rec, counts, years, genres, embeddings, titles)
    if args.raw:
        table.update(time_features(args.raw.expanduser(), data, samples, lists))
    target = (lists == samples.next[:, None]).argmax(1)
    groups = user_groups(samples.user, samples.sample_id)
    base = per_row(ranks_of(rec, lists, samples.next))
    report = {"rows": len(samples), "users": int(groups.max()) + 1, "split": args.split,
              "workdir": str(args.workdir), "arms": {}}
    lines = [f"# Signal beside the recommender's score ({time.strftime('%Y-%m-%d')})", "",
             f"`python bench/signal_probe.py {' '.join(sys.argv[1:])}`: {len(samples)} "
             f"{args.split} rows of {report['users']} users, {lists.shape[1]} candidates; a "
             "conditional logit fitted on 4/5 of the users, scored on the rest (5 folds).", "",
             "| features | HR@1 | NDCG@5 | minus recommender, HR@1 [95%] | NDCG@5 [95%] |",
             "|---|---|---|---|---|",
             f"| recommender alone | {base['HitRatio@1'].mean():.4f} | "
             f"{base['NDCG@5'].mean():.4f} | - | - |"]
    for name, keys in FEATURE_SETS.items():
        if not args.raw and set(keys) & set(TIME_FEATURES):
            keys = [k for k in keys if k not in TIME_FEATURES]
            if name != "all of the above":
                continue
        x = np.stack([table[k] for k in keys], axis=-1)  # (B, C, F)
        scores, weights = cross_fitted(x, target, groups)
        rows = per_row(ranks_of(scores, lists, samples.next))
        diff = {m: paired_interval(rows[m], base[m], groups) for m in rows}
        report["arms"][name] = {"features": keys, "weights_by_fold": weights,
                                **{m: float(rows[m].mean()) for m in rows},
                                "minus_recommender": diff}
        lines.append(f"| {name} | {rows['HitRatio@1'].mean():.4f} | {rows['NDCG@5'].mean():.4f}"
                     f" | {interval_text(diff['HitRatio@1'])} | "
                     f"{interval_text(diff['NDCG@5'])} |")
    report["seconds"] = round(time.perf_counter() - started, 1)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
