"""Tokenised prompt shards: every sample's hybrid and text-only prompt, ready for training.

A shard row is a pure function of (sample, seeds, epoch, tokenizer, recommender): candidates
come from `sample_candidates` (keyed by sample id, and by the epoch in training, as the local
loop draws them) or, with candidates.source=recommender, from the frozen recommender's top-N,
the template from (shards.seed, epoch, sample id). Training shards hold one set of files per
epoch (train-e<epoch>-<n>.parquet), so every epoch trains on fresh negatives, in the epoch's
shuffled order (`training_order`): prepared tables keep each user's rows together, so an
unshuffled prefix (shards.limit, train.max_train_samples) would hold a handful of users. Shard
files are byte-identical across rebuilds whatever the parallelism, and workers only collate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from llara.common.errors import DataError
from llara.config.run import FinetuneConfig
from llara.data.candidates import sample_candidates
from llara.data.tables import Samples, samples_from_table
from llara.prompts.builder import PromptBuilder
from llara.prompts.templates import templates_for
from llara.prompts.tokenize import TokenizedPrompt
from llara.recsys.retrieval import training_lists
from llara.training.shard_key import changed_keys

SHARD_FORMAT = "llara-shards/7"
"""5: training rows in training_order, not table order; 6: hard-negative training rows only
where retrieval found the answer; 7: no prior column."""
SHARD_FILES = ("manifest.json", "train-*.parquet", "val-*.parquet", "test-*.parquet")
"""What a shard folder is made of, and all that rebuilding it may replace."""
_ids = pa.list_(pa.int32())
SHARD_SCHEMA = pa.schema([
    ("sample_id", pa.int64()), ("split", pa.string()), ("template", pa.int16()),
    ("next", pa.int64()), ("candidates", _ids), ("target", pa.int16()),
    ("input_ids", _ids), ("label_mask", pa.list_(pa.bool_())),
    ("slot_positions", _ids), ("slot_items", _ids), ("candidate_positions", _ids),
    ("text_input_ids", _ids), ("text_label_mask", pa.list_(pa.bool_())),
    ("text_candidate_positions", _ids),
])


@dataclass
class ShardSpec:
    """What a tokenising worker needs; plain values so it travels to any process."""

    llm: str
    data_dir: str
    split: str
    num_items: int
    num_candidates: int
    candidate_seed: int
    domain: str
    template_file: str | None
    max_length: int
    min_history: int
    seed: int
    candidate_source: str = "random"
    """Training lists: random or recommender (the retriever's top-N as hard negatives)."""
    rec_checkpoint: str | None = None
    retrieve: int | None = None
    scoring: str = "title"
    """The ranking head the prompts are for (scoring.head)."""
    user_token: bool = False
    """Whether prompts hold the user state slot (prompt.user_token)."""
    epoch: int = 0
    """Training shards: the epoch whose negatives and templates they hold."""
    item_text: str = "title"
    """What prompts write for each item (prompt.item_text)."""
    inputs: str = ""
    """The content of the tokenizer, dataset and recommender files (`loaded_inputs` of the
    run's shard key, hashed once by the driver): a worker keeps what it loaded from them while
    this holds; empty: load them for every batch."""

    @classmethod
    def for_split(cls, config: FinetuneConfig, dataset, llm: str, split: str,
                  epoch: int = 0, inputs: str = "") -> "ShardSpec":
        """The spec of one split's shards for a run (`llm`: the resolved LLM source;
        `inputs`: see the field)."""
        return cls(llm=llm, data_dir=str(dataset.directory), split=split,
                   num_items=dataset.num_items, num_candidates=dataset.config.num_candidates,
                   candidate_seed=dataset.config.candidate_seed,
                   domain=config.prompt.domain or dataset.domain,
                   template_file=config.prompt.template_file,
                   max_length=config.prompt.max_length, min_history=config.prompt.min_history,
                   seed=config.shards.seed, candidate_source=config.candidates.source,
                   rec_checkpoint=config.rec_checkpoint, retrieve=config.candidates.retrieve,
                   scoring=config.scoring.head, user_token=config.prompt.user_token,
                   epoch=epoch, item_text=config.prompt.item_text, inputs=inputs)


def loaded_inputs(key: dict) -> str:
    """ShardSpec.inputs from a shard key: the digests of what a tokenising worker loads."""
    return json.dumps([key["tokenizer"], key["dataset"], key["recommender"]])


ORDER_COLUMN = "training_order"
"""The sort key column the shard builder adds to training rows, and drops after sorting."""


def training_order(seed: int, epoch: int, sample_ids: np.ndarray) -> np.ndarray:
    """(N,) int64 sort keys in [0, 2**63) of training samples: a seeded hash of (seed, epoch,
    sample id) (splitmix64's finaliser), so the order is a pure function of each sample and
    not of how the table was read or split. Sorted by it, any prefix of an epoch's shards is a
    uniform random sample of the rows, and each epoch takes another one."""
    salt = np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0]
    with np.errstate(over="ignore"):  # the hash multiplies modulo 2**64 on purpose
        x = np.asarray(sample_ids).astype(np.uint64) ^ salt
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(1)).astype(np.int64)  # 63 bits: a signed column sorts the same


