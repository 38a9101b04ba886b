"""An export's manifest (export.json): its parts, each with a content digest checked on load.

An export folder is a checkpoint folder (run.json, adapter/, the projector and the head) with
everything else it reads beside it: the recommender(s), the catalogue, the prompt templates
where the run had its own, and the base LLM where it was included. export.json lists each
part with the SHA-256 of its bytes (a folder's: of all its files, by relative name), so a
damaged or altered part is refused with one line naming it. The digests find damage and
accidental edits; they do not authenticate: whoever can edit a part can edit export.json.
The model card (README.md) is not a part: editing it changes nothing the model does.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from llara.common.digest import file_digest, folder_digest, short_digest
from llara.common.errors import DataError
from llara.model.checkpoint import RUN_FILE
from llara.model.llara import HEAD_FILE, PROJECTOR_FILE

EXPORT_FILE = "export.json"
EXPORT_FORMAT = "llara-export/1"
CARD_FILE = "README.md"
PART_PATHS = {"adapter": "adapter", "projector": PROJECTOR_FILE, "head": HEAD_FILE,
              "run config": RUN_FILE, "recommender": "recommender",
              "fusion recommender": "fusion-recommender", "catalogue": "data",
              "prompt templates": "templates", "base LLM": "llm"}
"""Every part an export may hold, by name: its path inside the folder (manifest order). The
writer (llara.export) lays the folder out from it and the reader checks against it."""
_AGAIN = "the folder as `llara export` wrote it (export the checkpoint again)"


def tree_files(path: Path) -> list[str]:
    """Every file under the folder `path`, as sorted relative POSIX names."""
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


def part_digest(path: Path) -> str:
    """A file's SHA-256, or a folder's over all its files (name and digest of each): a file
    added to, removed from or changed in the folder changes it."""
    path = Path(path)
    return file_digest(path) if path.is_file() else folder_digest(path, tree_files(path))


def is_export(directory: str | Path) -> bool:
    """Whether `directory` holds an export's manifest."""
    return (Path(directory) / EXPORT_FILE).is_file()


def read_manifest(directory: str | Path) -> dict | None:
    """export.json, checked for shape (None where the folder is a plain checkpoint)."""
    path = Path(directory) / EXPORT_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as err:
        raise DataError(path, f"unreadable ({err})", expected=_AGAIN) from None
    parts = manifest.get("parts") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise DataError(path, f"format {found!r}", expected=EXPORT_FORMAT)
    if not isinstance(parts, list) or not parts or not all(
            isinstance(p, dict) and all(isinstance(p.get(k), str) for k in
                                        ("name", "path", "digest")) for p in parts):
        raise DataError(path, "its parts are not a list of name, path and digest",
                        expected=_AGAIN)
    for part in parts:
        relative = PurePosixPath(part["path"])
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise DataError(path, f"part '{part['name']}' has the path {part['path']!r}",
                            expected="a path inside the export folder")
    return manifest


def check_export(directory: str | Path) -> dict | None:
    """The manifest of the export at `directory`, after checking every part against its
    digest; None for a plain checkpoint. A missing or changed part is refused, named."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None:
        return None
    for part in manifest["parts"]:
        path = directory / part["path"]
        if path.is_symlink() or (path.is_dir() and any(p.is_symlink() for p in path.rglob("*"))):
            raise DataError(directory, f"part '{part['name']}' ({part['path']}) holds a "
                            "symbolic link", expected=_AGAIN)
        if not path.exists():
            raise DataError(directory, f"part '{part['name']}' ({part['path']}) is missing",
                            expected=_AGAIN)
        now = part_digest(path)
        if now != part["digest"]:
            raise DataError(directory, f"part '{part['name']}' ({part['path']}) is damaged "
                            f"or was altered: digest {short_digest(now)}, export.json records "
                            f"{short_digest(part['digest'])}", expected=_AGAIN)
    return manifest


def check_export_config(directory: str | Path, manifest: dict, config, moved: dict) -> None:
    """An export's run config (`config`: its FinetuneConfig as run.json writes it, paths
    relative) reads nothing outside the export but what the user moved on purpose (`moved`:
    option -> path), and every part it reads is a listed, checked part."""
    directory = Path(directory).resolve()
    names = {part["name"] for part in manifest["parts"]}
    base = manifest.get("base_llm") or {}
    needed = {"adapter", "projector", "run config", "recommender", "catalogue"}
    for option, part in (("data_dir", None), ("rec_checkpoint", None),
                         ("fusion_rec_checkpoint", "fusion recommender"),
                         ("template_file", "prompt templates")):
        value = getattr(config.prompt if option == "template_file" else config, option)
        if value is None or option in moved:
            continue
        needed |= {part} if part else set()
        where = (directory / value).resolve()
        if where != directory and directory not in where.parents:
            raise DataError(directory / "run.json", f"names {option} {value}, outside the "
                            "export", expected=_AGAIN)
    if "llm" not in moved:
        if base.get("included"):
            needed.add("base LLM")
        elif base.get("local"):
            raise DataError(directory, f"its base LLM ({base.get('source')}) was a local "
                            "folder or file and is not in the export", expected="where it is "
                            "on this machine, given with --llm PATH (or an export made with "
                            "--include-llm)")
        if Path(config.llm).is_absolute() or ".." in Path(config.llm).parts:
            raise DataError(directory / "run.json", f"names llm {config.llm}, outside the "
                            "export", expected=_AGAIN)
    missing = sorted(needed - names)
    if missing:
        raise DataError(directory / EXPORT_FILE, f"lists no part '{missing[0]}', which its run "
                        "config reads", expected=_AGAIN)


def llm_digest(source: str | Path) -> str | None:
    """The digest of a base LLM where it is a local folder or file (a packaged model's
    converted folder, a Hugging Face folder, a .gguf file); None for a hub id or `tiny`."""
    path = Path(source)
    return part_digest(path) if path.exists() else None


def check_base_llm(manifest: dict | None, resolved: str, log=print) -> None:
    """Warn when the base LLM found here differs from the one the export recorded (another
    conversion, another revision): the model loads, but its scores may differ."""
    base = (manifest or {}).get("base_llm") or {}
    recorded = base.get("digest")
    if not recorded or base.get("included"):  # an included LLM is a part, checked already
        return
    now = llm_digest(resolved)
    if now is not None and now != recorded:
        log(f"warning: the base LLM at {resolved} differs from the one this model was exported "
            f"with (digest {short_digest(recorded)} then, {short_digest(now)} now): it loads, "
            "but its scores may differ from the model card's")
