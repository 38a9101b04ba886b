"""`llara evaluate|recommend`: using a trained LLaRA checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pyarrow.parquet as pq
import typer

from llara.common import ConfigError, atomic_file, write_json
from llara.config import ServingConfig
from llara.data import PreparedDataset
from llara.evaluation import comparison_from_predictions, fusion_table, predictions_table
from llara.inference import (Recommender, check_mode, checkpoint_version, evaluate_trained,
                             load_trained, resolve_text)
from llara.model import stored_fusion, stored_fusion_weight
from llara.training import checked_run_config

from llara.recsys import dataset_target_counts

from .common import (comparison_views, console, fusion_note, fusion_view, metrics_view,
                     print_ranking,
                     refuse_unused)
from .options import CacheDir, EvaluationMode, NumCpus, Progress, Protocol, RequestMode, Split

ITEM_REFERENCES = ("Digits that are both an id and another item's title are an error: "
                   "write id:187 or title:187 to say which (llara.data.items).")
"""How --history, --candidates and --pin read digits (the service reads them alike)."""

SELECTION_CAVEAT = ("these validation rows chose the fusion weight and the best epoch, so the "
                    "fused ranking's figures and intervals against the recommender on them are "
                    "optimistic; compare on rows the run never chose on (--split test)")
"""What `llara evaluate --split val` says next to its intervals."""
METRIC_GROUPS = ("generate", "score", "recommender", "fused", "popularity", "reranked",
                 "retrieval")


def evaluate(checkpoint: Path = typer.Option(..., help="Folder written by `llara train`."),
             split: Split = typer.Option("test", help="The rows to evaluate on."),
             mode: EvaluationMode = typer.Option(
                 "score", help="score (candidate likelihood by the checkpoint's ranking "
                 "head), generate (the paper's protocol: the LLM writes a title) or both. "
                 "Generation reads answers that only the `title` head trains: with another "
                 "head it scores about 0. --protocol full takes score only."),
             protocol: Protocol = typer.Option("paper", help="paper (20 random candidates, "
                                               "the true item among them) or full (the "
                                               "recommender's top-N over the whole "
                                               "catalogue, reranked)."),
             retrieve_n: Optional[int] = typer.Option(None, "--retrieve", help="--protocol "
                                                      "full: items retrieved (default: the "
                                                      "dataset's num_candidates)."),
             max_samples: Optional[int] = typer.Option(None, min=1, help="Evaluate a prefix."),
             predictions: Optional[Path] = typer.Option(None, help="Per-sample Parquet."),
             json_out: Optional[Path] = typer.Option(None, "--json", help="Metrics as JSON."),
             local: bool = typer.Option(False, "--local", help="One process, no Ray (so no "
                                        "--actors, --gpus, --batch-size or --num-cpus)."),
             # None: not given, so that --local can refuse what it would ignore.
             actors: Optional[int] = typer.Option(None, min=1, help="Ray Data actors (one "
                                                  "model each; default 1)."),
             gpus: Optional[bool] = typer.Option(None, "--gpus/--no-gpus", help="One GPU per "
                                                 "actor (default: no)."),
             batch_size: Optional[int] = typer.Option(None, min=1, help="Samples per actor "
                                                      "call (default 16)."),
             num_cpus: NumCpus = None,
             device: Optional[str] = typer.Option(None, help="--local (or --diagnostics) "
                                                  "only: cpu, cuda, cuda:N or auto "
                                                  "(default: auto)."),
             cache_dir: CacheDir = None,
             diagnostics: bool = typer.Option(False, "--diagnostics", help="Also the "
                                              "popularity baseline on the same lists and "
                                              "whether the choice follows the history (the "
                                              "same lists scored with another user's "
                                              "history); runs in this process."),
             progress: Progress = True) -> None:
    """HitRatio@1/3/5 and NDCG@5 by the checkpoint's ranking head, beside the recommender
    alone and the fused score (with the fusion grid); with --mode generate or both also
    ValidRatio and HitRatio@1 by generation. With --protocol full: HitRatio@1/5/10 and
    NDCG@5/10 over the whole catalogue for the recommender alone and for its top-N reranked
    by LLaRA, and the retrieval's recall@N.

    Runs as Ray Data batch inference (the model loaded once per actor) unless --local."""
    split, mode, protocol = split.value, mode.value, protocol.value
    if not (local or diagnostics):
        refuse_unused("Ray Data batch inference", "its actors run where --gpus/--no-gpus "
                      "puts them", {"--device": device}, instead="add --local")
    device = device or "auto"
    if local or diagnostics:
        refuse_unused("--local" if local else "--diagnostics", "it evaluates in this process, "
                      "without Ray", {"--actors": actors, "--gpus/--no-gpus": gpus,
                                      "--batch-size": batch_size, "--num-cpus": num_cpus})
    actors, gpus, batch_size = actors or 1, bool(gpus), batch_size or 16
    check_mode(mode, protocol, retrieve_n, diagnostics)
    run = checked_run_config(checkpoint, log=console.print)
    history = None
    if local or diagnostics:
        trained = load_trained(checkpoint, device, cache_dir, log=console.print, config=run)
        result = evaluate_trained(trained, split, mode, max_samples, progress, protocol,
                                  retrieve_n, diagnostics)
        history = result.get("history")
        table = predictions_table(result, trained.titles, trained.letters)
        metrics = {k: result[k] for k in METRIC_GROUPS if k in result}
        seconds = ", ".join(f"{k} {v:.1f}" for k, v in result["seconds"].items())
    else:
        from llara.ray_jobs.evaluate import evaluate_distributed
        from llara.ray_jobs.session import connect, require_gpus

        connect(num_cpus, log=console.print)
        require_gpus(actors, gpus)
        metrics, table, elapsed = evaluate_distributed(checkpoint, split, mode, max_samples,
                                                       actors, gpus, batch_size, cache_dir,
                                                       progress, protocol, retrieve_n, run)
        seconds = f"{elapsed:.1f} with {actors} actor(s)"
    console.print(metrics_view(f"LLaRA on {split} ({table.num_rows} samples)", metrics))
    grid = fusion_table(table, run.scoring.fusion_grid) if "fused_rank" in table.column_names \
        and protocol == "paper" else None
    if grid:
        console.print(fusion_view(grid, stored_fusion_weight(checkpoint)))
    if "fused" in metrics:
        console.print(fusion_note(stored_fusion(checkpoint)))
    if run.fusion_rec_checkpoint:
        console.print(f"recommender (fused and compared): {run.fusion_rec_checkpoint}; the "
                      f"LLM reads {run.rec_checkpoint}")
    comparison = comparison_from_predictions(
        table, dataset_target_counts(PreparedDataset.open(run.data_dir)))
    for view in comparison_views(comparison) if comparison else ():
        console.print(view)
    caveat = SELECTION_CAVEAT if split == "val" else None
    if caveat and (comparison or "fused" in metrics):
        console.print(f"[yellow]note[/yellow]: {caveat}")
    if history:
        console.print(f"history: the top-1 changes in {history['top1_changed']:.0%} of "
                      f"{history['rows']} rows with another user's history; HitRatio@1 "
                      f"{history['HitRatio@1_own']:.4f} own vs {history['HitRatio@1_other']:.4f}"
                      " other")
    console.print(f"seconds: {seconds}")
    if json_out:
        write_json(json_out, {"split": split, "protocol": protocol, **metrics,
                              **({"caveat": caveat} if caveat else {}),
                              **({"fusion_grid": grid} if grid else {}),
                              **({"comparison": comparison} if comparison else {}),
                              **({"history": history} if history else {})})
    if predictions:
        with atomic_file(predictions) as tmp:
            pq.write_table(table, tmp)
        console.print(f"predictions -> {predictions}")


def recommend(checkpoint: Optional[Path] = typer.Option(None, help="Folder written by `llara "
                                                        "train` (ranks in this process)."),
              url: Optional[str] = typer.Option(None, help="A running `llara serve`, e.g. "
                                                "http://127.0.0.1:8000 (instead of "
                                                "--checkpoint)."),
              history: str = typer.Option(..., help="Titles or item ids, oldest first, "
                                          "separated by commas. " + ITEM_REFERENCES),
              candidates: Optional[str] = typer.Option(None, help="Titles or ids to rank "
                                                       "(default: the recommender's top "
                                                       "items outside the history). " +
                                                       ITEM_REFERENCES),
              pin: Optional[str] = typer.Option(None, help="Items that must be among the "
                                                "default candidates. " + ITEM_REFERENCES),
              k: Optional[int] = typer.Option(None, min=1, help="Items to return (default: "
                                              "all candidates)."),
              mode: RequestMode = typer.Option("score", help="score (rank the candidates) "
                                               "or generate (the LLM writes a title; only "
                                               "the `title` head trains answers)."),
              seed: Optional[int] = typer.Option(None, help="Seed for sampled candidates "
                                                 "(a service with candidate_source random)."),
              device: Optional[str] = typer.Option(None, help="--checkpoint only: cpu, "
                                                   "cuda, cuda:N or auto (default: auto)."),
              cache_dir: CacheDir = None
              ) -> None:
    """Rank candidates for a history and print them with their scores and where each came
    from; --checkpoint and --url take the same request and answer alike."""
    if (url is None) == (checkpoint is None):
        raise ConfigError("give either --checkpoint (rank here) or --url (ask a running "
                          "`llara serve`)")
    mode = mode.value
    if url is not None:
        refuse_unused("--url", "the service ranks with its own model",
                      {"--device": device, "--cache-dir": cache_dir})
        from .serve_cmd import recommend_remote

        recommend_remote(url, history, candidates, pin, k, mode, seed)
        return
    device = device or "auto"
    trained = load_trained(checkpoint, device, cache_dir, log=console.print)
    # The service's own reading of the same text (llara.data.items), so that --checkpoint
    # and --url agree.
    items = resolve_text(trained.items, history, "--history")
    config = ServingConfig(checkpoint=str(checkpoint), device=device,
                           max_history=max(len(items), 1))
    recommender = Recommender(trained, config, checkpoint_version(checkpoint), console.print)
    query = recommender.parse(
        items, recommender.resolve_text(candidates, "--candidates") if candidates else None,
        recommender.resolve_text(pin, "--pin") if pin else None, k, mode, seed)
    (result,) = (recommender.rank if mode == "score" else recommender.generate)([query])
    if isinstance(result, Exception):
        raise result
    answer = None
    if mode == "score":
        ranked = result
    else:
        answer, picked = result
        ranked = [] if picked is None else [(picked, None)]
    print_ranking(f"{mode} by {recommender.version}", [
        {"id": item, "title": trained.titles[item], "score": score,
         "source": query.origin(item)[0], "recommender_rank": query.origin(item)[1]}
        for item, score in ranked], answer)
