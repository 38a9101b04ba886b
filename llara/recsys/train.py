"""Training a recommender: full-softmax next-item loss, early stopping on validation HitRatio@1."""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from llara.common.atomic import ensure_replaceable
from llara.common.device import resolve_device
from llara.config.io import to_dict
from llara.config.recommender import RecRunConfig
from llara.data.candidates import sample_candidates
from llara.data.prepare import PreparedDataset
from llara.recsys.checkpoint import CHECKPOINT_FILES, save_checkpoint
from llara.recsys.models import build_recommender
from llara.recsys.ranking import evaluate_ranking, rank_candidates


@dataclass
class TrainResult:
    checkpoint_dir: Path
    best_epoch: int
    epochs_run: int
    val_metrics: dict[str, float]
    seconds: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def batch_loss(model: torch.nn.Module, history: torch.Tensor, lengths: torch.Tensor,
               targets: torch.Tensor, sampled: int, generator: torch.Generator) -> torch.Tensor:
    """Next-item cross-entropy: over the whole catalogue (sampled 0), or over the batch's
    targets and `sampled` uniform draws shared by the batch, where a draw (or another row's
    target) that is the row's own target is masked rather than counted as a negative."""
    if sampled == 0:
        return torch.nn.functional.cross_entropy(model(history, lengths), targets)  # (B, N)
    table = model.items
    drawn = torch.randint(0, table.num_items, (sampled,), generator=generator)
    candidates = torch.cat([targets, drawn.to(targets.device)])  # (B + K,)
    states = model.encode(history, lengths)  # (B, D)
    logits = states @ table.embedding.weight[candidates].T + table.bias[candidates]  # (B, B+K)
    rows = torch.arange(len(targets), device=targets.device)
    hits = candidates[None, :] == targets[:, None]  # (B, B + K)
    hits[rows, rows] = False  # the row's own target column stays
    return torch.nn.functional.cross_entropy(logits.masked_fill(hits, float("-inf")), rows)


def train_recommender(dataset: PreparedDataset, run: RecRunConfig, output_dir: str | Path,
                      progress: bool = True, log=print) -> TrainResult:
    """Train on the dataset's train table, keep the epoch with the best validation HR@1."""
    started = time.perf_counter()
    ensure_replaceable(output_dir, CHECKPOINT_FILES, "--out")  # before the epochs, not after
    seed_everything(run.train.seed)
    device = resolve_device(run.train.device)
    data = dataset.config
    train = dataset.samples("train")
    val = dataset.samples("val")
    val_candidates = sample_candidates(val, dataset.num_items, data.num_candidates,
                                       data.candidate_seed)
    model = build_recommender(run.model, dataset.num_items, data.max_history).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=run.train.lr,
                                  weight_decay=run.train.weight_decay)
    history = torch.as_tensor(train.history)
    lengths = torch.as_tensor(train.len_history)
    targets = torch.as_tensor(train.next)
    shuffler = torch.Generator().manual_seed(run.train.seed)
    best_hr, best_epoch, best_state, best_metrics, stale = -1.0, 0, None, {}, 0
    records = []
    bar = tqdm(range(1, run.train.epochs + 1), desc=f"{run.model.model} epochs",
               disable=not progress, leave=False)
    epoch = 0
    for epoch in bar:
        model.train()
        order = torch.randperm(len(train), generator=shuffler)
        total_loss = 0.0
        for start in range(0, len(order), run.train.batch_size):
            batch = order[start:start + run.train.batch_size]
            loss = batch_loss(model, history[batch].to(device), lengths[batch].to(device),
                              targets[batch].to(device), run.train.sampled_negatives,
                              shuffler)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(batch)
        metrics = evaluate_ranking(rank_candidates(model, val, val_candidates,
                                                   run.train.eval_batch_size, device))
        record = {"epoch": epoch, "train_loss": total_loss / len(train),
                  **{f"val_{k}": v for k, v in metrics.items()}}
        records.append(record)
        if metrics["HitRatio@1"] > best_hr:
            best_hr, best_epoch, best_metrics, stale = metrics["HitRatio@1"], epoch, metrics, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_hr1=f"{metrics['HitRatio@1']:.3f}",
                        best=f"{best_hr:.3f}@{best_epoch}")
        if stale >= run.train.patience:
            break
    bar.close()
    model.load_state_dict(best_state)
    output_dir = Path(output_dir)
    info = {"run": to_dict(run), "dataset_dir": str(dataset.directory.resolve()),
            "best_epoch": best_epoch, "epochs_run": epoch,
            "val_metrics": best_metrics, "history": records}
    log_lines = "".join(json.dumps(r) + "\n" for r in records)
    save_checkpoint(output_dir, model, run.model, dataset.num_items, data.max_history, info,
                    extra_files={"metrics.jsonl": log_lines})
    seconds = time.perf_counter() - started
    log(f"{run.model.model}: best epoch {best_epoch}/{epoch}, val HitRatio@1 {best_hr:.4f} "
        f"({seconds:.0f}s) -> {output_dir}")
    return TrainResult(output_dir, best_epoch, epoch, best_metrics, seconds)
