"""The new-items study (issue 44): every step a user would type, run in order, each skipped
when its output is already there (--resume), so that a long CPU study survives a stop.

    python bench/cold_items.py --work /tmp/study44 [--arms default,map,map-drop30] \
        [--samples 2048] [--seeds 0] [--resume]
    python bench/cold_items.py --work /tmp/study44 --source lastfm-log --prepare \
        "--column timestamp=position --domain music --cold-by random" \
        --data data/lastfm-cold --rec runs/rec/lastfm --prefix lastfm- --arms text-only

Steps: `llara data prepare` (MovieLens-100K, the cold-item protocol: the newest 20% of items,
K = 10 rows per held-out user plus every row with a cold target, users 70/10/20), `llara rec
train` (SASRec, its defaults), then per arm and seed `llara train --local` with
examples/run.yaml and the arm's options, and `llara evaluate --local --split test` with its
--json and --predictions. Every command and its wall time go to <work>/commands.log.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LLARA = str(Path(sys.executable).with_name("llara"))
ARMS = {
    "default": [],
    "map": ["cold.content=map"],
    "map-drop30": ["cold.content=map", "cold.id_dropout=0.3"],
    "map-drop30-genres": ["cold.content=map", "cold.id_dropout=0.3", "prompt.item_text=genres"],
    "genres": ["prompt.item_text=genres"],
    "text-only": ["curriculum.schedule=text_only"],
    "text-only-genres": ["curriculum.schedule=text_only", "prompt.item_text=genres"],
    "map-drop30-genres-mixed": ["cold.content=map", "cold.id_dropout=0.3",
                                "prompt.item_text=genres", "curriculum.schedule=mixed"],
    "map-drop30-genres-newest20": ["cold.content=map", "cold.id_dropout=0.3",
                                   "prompt.item_text=genres", "cold.newest_warm=0.2"],
}
"""Each arm's options over examples/run.yaml."""


def run(command: list[str], work: Path, done: Path | None, resume: bool) -> None:
    text = " ".join(shlex.quote(c) for c in command)
    with (work / "commands.log").open("a") as log:
        if resume and done is not None and done.exists():
            log.write(f"# skipped (done: {done}): {text}\n")
            return
        log.write(f"$ {text}\n")
        log.flush()
        started = time.time()
        result = subprocess.run(command, cwd=work, stdout=log, stderr=subprocess.STDOUT)
        log.write(f"# rc {result.returncode}, {time.time() - started:.0f} s\n")
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {text}; see {work}/commands.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--arms", default="default,map,map-drop30")
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--cold", type=float, default=0.2)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--val", action="store_true",
                        help="also evaluate the validation rows (pred-val.parquet, for "
                             "bench/cold_fusion.py --select)")
    parser.add_argument("--data", default="data/ml-cold",
                        help="the prepared dataset's folder under --work")
    parser.add_argument("--source", default="movielens-100k",
                        help="what `llara data prepare` reads (a name or a folder under --work)")
    parser.add_argument("--prepare", default="",
                        help="more `llara data prepare` options, e.g. '--cold-by random'")
    parser.add_argument("--rec", default="runs/rec/sasrec", help="SASRec's folder under --work")
    parser.add_argument("--prefix", default="", help="put before each run's folder name")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data, rec = args.data, args.rec
    run([LLARA, "data", "prepare", args.source, "--cold-items", str(args.cold),
         "--rows-per-user", "10", "--set", "split_ratios=[0.7, 0.1, 0.2]",
         *shlex.split(args.prepare), "--out", data],
        work, work / data / "dataset.json", args.resume)
    run([LLARA, "rec", "train", "--data", data, "--out", rec, "--no-progress"], work,
        work / rec / "model.safetensors", args.resume)
    runs = [(arm, seed, f"runs/{args.prefix}{arm}-n{args.samples}-s{seed}")
            for arm in args.arms.split(",") for seed in args.seeds.split(",")]
    for arm, seed, out in runs:  # every training first: evaluation code may still change
        sets = [*ARMS[arm], f"train.seed={seed}", f"train.max_train_samples={args.samples}"]
        run([LLARA, "train", "--local", "--config", str(REPO / "examples" / "run.yaml"),
             "--data", data, "--rec-checkpoint", rec, "--out", out, "--no-progress",
             *[x for s in sets for x in ("--set", s)]],
            work, work / out / "best" / "run.json", args.resume)
    for arm, seed, out in runs:
        run([LLARA, "evaluate", "--checkpoint", f"{out}/best", "--split", "test", "--local",
             "--json", f"{out}/eval-test.json", "--predictions", f"{out}/pred-test.parquet",
             "--no-progress"], work, work / out / "eval-test.json", args.resume)
    for arm, seed, out in runs if args.val else ():
        run([LLARA, "evaluate", "--checkpoint", f"{out}/best", "--split", "val", "--local",
             "--json", f"{out}/eval-val.json", "--predictions", f"{out}/pred-val.parquet",
             "--no-progress"], work, work / out / "pred-val.parquet", args.resume)


if __name__ == "__main__":
    main()
