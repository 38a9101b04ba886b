"""Helpers of bench/device/cluster_run.sh, the GPU cluster-path run (bench/device/README.md):

    python3 bench/device/cluster_run.py prepare --kit .device-kit --to /tmp/llara-wheels
        joins the Ray wheel and the SmolLM2 GGUF from their kit halves, SHA-256 checked
    python3 bench/device/cluster_run.py summarize --run runs/gpu --out $OUT
        results.json + results.md from the training log, the evaluation and the load test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_run import join_model, read_kit, sha256  # noqa: E402


def join_ray(kit: Path, target_dir: Path) -> Path:
    manifest = json.loads((kit / "c" / "kit-cluster.json").read_text())
    ray = manifest["ray"]
    target = target_dir / ray["file"]
    with target.open("wb") as out:
        for part in ray["parts"]:
            path = kit / part["file"]
            if not path.is_file():
                raise SystemExit(f"{path} is missing: carry .device-kit/{part['file']}'s folder")
            out.write(path.read_bytes())
    if sha256(target) != ray["sha256"]:
        raise SystemExit(f"{target}: SHA-256 differs from kit-cluster.json (a damaged half)")
    for name, digest in manifest["wheels"].items():
        if sha256(kit / "c" / "wheels" / name) != digest:
            raise SystemExit(f"{kit / 'c' / 'wheels' / name}: SHA-256 differs")
    return target


def prepare(kit: Path, to: Path) -> None:
    to.mkdir(parents=True, exist_ok=True)
    ray = join_ray(kit, to)
    gguf = join_model(kit, read_kit(kit), to)
    print(json.dumps({"ray": str(ray), "gguf": str(gguf)}))


def summarize(run: Path, out: Path) -> dict:
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    tenth = max(1, len(steps) // 10)
    mean = lambda rows: sum(r["loss"] for r in rows) / len(rows)  # noqa: E731
    final = json.loads((run / "final" / "run.json").read_text())
    found = {"date": time.strftime("%Y-%m-%d"), "run": str(run),
             "training": {"steps": len(steps), "hybrid_steps": sum(r["hybrid"] for r in steps),
                          "loss_first_tenth": mean(steps[:tenth]) if steps else None,
                          "loss_last_tenth": mean(steps[-tenth:]) if steps else None,
                          "samples_per_s_median": sorted(r["samples_per_s"] for r in steps)[
                              len(steps) // 2] if steps else None,
                          "validation": [r for r in log if "val_HitRatio@1" in r]},
             "config": final["config"]}
    for name in ("evaluate", "serve_load", "environment"):
        path = out / f"{name}.json"
        found[name] = json.loads(path.read_text()) if path.is_file() else None
    (out / "results.json").write_text(json.dumps(found, indent=2) + "\n")
    t = found["training"]
    lines = [f"# GPU cluster path ({found['date']})", "",
             f"Ray Train + DeepSpeed: {t['steps']} steps ({t['hybrid_steps']} hybrid), loss "
             f"{t['loss_first_tenth']} (first tenth) -> {t['loss_last_tenth']} (last tenth), "
             f"median {t['samples_per_s_median']} samples/s.", "",
             f"Reloaded checkpoint, llara evaluate: {found['evaluate']}", "",
             f"llara serve under bench/serve_load.py: {found['serve_load']}", ""]
    (out / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    first = verbs.add_parser("prepare")
    first.add_argument("--kit", type=Path, default=Path(".device-kit"))
    first.add_argument("--to", type=Path, default=Path("/tmp/llara-wheels"))
    last = verbs.add_parser("summarize")
    last.add_argument("--run", type=Path, required=True)
    last.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.verb == "prepare":
        prepare(args.kit, args.to)
    else:
        summarize(args.run, args.out)


if __name__ == "__main__":
    main()
