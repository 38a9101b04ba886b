"""Pack what the GPU cluster-path run needs (Ray Train + DeepSpeed, then Ray Serve, on one
lent GPU) into `.device-kit/c` and `.device-kit/d`, beside the quality kit's a/ and b/
(data, SASRec, the GGUF halves: run bench/device/pack.py first):

    python bench/device/pack_cluster.py      # ~2 min: downloads ~200 MB, keeps ~85 MB

The device image has torch, transformers, peft, pyarrow, pandas, aiohttp, grpcio and more, but
not Ray, DeepSpeed or what they and Ray Serve pull in. pip resolves the whole closure of
`ray[data,train,tune,serve]`, DeepSpeed's and gguf's requirements for CPython 3.12 on
manylinux x86_64; the wheels of projects the image already has are dropped (its list: the
device tool's KINDS.md, read 2026-11-17, in DEVICE_PACKAGES below), DeepSpeed (a source
archive) is built here into a wheel, and the Ray wheel (79 MB, over one call's 64 MiB) is
split in two halves, one per call. kit-cluster.json records every file's SHA-256.

.device-kit/c/  wheels/ (all but Ray) and ray.part0
.device-kit/d/  ray.part1
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pack import KIT, commit, sha256, split_file  # noqa: E402

CALL_BYTES = 56 * 2**20
"""What one kit folder may hold: a device call carries 64 MiB with the repository."""
RAY = "ray[data,train,tune,serve]==2.60.0"
DEEPSPEED = "deepspeed==0.19.8"
EXTRA = ("gguf==0.19.0", "hjson", "tensorboardX")
"""Beside Ray: DeepSpeed's requirement the image lacks, the GGUF reader, Ray Tune's logger."""
DEVICE_PACKAGES = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib
jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator
lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx
ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc
nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand
nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13
nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf
psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools
shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz
torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers
treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug
wheel wrapt xarray xxhash yarl zipp
""".split())
"""Projects in the device image ('cuda'), as KINDS.md listed them on 2026-11-17."""
PLATFORM = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
            "--abi", "cp312", "--abi", "abi3", "--abi", "none"] + [
    arg for tag in ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                    "manylinux2014_x86_64", "manylinux1_x86_64", "any")
    for arg in ("--platform", tag)]


def project(wheel: Path) -> str:
    """The normalised project name of a wheel file (PEP 503)."""
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "-q"],
                   check=True, timeout=1800)


def deepspeed_requirements(wheel: Path) -> list[str]:
    """DeepSpeed's Requires-Dist lines, for the resolver (the wheel was built here)."""
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(name).decode().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines
            if line.startswith("Requires-Dist:") and "extra ==" not in line]


def pack_cluster(kit: Path, log=print) -> dict:
    if not (kit / "a" / "kit.json").is_file():
        raise SystemExit(f"{kit / 'a' / 'kit.json'} not found: run bench/device/pack.py first")
    third, fourth = kit / "c", kit / "d"
    for part in (third, fourth):
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
    wheels = third / "wheels"
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        log(f"building {DEEPSPEED} into a wheel (its sdist imports torch to build)")
        pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(scratch / "ds"), DEEPSPEED)
        (deepspeed,) = (scratch / "ds").glob("deepspeed-*.whl")
        requirements = [r for r in deepspeed_requirements(deepspeed)
                        if not r.lower().startswith("torch")]
        log("resolving Ray's, DeepSpeed's and gguf's wheels for CPython 3.12 / manylinux")
        pip("download", "-d", str(scratch / "all"), *PLATFORM, RAY, *EXTRA, *requirements)
        kept, dropped = [], []
        for wheel in sorted((scratch / "all").glob("*.whl")):
            if project(wheel) == "ray":
                ray = wheel
            elif project(wheel) in DEVICE_PACKAGES:
                dropped.append(wheel.name)
            else:
                kept.append(wheel.name)
        wheels.mkdir()
        for name in kept:
            shutil.copy(scratch / "all" / name, wheels / name)
        shutil.copy(deepspeed, wheels / deepspeed.name)
        # The first half fills c/ up to CALL_BYTES beside the other wheels; d/ takes the rest.
        others = sum(f.stat().st_size for f in wheels.glob("*.whl"))
        parts = split_file(ray, [third / "ray.part0", fourth / "ray.part1"],
                           first=max(1, CALL_BYTES - others))
        manifest = {"format": "llara-device-cluster-kit/1", "commit": commit(),
                    "ray": {"file": ray.name, "bytes": ray.stat().st_size,
                            "sha256": sha256(ray), "parts": parts},
                    "wheels": {p.name: sha256(p) for p in sorted(wheels.glob("*.whl"))},
                    "dropped_as_on_the_device": dropped}
    (third / "kit-cluster.json").write_text(json.dumps(manifest, indent=2) + "\n")
    sizes = {p.name: sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
             for p in (third, fourth)}
    log(f"cluster kit: {len(manifest['wheels'])} wheels kept, {len(dropped)} dropped as on "
        "the device; " + ", ".join(f"{n}/ {s / 2**20:.1f} MiB" for n, s in sizes.items()))
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", type=Path, default=KIT)
    pack_cluster(parser.parse_args().kit)


if __name__ == "__main__":
    main()
