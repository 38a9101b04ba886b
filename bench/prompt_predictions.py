"""A checkpoint's predictions on one split with the prompt kind of your choice, as `llara
evaluate --predictions` writes them: the paper lists (PATH) and the rows with a new target on
lists of new items only (PATH's NAME.cold-only.parquet). `--prompts text` scores the text-only
prompt (titles, no item embeddings) with a model trained on both kinds (curriculum.schedule=
mixed); `--cold-only` scores only the lists of new items, for runs evaluated before `llara
evaluate` wrote them.

    python bench/prompt_predictions.py runs/ARM/best runs/ARM/pred-test-text.parquet \
        --split test --prompts text
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pyarrow.parquet as pq

from llara.config import EvalConfig
from llara.evaluation.predictions import cold_only_path, predictions_table
from llara.inference.evaluate import evaluate_trained, score_cold_only
from llara.inference.trained import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--prompts", choices=("hybrid", "text"), default="hybrid")
    parser.add_argument("--cold-only", action="store_true")
    args = parser.parse_args()
    trained = load_trained(args.checkpoint, "cpu")
    if args.prompts == "text":  # evaluates_hybrid() reads the schedule: text prompts only
        config = trained.config
        trained = dataclasses.replace(trained, config=dataclasses.replace(
            config, curriculum=dataclasses.replace(config.curriculum, schedule="text_only")))
    samples = trained.dataset.samples(args.split)
    if not args.cold_only:
        result = evaluate_trained(trained, EvalConfig(split=args.split, local=True), False)
        pq.write_table(predictions_table(result, trained.titles, trained.letters), args.out)
        print(f"{len(samples)} rows, {result['seconds']} -> {args.out}")
        samples = result["samples"]
    scored = score_cold_only(trained, samples, progress=False)
    if scored is not None:
        out = args.out if args.cold_only else cold_only_path(args.out)
        pq.write_table(predictions_table(scored, trained.titles), out)
        print(f"{len(scored['samples'])} rows with a new target, {scored['seconds']:.0f} s "
              f"-> {out}")


if __name__ == "__main__":
    main()
