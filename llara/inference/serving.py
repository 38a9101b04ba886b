"""Serving a trained checkpoint: request checks and batched ranking (no web or Ray here).

The web layer (serve/) turns JSON into `Recommender.parse` calls, so every bad input becomes a
RequestError naming the field before any model work, and only valid queries reach a batch.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from llara.common.errors import ConfigError, DataError
from llara.common.paths import absolute_path
from llara.config.io import to_dict
from llara.config.serving import ServingConfig, fusion_weight
from llara.data.items import ItemIndex, ItemLookupError
from llara.data.tables import Samples
from llara.evaluation.fusion import fused_scores, without_cold
from llara.evaluation.generation import generate_answers, parse_answer
from llara.evaluation.scoring import score_candidates
from llara.inference.new_items import (NewItemError, add_to_model, append_new_items,
                                      history_without_new, new_item,
                                      read_new_items)
from llara.inference.requests import MODES, Query, RequestError
from llara.model.checkpoint import read_run_json, run_config_of
from llara.model.llara import weight_files
from llara.model.manifest import read_manifest
from llara.prompts.templates import ANSWER_END
from llara.recsys.ranking import candidate_scores
from llara.recsys.retrieval import retrieve


def check_checkpoint(directory: str | Path, run=None) -> dict:
    """Fail before any replica starts when the checkpoint is missing or damaged; `run` is the
    run config as the driver read it (relative paths in run.json name the driver's files)."""
    from safetensors import safe_open

    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "no such checkpoint folder",
                        expected="a folder written by `llara train` (final/ or best/)")
    payload = read_run_json(directory)
    for name in weight_files(run or run_config_of(payload)):
        try:
            with safe_open(str(directory / name), "pt") as handle:  # checks its coverage
                handle.keys()
        except Exception as err:  # missing, truncated or not safetensors at all
            raise DataError(directory / name, f"cannot be read ({err})",
                            expected="safetensors weights written by `llara train`") from None
    inputs = payload.get("config", {}) if run is None else to_dict(run)
    for key in ("data_dir", "rec_checkpoint", "fusion_rec_checkpoint"):
        if key == "fusion_rec_checkpoint" and not inputs.get(key):
            continue  # fuses with rec_checkpoint
        where = absolute_path(str(inputs.get(key, "")))
        if not where or not Path(where).exists():
            raise DataError(directory / "run.json", f"its {key} {where!r} is missing",
                            expected="the dataset and recommender the model was trained with")
    return payload


def checkpoint_version(directory: str | Path) -> str:
    """`<folder>@<hash of the trained weights>` (adapter, projector, and the slot head where
    the run has one): changes whenever any of them does."""
    digest = hashlib.sha256()
    for name in weight_files(run_config_of(read_run_json(directory))):
        digest.update((Path(directory) / name).read_bytes())
    manifest = read_manifest(directory)  # an export goes by its name, wherever it was copied
    name = manifest.get("name") if manifest else None
    return f"{name or Path(directory).resolve().name}@{digest.hexdigest()[:12]}"


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def known_item_scores(recommender, samples: Samples, candidates: np.ndarray, known: int,
                      device: str) -> np.ndarray:
    """(N, C) the recommender's scores of the candidates, where it has a row for them: new
    items (ids >= `known`) leave the histories it reads and score 0 (without_cold then
    makes their score neutral)."""
    if samples.history.max(initial=0) <= known and candidates.max(initial=0) < known:
        return candidate_scores(recommender, samples, candidates, device=device)
    history, lengths = history_without_new(samples.history, samples.len_history, known)
    rows = Samples(samples.sample_id, samples.user, history, lengths, samples.next,
                   samples.history_ratings, samples.next_rating)
    scores = candidate_scores(recommender, rows, np.where(candidates < known, candidates, 0),
                              device=device)
    return np.where(candidates < known, scores, 0.0)


