"""`llara evaluate|recommend`: using a trained LLaRA checkpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import pyarrow.parquet as pq
import typer

from llara.common import ConfigError, atomic_file, write_json
from llara.config import EvalConfig, ServingConfig
from llara.model import resolve_model
from llara.inference import (Recommender, checkpoint_version, evaluate_here, evaluation_report,
                             load_trained, resolve_text)
from llara.evaluation import cold_only_path
from llara.model import stored_fusion
from llara.training import checked_run_config

from .common import (console, moved_inputs, print_ranking, print_report, refuse_unused,
                     report_json)
from .options import (CacheDir, EvaluationMode, ModelSource, MovedData, MovedFusion, MovedLlm,
                      MovedRec, NumCpus, Progress, Protocol, RequestMode, Split)

ITEM_REFERENCES = ("Digits that are both an id and another item's title are an error: "
                   "write id:187 or title:187 to say which (llara.data.items).")
"""How --history, --candidates and --pin read digits (the service reads them alike)."""


def evaluate(checkpoint: str = typer.Option(..., help="Folder written by `llara train` (best/ "
                                           "or final/) or `llara export`, or an exported "
                                           "model's hub id (owner/name, "
                                           "hf://owner/name@revision)."),
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
             predictions: Optional[Path] = typer.Option(None, help="Per-sample Parquet "
                                                        "(with new items, their rows on lists "
                                                        "of new items only beside it, in "
                                                        "NAME.cold-only.parquet)."),
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
             data: MovedData = None,
             rec_checkpoint: MovedRec = None,
             fusion_rec_checkpoint: MovedFusion = None,
             llm: MovedLlm = None,
             progress: Progress = True) -> None:
    """HitRatio@1/3/5 and NDCG@5 by the checkpoint's ranking head, beside the recommender
    alone and the fused score (with the fusion grid); with --mode generate or both also
    ValidRatio and HitRatio@1 by generation. With --protocol full: HitRatio@1/5/10 and
    NDCG@5/10 over the whole catalogue for the recommender alone and for its top-N reranked
    by LLaRA, and the retrieval's recall@N.

    Runs as Ray Data batch inference (the model loaded once per actor) unless --local."""
    if not (local or diagnostics):
        refuse_unused("Ray Data batch inference", "its actors run where --gpus/--no-gpus "
                      "puts them", {"--device": device}, instead="add --local")
    else:
        refuse_unused("--local" if local else "--diagnostics", "it evaluates in this process, "
                      "without Ray", {"--actors": actors, "--gpus/--no-gpus": gpus,
                                      "--batch-size": batch_size, "--num-cpus": num_cpus})
    evaluation = EvalConfig(split.value, mode.value, protocol.value, retrieve_n, max_samples,
                            diagnostics, local, actors or 1, bool(gpus), batch_size or 16,
                            device or "auto")
    checkpoint = resolve_model(checkpoint, log=console.print)
    run = checked_run_config(checkpoint, console.print,
                             moved_inputs(data, rec_checkpoint, fusion_rec_checkpoint, llm))
    if evaluation.in_process:
        scored = evaluate_here(checkpoint, evaluation, run, cache_dir, progress, console.print)
    else:
        from llara.ray_jobs.evaluate import evaluate_distributed
        from llara.ray_jobs.session import connect, require_gpus

        connect(num_cpus, log=console.print)
        require_gpus(evaluation.actors, evaluation.use_gpu)
        scored = evaluate_distributed(checkpoint, evaluation, cache_dir, progress, run)
    report = evaluation_report(scored, run, stored_fusion(checkpoint), evaluation)
    print_report(report)
    if json_out:
        write_json(json_out, report_json(report))
    if predictions:
        with atomic_file(predictions) as tmp:
            pq.write_table(scored.table, tmp)
        console.print(f"predictions -> {predictions}")
        if scored.cold_only is not None:
            beside = cold_only_path(predictions)
            with atomic_file(beside) as tmp:
                pq.write_table(scored.cold_only, tmp)
            console.print(f"rows with a new target, on lists of new items only -> {beside}")


def recommend(checkpoint: ModelSource = None,
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
              new_items: Optional[Path] = typer.Option(
                  None, help="--checkpoint only: a JSON-lines file of new items "
                  "({\"title\": ..., \"text\": ...} a line) added to the catalogue first, as "
                  "`llara serve --new-items` reads it (a checkpoint trained with "
                  "cold.content=map)."),
              data: MovedData = None,
              rec_checkpoint: MovedRec = None,
              fusion_rec_checkpoint: MovedFusion = None,
              llm: MovedLlm = None,
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
                      {"--device": device, "--cache-dir": cache_dir, "--new-items": new_items,
                       "--data": data, "--rec-checkpoint": rec_checkpoint,
                       "--fusion-rec-checkpoint": fusion_rec_checkpoint, "--llm": llm})
        from .serve_cmd import recommend_remote

        recommend_remote(url, history, candidates, pin, k, mode, seed)
        return
    device = device or "auto"
    checkpoint = resolve_model(checkpoint, log=console.print)
    run = checked_run_config(checkpoint, console.print,
                             moved_inputs(data, rec_checkpoint, fusion_rec_checkpoint, llm))
    trained = load_trained(checkpoint, device, cache_dir, log=console.print, config=run)
    config = ServingConfig(checkpoint=str(checkpoint), device=device,
                           new_items=None if new_items is None else str(new_items))
    if new_items is not None and trained.cold is None:
        raise ConfigError("invalid '--new-items': this checkpoint reads no new items: it was "
                          "trained with cold.content=none (train with --set cold.content=map)")
    recommender = Recommender(trained, config, checkpoint_version(checkpoint), console.print)
    # The service's own reading of the same text (llara.data.items), so that --checkpoint
    # and --url agree.
    items = resolve_text(recommender.items, history, "--history")
    recommender.config = replace(recommender.config, max_history=max(len(items), 1))
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
