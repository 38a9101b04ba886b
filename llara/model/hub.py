"""Where a model is: a local folder (a checkpoint or an export), or an export on the Hugging
Face hub, downloaded once into the hub's cache (HF_HOME / HF_HUB_CACHE; HF_HUB_OFFLINE=1 reads
that cache only)."""

from __future__ import annotations

import re
from pathlib import Path

from llara.common.errors import DataError
from llara.model.manifest import EXPORT_FILE, is_export

HUB_PREFIX = "hf://"
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""owner/name, as the hub spells repository ids."""
_EXPECTED = ("a folder written by `llara train` or `llara export`, or an exported model's hub "
             "id (owner/name or hf://owner/name@revision)")


def hub_reference(text: str) -> tuple[str, str | None] | None:
    """(repo id, revision) where `text` names a hub repository: hf://owner/name[@rev], or
    owner/name where no folder `owner` is here (so a mistyped `models/shop` stays a local
    path and is refused as one, never fetched from the hub); else None."""
    explicit = text.startswith(HUB_PREFIX)
    repo, _, revision = (text[len(HUB_PREFIX):] if explicit else text).partition("@")
    if not HUB_ID.match(repo) or (not explicit and (
            revision or Path(text).exists() or Path(repo.split("/")[0]).exists())):
        if explicit:
            raise DataError(text, "is not a hub reference", expected="hf://owner/name or "
                            "hf://owner/name@revision")
        return None
    return repo, revision or None


def download_export(repo_id: str, revision: str | None = None, log=print) -> Path:
    """The local folder of an export on the hub (the hub's cache; downloaded where missing)."""
    from huggingface_hub import snapshot_download

    where = f"{HUB_PREFIX}{repo_id}" + (f"@{revision}" if revision else "")
    log(f"fetching {where} from the Hugging Face hub (or its local cache)")
    try:
        path = Path(snapshot_download(repo_id=repo_id, revision=revision))
    except Exception as err:  # noqa: BLE001 - offline, unknown repo, gated, bad revision...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise DataError(where, f"is no local folder, and the hub cannot give it "
                        f"({first[:300]})", expected=_EXPECTED + "; offline, the hub's local "
                        "cache must hold it")
    if not is_export(path):
        raise DataError(where, f"holds no {EXPORT_FILE}", expected="a model written by "
                        "`llara export` and uploaded as it is")
    return path


def resolve_model(source: str | Path, log=print) -> Path:
    """The local folder `source` names: itself where it exists, else the hub's copy of the
    export it names; anything else is refused with what was expected."""
    text = str(source)
    reference = hub_reference(text)
    if reference is not None:
        return download_export(*reference, log=log)
    path = Path(text).expanduser()
    if not path.is_dir():
        raise DataError(path, "no such checkpoint folder", expected=_EXPECTED)
    return path