class Recommender:
    """A loaded checkpoint plus the request rules of a ServingConfig.

    Every request the schema admits fits the model: at start-up max_candidates is lowered to
    what prompt.max_length holds with the catalogue's longest titles (and, for the letter head,
    to its labels), and each request's prompt is measured when it is parsed."""

    def __init__(self, trained, config: ServingConfig, version: str, log=print):
        self.trained, self.version = trained, version
        self.titles: list[str] = trained.titles  # grows with new items
        self.fusion_weight = fusion_weight(config.fusion, trained.fusion_weight)
        # A new candidate's recommender score in the fused ranking (without_cold): the
        # checkpoint's level wherever an LLM term is fused, the warm mean for the
        # recommender's own ranking.
        self.cold_level = trained.cold_level if math.isfinite(self.fusion_weight) else None
        # Models trained on both prompt kinds add their text-only prompts' scores (a second
        # pass per list) wherever the LLM ranks.
        self.text_weight = trained.text_weight if math.isfinite(self.fusion_weight) else 0.0
        # New items change the model's tables: one request at a time touches them.
        self.lock = threading.RLock()
        self.config, self.read_to, self.log = config, 0, log  # read_to: bytes of the file read
        self.refresh()  # a replica that starts later reads every new item first
        self.config = _fitting(config, trained, log)

    @property
    def num_items(self) -> int:
        """The catalogue's size, new items included."""
        return self.trained.num_items

    @property
    def items(self) -> ItemIndex:
        return self.trained.items

    def refresh(self) -> None:
        """Read the new items the file holds beyond those this replica has (serve.new_items):
        called before each request, so every replica answers with the whole catalogue."""
        path = self.config.new_items
        if path is None or _size(path) <= self.read_to:  # the common case: no lock, one stat
            return
        with self.lock:
            try:
                fresh, self.read_to = read_new_items(path, self.read_to)
            except NewItemError as err:
                raise RequestError("items", f"the service's new items cannot be read: {err}",
                                   status=503) from None
            if fresh:
                add_to_model(self.trained, fresh)
                self._refit()

    def _refit(self) -> None:
        """max_candidates measured again with the new titles (a longer title fits fewer
        candidates); where even num_candidates no longer fits, each request is still
        measured when it is parsed and refused with the reason."""
        try:
            self.config = _fitting(self.config, self.trained, self.log)
        except ConfigError as err:
            self.log(f"warning: {err}")

    def add_items(self, values: list) -> list[int]:
        """Add new items (JSON objects with a title and an optional text) to the catalogue,
        for this replica at once and for the others before their next answer; their ids."""
        if self.config.new_items is None:
            raise RequestError("items", "this service takes no new items: start it with "
                               "--new-items FILE", status=409)
        if self.trained.cold is None:
            raise RequestError("items", "this checkpoint reads no new items: it was trained "
                               "with cold.content=none (train with --set cold.content=map)",
                               status=409)
        if not isinstance(values, list) or not values:
            raise RequestError("items", "give a non-empty list of new items")
        try:
            parsed = [new_item(v, f"items[{i}]") for i, v in enumerate(values)]
            with self.lock:
                self.refresh()
                start = append_new_items(self.config.new_items, parsed, self.items,
                                         self.config.max_new_items)
                self.refresh()
        except NewItemError as err:
            raise RequestError("items", str(err).removeprefix("items: ")) from None
        first = self.trained.dataset.num_items + start  # ids follow the file's order
        return list(range(first, first + len(parsed)))

    @classmethod
    def load(cls, config: ServingConfig, log=print, run=None) -> "Recommender":
        """`run`: the checkpoint's run config as the driver read it (`checked_run_config`).
        A replica checks the inputs' digests again as it starts: autoscaling and restarts
        start replicas long after the driver checked."""
        from llara.inference.trained import load_trained
        from llara.training.inputs import check_recorded_inputs, checked_run_config

        if run is None:
            run = checked_run_config(config.checkpoint, log, config.inputs)
        payload = check_checkpoint(config.checkpoint, run)
        if "inputs" in payload:
            check_recorded_inputs(run, payload["inputs"], Path(config.checkpoint) / "run.json",
                                  payload.get("trained_inputs"))
        trained = load_trained(config.checkpoint, config.device, log=log, config=run)
        trained.recommender()  # fusion and retrieval: a broken recommender fails the start
        return cls(trained, config, checkpoint_version(config.checkpoint), log)

    def item_title(self, item: int) -> str:
        self.refresh()
        if not 0 <= item < self.num_items:
            raise RequestError("item_id", f"unknown item {item}; ids run from 0 to "
                               f"{self.num_items - 1}", status=404)
        return self.titles[item]

    def resolve(self, value: int | str, field: str) -> int:
        """An item id or title (llara.data.items), or a RequestError naming `field`."""
        try:
            return self.items.resolve(value)
        except ItemLookupError as err:
            raise RequestError(field, str(err)) from None

    def resolve_text(self, text: str, field: str = "text") -> list[int]:
        self.refresh()
        return resolve_text(self.items, text, field)

    def _items(self, values: list, field: str) -> list[int]:
        return [self.resolve(v, f"{field}[{i}]") for i, v in enumerate(values)]

    def parse(self, history: list, candidates: list | None = None, pin: list | None = None,
              k: int | None = None, mode: str = "score", seed: int | None = None) -> Query:
        """Check one request and settle its candidate list (sampled ones are seeded by the
        history unless `seed` is given, so the same request gets the same answer)."""
        self.refresh()
        with self.lock:
            return self._parse(history, candidates, pin, k, mode, seed)

    def _parse(self, history: list, candidates: list | None, pin: list | None, k: int | None,
               mode: str, seed: int | None) -> Query:
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
            known = self.trained.dataset.num_items
            origins += [("new" if item >= known else "retrieved")
                        if cfg.candidate_source == "recommender" else "sampled"
                        for item in added]
            ranks += added_ranks
        if len(chosen) < 2:
            raise RequestError("history", "leaves fewer than 2 items outside it to rank; "
                               "give candidates")
        if k is None:
            k = len(chosen)
        if not 1 <= k <= len(chosen):
            raise RequestError("k", f"{k} is outside 1..{len(chosen)} (the number of "
                               "candidates)")
        query = Query(items, chosen, k, mode, origins, ranks)
        self._check_length(query)
        return query

    def _check_length(self, query: Query) -> None:
        """The query's prompt (with its longest answer, for title scoring) fits
        prompt.max_length, measured here rather than inside a batched forward pass."""
        tokens = prompt_tokens(self.trained, [query.history], [query.candidates])
        limit = self.trained.config.prompt.max_length
        if tokens > limit:
            field = "candidates" if query.origins[0] == "given" else "history"
            raise RequestError(field, f"makes a prompt of {tokens} tokens, above the model's "
                               f"limit of {limit} (prompt.max_length); give fewer or shorter "
                               "candidates")

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
        """The recommender's best items outside the history and the pins (so the list still
        holds num_candidates where the catalogue allows), with their 0-based ranks among the
        items outside the history and the pins."""
        width = self.trained.dataset.config.max_history
        recent = history[-width:]
        known = self.trained.dataset.num_items  # the recommender's catalogue: no new items
        readable = [i for i in recent if i < known]
        # The models read only the recent items; older ones are still never recommended, so
        # fetch enough to drop them (and the pinned ones) and keep num_candidates.
        older = len(set(history) - set(recent))
        want = min(self.config.num_candidates + len(pinned) + older, known - len(set(readable)))
        excluded = set(pinned) | set(history)
        room = max(0, self.config.num_candidates - len(pinned))
        new = self._nearest_new(recent, excluded)[:room]
        kept: list[int] = []
        if want > 0:
            sample = Samples.from_histories([readable], [0], width, known)
            sample.len_history = np.maximum(sample.len_history, 1)  # only new items: no signal
            top = retrieve(self.trained.recommender(), sample, want,
                           device=str(self.trained.model.item_embeddings.device))
            kept = [int(i) for i in top.items[0].tolist()
                    if i not in excluded][:room - len(new)]
        return kept + new, list(range(len(kept))) + [None] * len(new)

    def _nearest_new(self, recent: list[int], excluded: set[int]) -> list[int]:
        """Up to serve.new_item_candidates new items (fewer than num_candidates), the nearest
        in content to the history (llara.recsys.content.content_scores), outside `excluded`;
        none that shares no content with it."""
        added = [i for i in range(self.trained.dataset.num_items, self.num_items)
                 if i not in excluded]
        count = min(self.config.new_item_candidates, self.config.num_candidates - 1,
                    len(added))
        if count == 0 or self.trained.cold is None:
            return []
        from llara.recsys.content import content_scores

        history = np.asarray([recent], np.int64)
        scores = content_scores(self.trained.cold.index, history, np.array([len(recent)]),
                                np.asarray([added], np.int64))[0]
        order = np.argsort(-scores, kind="stable")[:count]
        return [added[i] for i in order if scores[i] > 0]

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

    def rank(self, queries: list[Query]) -> list[list[tuple[int, float]] | Exception]:
        """Score mode for a batch of queries: per query its best k (item, score), or the
        exception that query alone raised (the others still get their answers)."""
        with self.lock:
            return _each_alone(self._rank, queries)

    def _rank(self, queries: list[Query]) -> list[list[tuple[int, float]]]:
        results: list[list[tuple[int, float]] | None] = [None] * len(queries)
        recommender = self.trained.recommender()
        device = str(self.trained.model.item_embeddings.device)
        for indices in self._same_width(queries):
            group = [queries[i] for i in indices]
            candidates = np.array([q.candidates for q in group])  # (B, C)
            samples = self._samples(group)
            with self.trained.autocast():
                ranking = score_candidates(self.trained.model, self.trained.builder,
                                           samples, candidates, self.trained.template,
                                           batch_size=len(group), hybrid=self.trained.hybrid)
                text = score_candidates(self.trained.model, self.trained.builder, samples,
                                        candidates, self.trained.template,
                                        batch_size=len(group), hybrid=False).scores \
                    if self.text_weight else None  # (B, C)
            rec = without_cold(known_item_scores(recommender, samples, candidates,
                                                 self.trained.dataset.num_items, device),
                               candidates, self.trained.model.cold_mask(), self.cold_level) \
                if self.fusion_weight else None
            scores = fused_scores(ranking.scores, rec, self.fusion_weight, text,
                                  self.text_weight)  # (B, C)
            for row, index in enumerate(indices):
                order = np.argsort(-scores[row], kind="stable")[:group[row].k]
                results[index] = [(int(candidates[row, i]), float(scores[row, i]))
                                  for i in order]
        return results

    def generate(self, queries: list[Query]) -> list[tuple[str, int | None] | Exception]:
        """Generate mode for a batch: the answer text and the candidate it names, if any (or
        the exception that query alone raised)."""
        with self.lock:
            return _each_alone(self._generate, queries)

    def _generate(self, queries: list[Query]) -> list[tuple[str, int | None]]:
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
                picked = parse_answer(answers[row], names, self.trained.letters)
                results[index] = (answers[row].strip(),
                                  None if picked is None else int(candidates[row, picked]))
        return results


