"""New items at serving time: items added to a loaded checkpoint's catalogue with their title
and text, read by their content at once, without retraining and without a restart.

A model trained with `cold.content=map` reads an item the recommender never trained on through
its content vector (llara.recsys.content_map); a new item is one more such item. It takes the
next id after the catalogue (and after the new items before it), its content vector enters the
item table, and the recommender, which has no row for it, leaves it to the LLM (its score is
neutral in the fused ranking, llara.evaluation.fusion.without_cold).

The new items of a service live in one JSON-lines file, one `{"title": ..., "text": ...}` a
line (serve.new_items): adding appends to it under a lock, and every replica reads what it has
not read yet before it answers, so all replicas (and a replica that starts later) hold the same
catalogue, the same ids.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from llara.common.errors import LlaraError
from llara.data.items import MAX_REFERENCE_CHARS, ItemIndex
from llara.data.titles import item_text

MAX_TEXT_CHARS = 2000
"""Longest text (genres, tags, a description) of a new item."""
NEW_ITEM_KEYS = ("title", "text")


class NewItemError(LlaraError):
    """A new item that cannot be added, saying why."""


@dataclass(frozen=True)
class NewItem:
    title: str
    """As prompts write it, and as users name it."""
    text: str = ""
    """What the item file's text column would hold (genres, tags, a year "1998")."""


def new_item(value: object, where: str) -> NewItem:
    """A NewItem from a JSON object {"title": str, "text": str (optional)}, checked; errors
    name `where` (a request field, or a file and line)."""
    if not isinstance(value, dict):
        raise NewItemError(f"{where}: a new item is a JSON object with a title, got a "
                           f"{type(value).__name__}")
    unknown = sorted(set(value) - set(NEW_ITEM_KEYS))
    if unknown:
        raise NewItemError(f"{where}: unknown key {unknown[0]!r}; a new item has "
                           f"{' and '.join(NEW_ITEM_KEYS)}")
    title, text = value.get("title"), value.get("text", "")
    if not isinstance(title, str) or not title.strip():
        raise NewItemError(f"{where}: title must be a non-empty string")
    if len(title) > MAX_REFERENCE_CHARS:
        raise NewItemError(f"{where}: title has {len(title)} characters; at most "
                           f"{MAX_REFERENCE_CHARS}")
    if not isinstance(text, str):
        raise NewItemError(f"{where}: text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise NewItemError(f"{where}: text has {len(text)} characters; at most "
                           f"{MAX_TEXT_CHARS}")
    if any(ord(c) < 32 for c in title + text):
        raise NewItemError(f"{where}: control characters (line breaks, tabs) are not allowed")
    return NewItem(" ".join(title.split()), " ".join(text.split()))