def order_boundaries(parts: int, upper: int = 2**63) -> list[int]:
    """Range boundaries that cut training_order's (uniform) keys below `upper` into `parts`
    equal ranges: a sort then needs no sampling pass and no more partitions than the table has
    blocks."""
    return [round(i * upper / parts) for i in range(1, parts)]


def order_cutoff(seed: int, epoch: int, sample_ids: np.ndarray, limit: int) -> int | None:
    """The `limit`-th smallest training_order key of an epoch (None when every row is kept):
    rows above it are not in the epoch's first `limit`, so they need not be sorted at all."""
    if limit >= len(sample_ids):
        return None
    keys = training_order(seed, epoch, sample_ids)
    return int(np.partition(keys, limit - 1)[limit - 1])


def rows_up_to(table: pa.Table, cutoff: int) -> pa.Table:
    """The rows of `table` (with ORDER_COLUMN) whose key is at most `cutoff`."""
    return table.filter(pc.less_equal(table[ORDER_COLUMN], pa.scalar(cutoff, pa.int64())))


def with_training_order(table: pa.Table, seed: int, epoch: int) -> pa.Table:
    """`table` of sample rows plus its ORDER_COLUMN (Ray Data sorts training rows by it)."""
    keys = training_order(seed, epoch, table["sample_id"].to_numpy())
    return table.append_column(ORDER_COLUMN, pa.array(keys, pa.int64()))


def template_choice(seed: int, sample_ids: np.ndarray, count: int,
                    epoch: int = 0) -> np.ndarray:
    """Training template per sample and epoch; evaluation always uses the first, as
    `llara evaluate`."""
    return np.array([np.random.default_rng([seed, epoch, int(s)]).integers(count)
                     for s in sample_ids], np.int16)


def shard_table(samples: Samples, spec: ShardSpec, builder: PromptBuilder,
                retriever: torch.nn.Module | None = None) -> pa.Table:
    """(N sample rows) -> (N shard rows); training drops histories under min_history.
    `retriever`: the frozen recommender, for hard negatives."""
    train = spec.split == "train"
    if train:
        samples = samples.select(np.flatnonzero(samples.len_history >= spec.min_history))
    templates = templates_for(spec.domain, spec.template_file)
    # Training: the epoch's negatives, as the local loop draws them (hard negatives only for
    # rows whose answer was retrieved); evaluation: the lists `llara evaluate` uses.
    if train:
        lists = training_lists(samples, spec.candidate_source, spec.num_items,
                               spec.num_candidates, spec.candidate_seed, spec.epoch, retriever,
                               retrieve_n=spec.retrieve,
                               pool=(_negative_pool if spec.inputs else
                                     _negative_pool.__wrapped__)(spec.data_dir, spec.inputs))
        samples, candidates = samples.select(lists.rows), lists.items
    else:
        candidates = sample_candidates(samples, spec.num_items, spec.num_candidates,
                                       spec.candidate_seed)
    choice = template_choice(spec.seed, samples.sample_id, len(templates), spec.epoch) \
        if train else np.zeros(len(samples), np.int16)
    rows = range(len(samples))
    chosen = [templates[i] for i in choice]
    hybrid = builder.build(samples, candidates, rows, chosen, True, True)
    text = builder.build(samples, candidates, rows, chosen, False, True)
    return pa.table({
        "sample_id": pa.array(samples.sample_id, pa.int64()),
        "split": pa.array([spec.split] * len(samples), pa.string()),
        "template": pa.array(choice, pa.int16()),
        "next": pa.array(samples.next, pa.int64()),
        "candidates": pa.array(candidates.tolist(), _ids),
        "target": pa.array([p.target for p in hybrid], pa.int16()),
        "input_ids": pa.array([p.input_ids for p in hybrid], _ids),
        "label_mask": pa.array([p.label_mask for p in hybrid], pa.list_(pa.bool_())),
        "slot_positions": pa.array([p.slot_positions for p in hybrid], _ids),
        "slot_items": pa.array([p.slot_items for p in hybrid], _ids),
        "candidate_positions": pa.array([p.candidate_positions for p in hybrid], _ids),
        "text_input_ids": pa.array([p.input_ids for p in text], _ids),
        "text_label_mask": pa.array([p.label_mask for p in text], pa.list_(pa.bool_())),
        "text_candidate_positions": pa.array([p.candidate_positions for p in text], _ids),
    }, schema=SHARD_SCHEMA)