def resolve_text(items: ItemIndex, text: str, field: str = "text") -> list[int]:
    """A typed list ('Star Wars (1977), 180' or a JSON list), as `llara recommend` takes it,
    or a RequestError naming `field`."""
    try:
        return items.parse(text)
    except ItemLookupError as err:
        raise RequestError(field, str(err)) from None


def _each_alone(run, queries: list) -> list:
    """run(queries) for the batch; if the batch fails, each query on its own, so a failure
    is returned for the query that caused it and the others keep their answers."""
    try:
        return run(queries)
    except Exception as batch_error:  # noqa: BLE001 - attributed to its query below
        if len(queries) == 1:
            return [batch_error]
    results = []
    for query in queries:
        try:
            results += run([query])
        except Exception as error:  # noqa: BLE001 - the caller answers it for this query
            results.append(error)
    return results


def prompt_tokens(trained, histories: list[list[int]], candidate_lists: list[list[int]]) -> int:
    """The longest prompt (plus its longest answer, for title scoring) the lists make."""
    width = trained.dataset.config.max_history
    samples = Samples.from_histories(histories, [c[0] for c in candidate_lists], width,
                                     trained.dataset.num_items)
    candidates = np.array(candidate_lists)
    builder = replace(trained.builder, max_length=10**9)  # measure, never refuse
    prompts = builder.build(samples, candidates, range(len(samples)), trained.template,
                            trained.hybrid, False)
    longest = 0
    for prompt, row in zip(prompts, candidate_lists):
        answer = max((len(builder.tokenizer(" " + trained.titles[i] + ANSWER_END,
                                            add_special_tokens=False)["input_ids"])
                      for i in row), default=0) if trained.config.scoring.head == "title" else 0
        longest = max(longest, len(prompt.input_ids) + answer)
    return longest


