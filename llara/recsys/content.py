"""The content baseline: rank candidates by how alike their text is to the user's history.

Each item is a TF-IDF vector over three kinds of token, prefixed so that they never meet:
the words of its title (`title:star`; lower-cased, split on non-word characters, without a
small English stop-word list and 1-character tokens), the words of its `extra` text
(`text:comedy`; MovieLens keeps the genres there; year and date parts are left to the decade),
and its release decade (`decade:1990s`, from the raw title's "(1995)" or the extra text).
Tokens held by fewer than `min_df` items are dropped: a word of one item links it to no other.
The idf is smooth, log((1 + n) / (1 + df)) + 1, and each item's vector has unit L2 norm;
vectors are stored as CSR arrays (indptr, indices, data), never as an items x vocabulary
matrix. A user's profile is the recency-weighted sum of the history's vectors, and a
candidate's score the cosine of the profile and its vector (0 for an empty one).

It reads no interactions: a new item (none of whose interactions were trained on) is scored
from its text like any other.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np

from llara.common.errors import DataError
from llara.data.prepare import PreparedDataset
from llara.data.tables import read_items
from llara.data.titles import item_facts

CONTENT_FORMAT = 1
"""Version of `to_json`'s payload."""
STOP_WORDS = frozenset(
    "a an and are as at be but by for from has have he her his in into is it its of on or "
    "she that the their they this to was were what when where which who will with you your "
    "not no".split())
DEFAULT_DECAY = 0.8
"""Weight of a history item one step older than the next (the most recent weighs 1)."""
DEFAULT_MIN_DF = 1
"""Tokens held by fewer items are dropped; at 1 every token counts, and a title word of one
item still weighs on its vector's norm."""
_SPLIT = re.compile(r"[^\w'-]+")  # text words keep inner hyphens and apostrophes: sci-fi
_YEAR_KEYS = ("release_year", "year")


def _words(text: str, split: re.Pattern = re.compile(r"\W+")) -> list[str]:
    words = (w.strip("'-") for w in split.split(text.lower()))
    return [w for w in words if len(w) > 1 and w not in STOP_WORDS]


def item_tokens(title: str, raw_title: str, extra: str | None) -> list[str]:
    """An item's tokens, repeats kept: `title:` words, `text:` words, one `decade:`."""
    tokens = [f"title:{w}" for w in _words(title or "")]
    for part in (p.strip() for p in (extra or "").split(";") if p.strip()):
        key, _, value = part.partition(":") if ":" in part else ("", "", part)
        key = key.strip().lower()
        if key in _YEAR_KEYS or (not key and re.fullmatch(r"[\d\w-]*\d{4}", value.strip())):
            continue  # a year or a release date: the decade token holds it
        tokens += [f"text:{w}" for w in _words(value, _SPLIT) if not w.isdigit()]
    year, _ = item_facts(raw_title or "", extra or "")
    if year:
        tokens.append(f"decade:{int(year) // 10 * 10}s")
    return tokens


def gather_rows(indptr: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position): for K items, every stored entry of their rows, `owner` the index in
    `items` (M,) and `position` the entry's place in indices/data (M,)."""
    starts = indptr[items]  # (K,)
    counts = indptr[items + 1] - starts  # (K,)
    owner = np.repeat(np.arange(len(items)), counts)  # (M,)
    first = np.repeat(np.cumsum(counts) - counts, counts)  # (M,) owner's first entry in M
    return owner, np.arange(len(owner)) - first + np.repeat(starts, counts)