@lru_cache(maxsize=4)
def _cached_builder(llm: str, data_dir: str, item_text: str, max_length: int, scoring: str,
                    user_token: bool, inputs: str) -> PromptBuilder:
    from llara.data.prepare import PreparedDataset
    from llara.model.llm import load_tokenizer

    titles = PreparedDataset.open(data_dir).prompt_titles(item_text)
    return PromptBuilder(load_tokenizer(llm, extra_text=titles), titles, max_length, scoring,
                         user_token)


@lru_cache(maxsize=4)
def _negative_pool(data_dir: str, inputs: str):
    """The dataset's negative pool (PreparedDataset.negative_pool), read once per worker while
    its inputs hold (`inputs`: see ShardSpec.inputs; empty: read again)."""
    from llara.data.prepare import PreparedDataset

    return PreparedDataset.open(data_dir).negative_pool()


@lru_cache(maxsize=2)
def _cached_retriever(rec_checkpoint: str, inputs: str) -> torch.nn.Module:
    from llara.recsys.checkpoint import load_checkpoint

    return load_checkpoint(rec_checkpoint).model


class ShardTokenizer:
    """Callable over Arrow batches of sample rows. With `spec.inputs` the tokenizer, titles
    and retriever are cached per process, keyed by it: Ray Data runs this in pooled task
    workers, which then load them once however many batches and splits they serve."""

    def __init__(self, spec: dict):
        self.spec = s = ShardSpec(**spec)
        builder = _cached_builder if s.inputs else _cached_builder.__wrapped__
        self.builder = builder(s.llm, s.data_dir, s.item_text, s.max_length, s.scoring,
                               s.user_token, s.inputs)
        self.retriever = None
        if s.split == "train" and s.candidate_source == "recommender":
            retriever = _cached_retriever if s.inputs else _cached_retriever.__wrapped__
            self.retriever = retriever(s.rec_checkpoint, s.inputs)

    def __call__(self, batch: pa.Table) -> pa.Table:
        samples = samples_from_table(batch, self.spec.num_items, 1,
                                     f"{self.spec.data_dir}/{self.spec.split}.parquet")
        return shard_table(samples, self.spec, self.builder, self.retriever)


def tokenize_shard_batch(batch: pa.Table, spec: dict) -> pa.Table:
    """Ray Data task body: one batch of sample rows -> shard rows (see ShardTokenizer)."""
    return ShardTokenizer(spec)(batch)


def write_shard(table: pa.Table, path: Path) -> None:
    """Fixed writer options and one chunk per column, so equal tables give equal bytes
    however the rows arrived (Ray batches are stitched from several blocks)."""
    pq.write_table(table.cast(SHARD_SCHEMA).combine_chunks(), path, compression="zstd",
                   compression_level=3, write_statistics=False, store_schema=True)