def _fitting(config: ServingConfig, trained, log) -> ServingConfig:
    """`config` with max_candidates lowered to what every request can use: lists of the
    catalogue's longest titles after the longest history still fit prompt.max_length (and
    the letter head's labels). A num_candidates that cannot fit is refused."""
    lengths = [len(ids) for ids in trained.builder.tokenizer(
        [" " + t for t in trained.titles], add_special_tokens=False)["input_ids"]]
    longest = int(np.argmax(lengths))
    history = [longest] * trained.dataset.config.max_history

    def fits(count: int) -> bool:
        return prompt_tokens(trained, [history], [[longest] * count]) <= \
            trained.config.prompt.max_length

    most = config.max_candidates
    if trained.letters:
        most = min(most, len(trained.model.head.label_ids))
    if not fits(config.num_candidates) or most < config.num_candidates:
        raise ConfigError(f"invalid 'serve.num_candidates': {config.num_candidates} candidates "
                          f"with the longest titles exceed the model's prompt.max_length="
                          f"{trained.config.prompt.max_length} (or the letter labels); lower "
                          "serve.num_candidates")
    low, high = config.num_candidates, most  # fits(low) holds
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    if low < config.max_candidates:
        log(f"serve.max_candidates lowered from {config.max_candidates} to {low}: longer "
            f"candidate lists of the longest titles would exceed prompt.max_length="
            f"{trained.config.prompt.max_length}")
        config = replace(config, max_candidates=low)
    return config