def read_new_items(path: str | Path, offset: int = 0) -> tuple[list[NewItem], int]:
    """The items of a new-items file after byte `offset` (0: all), and the offset after the
    last whole line read: a line still being written (no newline yet) waits for the next
    read. Read under a shared lock; a missing file holds none. A damaged line is an error
    naming its line."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                handle.seek(offset)
                data = handle.read()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    except FileNotFoundError:
        return [], offset
    except OSError as err:
        raise NewItemError(f"the new-items file cannot be read ({err.strerror})") from None
    whole = data[:data.rfind(b"\n") + 1]  # complete lines only
    lines = whole.split(b"\n")[:-1]
    items = []
    for place, line in enumerate(lines):
        try:
            items.append(_parsed_line(line, place + 1))
        except NewItemError:
            # Named by its number in the file, which is counted only for this error.
            _parsed_line(line, _line_count(path, offset) + place + 1)
            raise
    return items, offset + len(whole)


def _line_count(path: Path, offset: int) -> int:
    with open(path, "rb") as handle:
        return handle.read(offset).count(b"\n")


def _parsed_line(line: bytes, number: int) -> NewItem:
    where = f"the new-items file, line {number}"
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise NewItemError(f"{where}: not a JSON object") from None
    return new_item(value, where)


def append_new_items(path: str | Path, items: list[NewItem], known: ItemIndex,
                     limit: int) -> int:
    """Append `items` to the file under an exclusive lock and return the index (0-based among
    the file's items) of the first; refused, with nothing written, when a title names an item
    already there (`known`: the catalogue as this process holds it; the file's own titles and
    the batch's are read under the lock and compared the same way: case, spaces and a year
    aside) or when the file would pass `limit` items."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another replica may append at the same moment
        try:
            handle.seek(0)
            data = handle.read()
            if data and not data.endswith(b"\n"):
                raise NewItemError("the new-items file ends in a cut line; repair it first")
            present = [_parsed_line(line, n) for n, line in
                       enumerate(data.split(b"\n")[:-1], start=1)]
            if len(present) + len(items) > limit:
                raise NewItemError(f"items: {len(present)} new items are in the catalogue and "
                                   f"{len(items)} more would pass serve.max_new_items={limit}")
            titles = [item.title for item in present]
            added = ItemIndex.build(titles, titles)  # the file's items, then the batch's
            for index, item in enumerate(items):
                if known.names_item(item.title) or added.names_item(item.title):
                    raise NewItemError(f"items[{index}]: an item titled {item.title!r} is in "
                                       "the catalogue already")
                added.add(item.title, item.title)
            handle.write("".join(json.dumps({"title": i.title, "text": i.text}) + "\n"
                                 for i in items).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    return len(present)


def _grown_encoder(encoder: torch.nn.Module, vectors: torch.Tensor) -> None:
    """Give the frozen recommender copy that computes the LLM's user state rows for the new
    items, in place: (N + 1, E) -> (N + M + 1, E), the zero padding row last again."""
    table = encoder.items.embedding
    weight = table.weight.detach()  # (N + 1, E)
    grown = torch.cat([weight[:-1], vectors.to(weight), weight[-1:]])  # (N + M + 1, E)
    padding = grown.shape[0] - 1
    encoder.items.embedding = torch.nn.Embedding.from_pretrained(grown, freeze=True,
                                                                 padding_idx=padding)
    encoder.items.num_items = padding


def add_to_model(trained, items: list[NewItem]) -> list[int]:
    """Grow a loaded checkpoint's catalogue by `items` (their ids returned, in order): the
    item table, the content vectors, the cold items, the user-state recommender, the titles
    and the item index. Needs a model trained with cold.content=map."""
    path = getattr(trained, "cold", None)
    if path is None:
        raise NewItemError("this checkpoint reads no new items: it was trained with "
                           "cold.content=none (train with --set cold.content=map)")
    if not items:
        return []
    from llara.recsys.content_map import feature_matrix

    model = trained.model
    first = model.item_embeddings.shape[0]
    # The index grows too: content scores (which new items a history is near) read its rows.
    path.index = path.index.append([i.title for i in items], [i.title for i in items],
                                   [i.text for i in items])
    device = model.item_embeddings.device
    vectors = path.content_map.vectors(feature_matrix(
        path.index, np.arange(first, first + len(items))))  # (M, E)
    model.item_embeddings = torch.cat([model.item_embeddings, vectors.to(device)])
    if model.content_vectors is not None:
        model.content_vectors = torch.cat([model.content_vectors, vectors.to(device)])
    model.cold_items = torch.cat([model.cold_items,
                                  torch.ones(len(items), dtype=torch.bool, device=device)])
    if model.stand_ins is not None:  # new items are cold, not training's stand-ins
        model.stand_ins = torch.cat([model.stand_ins,
                                     torch.zeros(len(items), dtype=torch.bool, device=device)])
    if model.user_encoder is not None:
        _grown_encoder(model.user_encoder, vectors)
    # The prompt builder holds the same list: prompts write the new items as the others.
    trained.titles.extend(prompt_title(trained, i) for i in items)
    trained.added.extend(items)
    # The item index in one step: a reader never sees the grown catalogue with the old index.
    trained.items = trained.item_index()
    return list(range(first, first + len(items)))


def prompt_title(trained, item: NewItem) -> str:
    """How prompts write a new item (prompt.item_text: the title, with a year, with genres)."""
    return item_text(item.title, item.title, item.text, trained.config.prompt.item_text)


def history_without_new(history: np.ndarray, lengths: np.ndarray,
                        known: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, L), (B,): each history with the items the recommender has no row for (ids >=
    `known`) left out, right-padded with id `known` again; an emptied history keeps one
    padding item (length 1), which the recommender reads as no information."""
    out = np.full_like(history, known)
    new_lengths = np.zeros_like(lengths)
    for row in range(len(history)):
        kept = [i for i in history[row, :lengths[row]].tolist() if i < known]
        out[row, :len(kept)] = kept
        new_lengths[row] = len(kept)
    return out, np.maximum(new_lengths, 1)
