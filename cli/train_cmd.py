"""`llara train`: on a local Ray, as a Ray Job on a cluster, or in one process."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llara.config import FinetuneConfig

from .common import build_config, console, refuse_cluster_conflicts, refuse_unused, with_shortcuts
from .options import (SET_TEXT, Address, CacheDir, Cluster, Follow, NumCpus, Progress,
                      Requirements, Schedule)

CONFIG_HELP = "YAML mirroring FinetuneConfig (llm, data_dir, prompt, lora, train, ...)."
SET_HELP = "Dotted override, repeatable, e.g. --set train.lr=0.0008. " + SET_TEXT


def run_config(config: Optional[Path], set_: Optional[list[str]], **shortcuts) -> FinetuneConfig:
    return build_config(FinetuneConfig, config, with_shortcuts(set_, shortcuts))


def train(config: Optional[Path] = typer.Option(None, help=CONFIG_HELP),
          set_: Optional[list[str]] = typer.Option(None, "--set", help=SET_HELP),
          cluster: Cluster = None,
          address: Address = None,
          local: bool = typer.Option(False, "--local", help="One process, no Ray, no DeepSpeed "
                                     "(so no --cluster, --address, --workers, --gpus or "
                                     "--num-cpus)."),
          workers: Optional[int] = typer.Option(None, min=1, help="Ray Train workers."),
          gpus: Optional[bool] = typer.Option(None, "--gpus/--no-gpus", help="One GPU per worker."),
          num_cpus: NumCpus = None,
          follow: Follow = True,
          requirements: Requirements = True,
          data: Optional[Path] = typer.Option(None, help="Prepared dataset folder."),
          rec_checkpoint: Optional[Path] = typer.Option(None, help="Recommender checkpoint."),
          fusion_rec_checkpoint: Optional[Path] = typer.Option(
              None, help="The recommender that fuses and retrieves, where it is not "
              "--rec-checkpoint (stacking: `llara data holdout`)."),
          llm: Optional[str] = typer.Option(None, help="smollm2-135m, a HF folder or id, a "
                                            ".gguf file, or tiny."),
          out: Optional[Path] = typer.Option(None, help="Output folder."),
          schedule: Optional[Schedule] = typer.Option(None, help="Curriculum schedule "
                                                      "(curriculum.schedule)."),
          budget: Optional[int] = typer.Option(None, help="Training samples per epoch "
                                               "(train.max_train_samples)."),
          cache_dir: CacheDir = None,
          progress: Progress = True) -> None:
    """Fine-tune LLaRA (LoRA + projector, text-to-hybrid curriculum) with Ray Train + DeepSpeed."""
    if local:
        refuse_unused("--local", "it trains in this process, without Ray", {
            "--cluster": cluster, "--address": address, "--workers": workers,
            "--gpus/--no-gpus": gpus, "--num-cpus": num_cpus})
    else:
        refuse_cluster_conflicts(cluster, address, num_cpus, "training")
    run = run_config(config, set_, data_dir=data, rec_checkpoint=rec_checkpoint,
                     fusion_rec_checkpoint=fusion_rec_checkpoint, llm=llm,
                     output_dir=out, **{"curriculum.schedule": schedule,
                                        "train.max_train_samples": budget,
                                        "distributed.num_workers": workers,
                                        "distributed.use_gpu": gpus})
    if local:
        from llara.training import train_local

        result = train_local(run, cache_dir, progress, log=console.print)
        console.print(f"best epoch {result.best_epoch}: val HitRatio@1 "
                      f"{result.val_metrics['HitRatio@1']:.4f}; {result.steps} steps "
                      f"({result.hybrid_steps} hybrid), {result.seconds:.0f}s -> "
                      f"{result.checkpoint_dir}")
        return
    if cluster is not None:
        from llara.ray_jobs.submit import read_cluster, submit_training

        job_id, status = submit_training(run, read_cluster(cluster), address, requirements,
                                         follow, log=console.print)
        console.print(f"job {job_id}: {status}")
        return
    from llara.ray_jobs.session import connect, require_gpus
    from llara.ray_jobs.train import claim_run, run_training

    claim_run(run, log=lambda *_: None)  # a refusal before Ray starts; run_training says more
    connect(num_cpus, log=console.print)
    require_gpus(run.distributed.num_workers, run.distributed.use_gpu)
    result = run_training(run, cache_dir, progress, log=console.print)
    metrics = result.metrics
    console.print(f"{metrics['step']} steps ({metrics.get('hybrid_steps', 0)} hybrid), val "
                  f"HitRatio@1 {metrics.get('val_HitRatio@1', float('nan')):.4f} -> "
                  f"{result.checkpoint_dir}; Ray results in {result.storage}")