def prompts_from_rows(rows: pa.Table, hybrid: bool) -> list[TokenizedPrompt]:
    """Shard rows -> the variant the curriculum picked for this step."""
    if hybrid:
        columns = rows.select(["input_ids", "label_mask", "slot_positions", "slot_items",
                               "candidate_positions", "target"])
        return [TokenizedPrompt(r["input_ids"], r["label_mask"], r["slot_positions"],
                                r["slot_items"], r["candidate_positions"], r["target"])
                for r in columns.to_pylist()]
    columns = rows.select(["text_input_ids", "text_label_mask", "text_candidate_positions",
                           "target"])
    return [TokenizedPrompt(r["text_input_ids"], r["text_label_mask"], [], [],
                            r["text_candidate_positions"], r["target"])
            for r in columns.to_pylist()]


@dataclass
class ShardManifest:
    """manifest.json of a shard folder: what shaped it (`key`, see shard_key.py) and what it
    holds."""

    format: str
    key: dict
    """Every input and option the shards depend on (shard_key)."""
    vocab_size: int
    splits: dict
    """split -> {"rows": int, "files": [names]}; train also has "epochs": [[names] per epoch]."""

    @classmethod
    def found(cls, directory: str | Path) -> "ShardManifest | None":
        """The manifest of an existing shard folder of this format, else None (no folder,
        or one an older version wrote)."""
        try:
            return cls.read(directory)
        except DataError:
            return None

    def changes_for(self, key: dict) -> list[str]:
        """What differs from the key a run needs (empty: the shards fit it)."""
        if "train" not in self.splits:
            return ["splits (no training shards)"]
        return changed_keys(self.key, key)

    def files(self, directory: Path, split: str, epoch: int | None = None) -> list[str]:
        """A split's shard files; training shards of one `epoch` (default: the first)."""
        if split not in self.splits:
            raise DataError(directory, f"no '{split}' shards",
                            expected=f"one of {', '.join(self.splits)} (shards.splits)")
        names = self.splits[split]["files"]
        if epoch is not None and split == "train":
            epochs = self.splits[split]["epochs"]
            if epoch >= len(epochs):
                raise DataError(directory, f"no training shards for epoch {epoch}",
                                expected=f"epochs 0..{len(epochs) - 1} (train.epochs)")
            names = epochs[epoch]
        return [str(directory / name) for name in names]

    def write(self, directory: Path) -> None:
        (directory / "manifest.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, directory: str | Path) -> "ShardManifest":
        path = Path(directory) / "manifest.json"
        try:
            data = json.loads(path.read_text())
            manifest = cls(**data)
        except (OSError, ValueError, RecursionError, TypeError) as err:
            raise DataError(path, f"unreadable shard manifest ({err})",
                            expected="a folder written by `llara data shards`") from None
        if manifest.format != SHARD_FORMAT:
            raise DataError(path, f"format {manifest.format!r}", expected=SHARD_FORMAT)
        problem = _manifest_problem(manifest)
        if problem:
            raise DataError(path, problem, expected="a folder written by `llara data shards`")
        return manifest


def _plain_name(name) -> bool:
    """A file name inside the shard folder: no folder part, so a manifest names no file
    elsewhere."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name \
        and "\\" not in name


def _manifest_problem(manifest: ShardManifest) -> str | None:
    """What is wrong with a manifest's shape, or None."""
    if not isinstance(manifest.key, dict) or not isinstance(manifest.splits, dict) or \
            isinstance(manifest.vocab_size, bool) or not isinstance(manifest.vocab_size, int):
        return "key, vocab_size or splits of the wrong type"
    for split, entry in manifest.splits.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("rows"), int) or \
                not isinstance(entry.get("files"), list):
            return f"split '{split}' lacks its rows or files"
        names = list(entry["files"])
        if split == "train":
            epochs = entry.get("epochs")
            if not isinstance(epochs, list) or not all(isinstance(e, list) for e in epochs):
                return "the training split lacks its files per epoch"
            names += [name for epoch in epochs for name in epoch]
        bad = next((n for n in names if not _plain_name(n)), None)
        if bad is not None:
            return f"split '{split}' names {bad!r}, which is not a file inside the folder"
    return None
