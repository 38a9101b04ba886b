"""Serving a trained checkpoint: request checks and batched ranking (no web or Ray here).

The web layer (serve/) turns JSON into `Recommender.parse` calls, so every bad input becomes a
RequestError naming the field before any model work, and only valid queries reach a batch.
"""

from __future__ import annotations

import difflib
import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llara.common.errors import DataError, LlaraError
from llara.common.paths import absolute_path
from llara.config.io import to_dict
from llara.config.serving import ServingConfig
from llara.data.tables import Samples
from llara.evaluation.generation import generate_answers, parse_answer
from llara.evaluation.scoring import score_candidates
from llara.model.checkpoint import read_run_json
from llara.recsys.retrieval import retrieve


def resolve_items(text: str, titles: list[str]) -> list[int]:
    """'Toy Story, Heat, 17' -> item ids; titles may themselves contain ', ' (longest match)."""
    by_title = {t.lower(): i for i, t in enumerate(titles)}
    parts = [p.strip() for p in text.split(",")]
    items, start = [], 0
    while start < len(parts):
        for stop in range(len(parts), start, -1):
            name = ", ".join(parts[start:stop]).lower()
            if name in by_title:
                items.append(by_title[name])
                start = stop
                break
        else:
            part = parts[start]
            if part.isdigit() and int(part) < len(titles):
                items.append(int(part))
                start += 1
                continue
            close = difflib.get_close_matches(part, titles, n=3)
            raise DataError("--history", f"unknown item '{part}'",
                            expected="a title or item id" + (f"; did you mean {close}?"
                                                              if close else ""))
    return items


MODES = ("score", "generate")


class RequestError(LlaraError):
    """A request the service refuses (HTTP 4xx); `field` names the offending part."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(f"{field}: {message}")
        self.field, self.status = field, status


def check_checkpoint(directory: str | Path, run=None) -> dict:
    """Fail before any replica starts when the checkpoint is missing or damaged; `run` is the
    run config as the driver read it (relative paths in run.json name the driver's files)."""
    from safetensors import safe_open

    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "no such checkpoint folder",
                        expected="a folder written by `llara train` (final/ or best/)")
    payload = read_run_json(directory)
    for name in ("adapter/adapter_model.safetensors", "projector.safetensors"):
        try:
            with safe_open(str(directory / name), "pt") as handle:
                handle.keys()
        except Exception as err:  # missing, truncated or not safetensors at all
            raise DataError(directory / name, f"cannot be read ({err})",
                            expected="safetensors weights written by `llara train`") from None
    inputs = payload.get("config", {}) if run is None else to_dict(run)
    for key in ("data_dir", "rec_checkpoint"):
        where = absolute_path(str(inputs.get(key, "")))
        if not where or not Path(where).exists():
            raise DataError(directory / "run.json", f"its {key} {where!r} is missing",
                            expected="the dataset and recommender the model was trained with")
    return payload


def checkpoint_version(directory: str | Path) -> str:
    """`<folder>@<hash of the trained weights>`: changes whenever the weights do."""
    digest = hashlib.sha256()
    for name in ("adapter/adapter_model.safetensors", "projector.safetensors"):
        digest.update((Path(directory) / name).read_bytes())
    return f"{Path(directory).resolve().name}@{digest.hexdigest()[:12]}"


@dataclass
class Query:
    """One checked request: item ids, the candidates to rank, how many to return."""

    history: list[int]
    candidates: list[int]
    k: int
    mode: str
    origins: list[str] = field(default_factory=list)
    """Per candidate: given (the caller's list), pinned, retrieved or sampled."""
    recommender_ranks: list[int | None] = field(default_factory=list)
    """Per candidate: its 0-based rank in the recommender's ranking (retrieved ones only)."""

    def origin(self, item: int) -> tuple[str, int | None]:
        index = self.candidates.index(item)
        return self.origins[index], self.recommender_ranks[index]