class ContentIndex:
    """TF-IDF vectors of a catalogue: `vocabulary` (V tokens) and `idf` (V,) fitted on the
    items it was built from; rows as CSR, indptr (n + 1,), indices (nnz,), data (nnz,)."""

    def __init__(self, vocabulary: list[str], idf: np.ndarray, indptr: np.ndarray,
                 indices: np.ndarray, data: np.ndarray, min_df: int = DEFAULT_MIN_DF):
        self.vocabulary = list(vocabulary)
        self.position = {token: i for i, token in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, np.float64)  # (V,)
        self.indptr = np.asarray(indptr, np.int64)  # (n + 1,)
        self.indices = np.asarray(indices, np.int32)  # (nnz,)
        self.data = np.asarray(data, np.float32)  # (nnz,)
        self.min_df = int(min_df)
        if len(self.idf) != len(self.vocabulary) or self.indptr.ndim != 1 or \
                len(self.indptr) < 1 or self.indptr[0] != 0 or \
                self.indptr[-1] != len(self.indices) or len(self.indices) != len(self.data) \
                or np.any(np.diff(self.indptr) < 0) or \
                (len(self.indices) and (self.indices.min() < 0 or
                                        self.indices.max() >= len(self.vocabulary))):
            raise ValueError("inconsistent content index: vocabulary, idf and the CSR arrays "
                             f"disagree ({len(self.vocabulary)} tokens, {len(self.idf)} idf, "
                             f"indptr {self.indptr.shape}, {len(self.indices)} indices, "
                             f"{len(self.data)} values)")

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def num_tokens(self) -> int:
        return len(self.vocabulary)

    @classmethod
    def build(cls, titles: list[str], raw_titles: list[str], extras: list[str | None],
              min_df: int = DEFAULT_MIN_DF) -> ContentIndex:
        """Fit the vocabulary and idf on these items and vectorise them (item i: row i)."""
        if not len(titles) == len(raw_titles) == len(extras):
            raise ValueError(f"titles, raw_titles and extras must hold one entry per item; got "
                             f"{len(titles)}, {len(raw_titles)} and {len(extras)}")
        if min_df < 1:
            raise ValueError(f"min_df must be at least 1; got {min_df}")
        counted = [Counter(item_tokens(*item)) for item in zip(titles, raw_titles, extras)]
        df = Counter(token for tokens in counted for token in tokens)
        vocabulary = sorted(token for token, count in df.items() if count >= min_df)
        n = len(titles)
        idf = np.log((1.0 + n) / (1.0 + np.array([df[t] for t in vocabulary], np.float64))) + 1
        index = cls(vocabulary, idf, np.zeros(1, np.int64), np.zeros(0, np.int32),
                    np.zeros(0, np.float32), min_df)
        return index._with_rows(counted)

    @classmethod
    def from_dataset(cls, dataset: PreparedDataset, min_df: int = DEFAULT_MIN_DF) -> ContentIndex:
        """The index of a prepared dataset's items (items.parquet: title, raw title, extra)."""
        extras = read_items(dataset.directory / "items.parquet")["extra"].to_pylist()
        return cls.build(dataset.titles(), dataset.raw_titles(), extras, min_df)

    def _rows(self, counted: list[Counter]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sizes (k,), indices (m,), values (m,)): CSR rows of k items' token counts, the
        tokens outside the vocabulary dropped, each row's indices ascending."""
        owner, indices, counts = [], [], []
        for item, tokens in enumerate(counted):
            for token, count in tokens.items():
                if token in self.position:
                    owner.append(item)
                    indices.append(self.position[token])
                    counts.append(count)
        owner, indices = np.array(owner, np.int64), np.array(indices, np.int64)  # (m,)
        order = np.lexsort((indices, owner))
        owner, indices = owner[order], indices[order]
        values = np.array(counts, np.float64)[order] * self.idf[indices]  # (m,)
        norms = np.sqrt(np.bincount(owner, values ** 2, minlength=len(counted)))  # (k,)
        values = values / np.where(norms > 0, norms, 1.0)[owner]
        return (np.bincount(owner, minlength=len(counted)), indices.astype(np.int32),
                values.astype(np.float32))

    def _with_rows(self, counted: list[Counter]) -> ContentIndex:
        sizes, indices, values = self._rows(counted)
        indptr = np.concatenate([self.indptr, self.indptr[-1] + np.cumsum(sizes)])
        return ContentIndex(self.vocabulary, self.idf, indptr,
                            np.concatenate([self.indices, indices]),
                            np.concatenate([self.data, values]), self.min_df)

    def vectorize(self, title: str, raw_title: str, extra: str | None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """(indices (k,) int32, values (k,) float32) of an item not in the index, with the
        fitted vocabulary and idf (tokens outside the vocabulary are dropped)."""
        _, indices, values = self._rows([Counter(item_tokens(title, raw_title, extra))])
        return indices, values

    def row(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices (k,), values (k,)) of an indexed item."""
        start, end = self.indptr[item], self.indptr[item + 1]
        return self.indices[start:end], self.data[start:end]

    def append(self, titles: list[str], raw_titles: list[str],
               extras: list[str | None]) -> ContentIndex:
        """A new index with these items' rows after the existing ones (ids len(self) on),
        vectorised with the fitted vocabulary and idf."""
        if not len(titles) == len(raw_titles) == len(extras):
            raise ValueError(f"titles, raw_titles and extras must hold one entry per item; got "
                             f"{len(titles)}, {len(raw_titles)} and {len(extras)}")
        return self._with_rows([Counter(item_tokens(*item))
                                for item in zip(titles, raw_titles, extras)])

    def dense(self, items) -> np.ndarray:
        """(n, V) float32 rows of a few items (e.g. to fit a linear map to embeddings)."""
        items = self.check_items(items, "items").reshape(-1)  # (n,)
        out = np.zeros((len(items), self.num_tokens), np.float32)
        owner, position = gather_rows(self.indptr, items)
        out[owner, self.indices[position]] = self.data[position]
        return out

    def check_items(self, items, name: str) -> np.ndarray:
        """`items` as int64, or a ValueError naming `name` where one is outside 0..n-1."""
        items = np.asarray(items)
        if items.size and not np.issubdtype(items.dtype, np.integer):
            raise ValueError(f"{name} must hold integer item ids; got dtype {items.dtype}")
        items = items.astype(np.int64)
        bad = (items < 0) | (items >= len(self))
        if bad.any():
            raise ValueError(f"{name} holds item id {int(items[bad][0])}, outside the content "
                             f"index's {len(self)} items (0..{len(self) - 1})")
        return items

    def to_json(self) -> str:
        """Vocabulary, idf, settings and rows as plain JSON (from_json reads it back)."""
        return json.dumps({"format": CONTENT_FORMAT, "min_df": self.min_df,
                           "vocabulary": self.vocabulary, "idf": self.idf.tolist(),
                           "indptr": self.indptr.tolist(), "indices": self.indices.tolist(),
                           "data": self.data.tolist()})

    @classmethod
    def from_json(cls, text: str, source: str = "content index") -> ContentIndex:
        """The index `to_json` wrote; a DataError naming `source` for anything else."""
        try:
            payload = json.loads(text)
            if payload.get("format") != CONTENT_FORMAT:
                raise ValueError(f"format {payload.get('format')!r}, not {CONTENT_FORMAT}")
            return cls(payload["vocabulary"], payload["idf"], payload["indptr"],
                       payload["indices"], payload["data"], payload["min_df"])
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise DataError(source, f"unreadable content index ({err})",
                            expected="the JSON of ContentIndex.to_json") from None


def content_scores(index: ContentIndex, histories: np.ndarray, lengths: np.ndarray,
                   candidates: np.ndarray, decay: float = DEFAULT_DECAY,
                   batch_rows: int | None = None) -> np.ndarray:
    """(N, C) cosine of each row's profile and each candidate's vector.

    histories (N, L) right-padded (entries at or after a row's length are ignored), lengths
    (N,), candidates (N, C): item ids of `index`. The profile weighs the most recent item 1
    and each older one `decay` times the next. Rows go in batches whose dense profiles hold
    about 4M floats (`batch_rows` sets the batch)."""
    histories, lengths = np.asarray(histories), np.asarray(lengths)
    candidates = np.asarray(candidates)
    if histories.ndim != 2 or candidates.ndim != 2:
        raise ValueError(f"histories and candidates must be (rows, width) matrices; got shapes "
                         f"{histories.shape} and {candidates.shape}")
    if lengths.shape != (len(histories),) or len(candidates) != len(histories):
        raise ValueError(f"histories {histories.shape}, lengths {lengths.shape} and candidates "
                         f"{candidates.shape} must have the same number of rows")
    if len(lengths) and (lengths.min() < 0 or lengths.max() > histories.shape[1]):
        raise ValueError(f"lengths must lie in 0..{histories.shape[1]} (the history width); "
                         f"got {int(lengths.min())}..{int(lengths.max())}")
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1]; got {decay}")
    candidates = index.check_items(candidates, "candidates")
    inside = np.arange(histories.shape[1])[None, :] < lengths[:, None]  # (N, L)
    index.check_items(histories[inside], "histories")
    age = lengths[:, None] - 1 - np.arange(histories.shape[1])[None, :]  # (N, L) 0: latest
    weights = np.where(inside, float(decay) ** np.maximum(age, 0), 0.0)  # (N, L)
    vocab = max(index.num_tokens, 1)
    step = batch_rows or max(1, (1 << 22) // vocab)
    out = np.zeros(candidates.shape, np.float64)  # (N, C)
    for start in range(0, len(histories), step):
        rows = slice(start, start + step)
        kept = inside[rows]  # (B, L)
        items = histories[rows][kept].astype(np.int64)  # (K,) history entries, row-major
        owner_row = np.nonzero(kept)[0]  # (K,) row in the batch of each entry
        owner, position = gather_rows(index.indptr, items)  # (M,)
        batch = kept.shape[0]
        profile = np.bincount(owner_row[owner] * vocab + index.indices[position],
                              weights=weights[rows][kept][owner] * index.data[position],
                              minlength=batch * vocab).reshape(batch, vocab)  # (B, V)
        norms = np.linalg.norm(profile, axis=1)  # (B,)
        chosen = candidates[rows].reshape(-1)  # (B * C,)
        owner, position = gather_rows(index.indptr, chosen)  # (M,)
        width = candidates.shape[1]
        dots = np.bincount(owner, weights=index.data[position] * profile[
            owner // width, index.indices[position]], minlength=len(chosen))  # (B * C,)
        out[rows] = dots.reshape(batch, width) / np.where(norms > 0, norms, 1.0)[:, None]
    return out