class Recommender:
    """A loaded checkpoint plus the request rules of a ServingConfig."""

    def __init__(self, trained, config: ServingConfig, version: str):
        self.trained, self.config, self.version = trained, config, version
        self.titles: list[str] = trained.titles
        self.num_items = trained.dataset.num_items
        self._by_title = {}
        for item, title in enumerate(self.titles):
            self._by_title.setdefault(title.strip().lower(), item)

    @classmethod
    def load(cls, config: ServingConfig, log=print, run=None) -> "Recommender":
        """`run`: the checkpoint's run config as the driver read it (`read_run_config`)."""
        from llara.inference.trained import load_trained

        check_checkpoint(config.checkpoint, run)
        trained = load_trained(config.checkpoint, config.device, log=log, config=run)
        if config.candidate_source == "recommender":
            trained.recommender()  # load the retriever now: a broken one fails the start
        return cls(trained, config, checkpoint_version(config.checkpoint))

    def item_title(self, item: int) -> str:
        if not 0 <= item < self.num_items:
            raise RequestError("item_id", f"unknown item {item}; ids run from 0 to "
                               f"{self.num_items - 1}", status=404)
        return self.titles[item]

    def resolve(self, value: int | str, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise RequestError(field, f"{value!r} is neither an item id nor a title")
        if isinstance(value, int):
            if not 0 <= value < self.num_items:
                raise RequestError(field, f"unknown item id {value}; ids run from 0 to "
                                   f"{self.num_items - 1}")
            return value
        item = self._by_title.get(value.strip().lower())
        if item is None:
            close = difflib.get_close_matches(value, self.titles, n=3)
            raise RequestError(field, f"unknown item title {value!r}" +
                               (f"; did you mean {close}?" if close else ""))
        return item

    def _items(self, values: list, field: str) -> list[int]:
        return [self.resolve(v, f"{field}[{i}]") for i, v in enumerate(values)]

    def parse(self, history: list, candidates: list | None = None, pin: list | None = None,
              k: int | None = None, mode: str = "score", seed: int | None = None) -> Query:
        """Check one request and settle its candidate list (sampled ones are seeded by the
        history unless `seed` is given, so the same request gets the same answer)."""
        cfg = self.config
        if mode not in MODES:
            raise RequestError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
        if not history:
            raise RequestError("history", "is empty; give at least one item id or title")
        if len(history) > cfg.max_history:
            raise RequestError("history", f"has {len(history)} items; at most "
                               f"{cfg.max_history} are accepted")
        items = self._items(history, "history")
        if candidates is not None and pin:
            raise RequestError("pin", "give either candidates (the full list) or pin "
                               "(items added to sampled ones), not both")
        if candidates is not None:
            if not 2 <= len(candidates) <= cfg.max_candidates:
                raise RequestError("candidates", f"has {len(candidates)} items; give 2 to "
                                   f"{cfg.max_candidates}")
            chosen = self._items(candidates, "candidates")
        else:
            chosen = self._items(pin or [], "pin")
            if len(chosen) > cfg.num_candidates:
                raise RequestError("pin", f"has {len(chosen)} items; at most "
                                   f"{cfg.num_candidates} can be pinned")
        if len(set(chosen)) != len(chosen):
            field = "candidates" if candidates is not None else "pin"
            repeated = sorted({i for i in chosen if chosen.count(i) > 1})
            raise RequestError(field, f"lists item(s) {repeated} more than once")
        if candidates is not None:
            origins, ranks = ["given"] * len(chosen), [None] * len(chosen)
        else:
            origins, ranks = ["pinned"] * len(chosen), [None] * len(chosen)
            added, added_ranks = (self._retrieve(items, chosen) if cfg.candidate_source ==
                                  "recommender" else self._sample(items, chosen, seed))
            chosen = chosen + added
            origins += ["retrieved" if cfg.candidate_source == "recommender" else "sampled"] * \
                len(added)
            ranks += added_ranks
        if len(chosen) < 2:
            raise RequestError("history", "leaves fewer than 2 items to rank; give candidates")
        if k is None:
            k = len(chosen)
        if not 1 <= k <= len(chosen):
            raise RequestError("k", f"{k} is outside 1..{len(chosen)} (the number of "
                               "candidates)")
        return Query(items, chosen, k, mode, origins, ranks)

    def _sample(self, history: list[int], pinned: list[int], seed: int | None
                ) -> tuple[list[int], list[None]]:
        if seed is None:
            seed = zlib.crc32(np.asarray(history, np.int64).tobytes())
        pool = np.setdiff1d(np.arange(self.num_items), np.array(history + pinned, np.int64))
        want = min(self.config.num_candidates - len(pinned), len(pool))
        rng = np.random.default_rng(seed)
        return [int(i) for i in rng.choice(pool, size=want, replace=False)], [None] * want

    def _retrieve(self, history: list[int], pinned: list[int]
                  ) -> tuple[list[int], list[int]]:
        """The recommender's best items outside the history (pinned ones skipped, so the
        list still holds num_candidates), with their ranks in its ranking."""
        width = self.trained.dataset.config.max_history
        recent = history[-width:]
        # The models read only the recent items; older ones are still never recommended, so
        # fetch enough to drop them (and the pinned ones) and keep num_candidates.
        older = len(set(history) - set(recent))
        want = min(self.config.num_candidates + len(pinned) + older,
                   self.num_items - len(set(recent)))
        sample = Samples.from_histories([recent], [0], width, self.num_items)
        top = retrieve(self.trained.recommender(), sample, want,
                       device=str(self.trained.model.item_embeddings.device))
        excluded = set(pinned) | set(history)
        kept = [(int(i), rank) for rank, i in enumerate(top.items[0].tolist())
                if i not in excluded][:self.config.num_candidates - len(pinned)]
        return [i for i, _ in kept], [r for _, r in kept]

    def _samples(self, queries: list[Query]) -> Samples:
        # No true next item at serving time; the first candidate stands in (rank unused).
        return Samples.from_histories([q.history for q in queries],
                                      [q.candidates[0] for q in queries],
                                      self.trained.dataset.config.max_history, self.num_items)

    @staticmethod
    def _same_width(queries: list[Query]) -> list[list[int]]:
        """Indices of queries with as many candidates: each group shares one forward pass."""
        groups: dict[int, list[int]] = {}
        for index, query in enumerate(queries):
            groups.setdefault(len(query.candidates), []).append(index)
        return list(groups.values())

    def rank(self, queries: list[Query]) -> list[list[tuple[int, float]]]:
        """Score mode for a batch of queries."""
        results: list[list[tuple[int, float]] | None] = [None] * len(queries)
        for indices in self._same_width(queries):
            group = [queries[i] for i in indices]
            candidates = np.array([q.candidates for q in group])  # (B, C)
            with self.trained.autocast():
                ranking = score_candidates(self.trained.model, self.trained.builder,
                                           self._samples(group), candidates,
                                           self.trained.template, batch_size=len(group),
                                           hybrid=self.trained.hybrid)
            for row, index in enumerate(indices):
                scores = ranking.scores[row]
                order = np.argsort(-scores, kind="stable")[:group[row].k]
                results[index] = [(int(candidates[row, i]), float(scores[i])) for i in order]
        return results

    def generate(self, queries: list[Query]) -> list[tuple[str, int | None]]:
        """Generate mode for a batch: the answer text and the candidate it names, if any."""
        results: list[tuple[str, int | None] | None] = [None] * len(queries)
        for indices in self._same_width(queries):
            group = [queries[i] for i in indices]
            candidates = np.array([q.candidates for q in group])
            with self.trained.autocast():
                answers = generate_answers(self.trained.model, self.trained.builder,
                                           self._samples(group), candidates,
                                           self.trained.template, batch_size=len(group),
                                           max_new_tokens=self.config.max_new_tokens,
                                           hybrid=self.trained.hybrid)
            for row, index in enumerate(indices):
                names = [self.titles[i] for i in candidates[row]]
                picked = parse_answer(answers[row], names)
                results[index] = (answers[row].strip(),
                                  None if picked is None else int(candidates[row, picked]))
        return results
