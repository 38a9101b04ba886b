"""The evaluation report (what `llara evaluate` prints and writes with --json): the content
baseline ranks every paper-protocol table's own candidate lists, beside popularity."""

import numpy as np
import pyarrow as pa
import pytest

from llara.common.errors import DataError
from llara.config.data import DataConfig
from llara.config.evaluation import EvalConfig
from llara.config.run import FinetuneConfig
from llara.data.candidates import sample_candidates
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.evaluation.fusion import ranks_of
from llara.evaluation.metrics import ranking_metrics
from llara.inference.report import Scored, content_ranks, evaluation_report
from llara.recsys.content import ContentIndex, content_scores
from tests.conftest import synthetic_log, write_ml100k

WORDS = ("star", "night", "river", "ghost", "heart")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> PreparedDataset:
    root = tmp_path_factory.mktemp("report")
    titles = {i: f"{WORDS[i % 5].title()} {WORDS[i // 5 % 5].title()} ({1950 + 10 * (i % 4)})"
              for i in range(40)}
    raw = write_ml100k(root / "raw", synthetic_log(num_users=60), 40, titles)
    prepare_dataset(raw, root / "data", DataConfig(num_candidates=10))
    return PreparedDataset.open(root / "data")


def scored_table(dataset: PreparedDataset, rows: np.ndarray) -> pa.Table:
    """A paper-protocol predictions table of the test rows `rows` (in that order), with
    made-up LLM and recommender scores."""
    rng = np.random.default_rng(0)
    samples = dataset.samples("test").select(rows)
    candidates = sample_candidates(samples, dataset.num_items, 10, 0)  # (N, 10)
    llm, rec = rng.normal(size=candidates.shape), rng.normal(size=candidates.shape)
    ranks = ranks_of(llm, candidates, samples.next)
    return pa.table({"sample_id": pa.array(samples.sample_id, pa.int64()),
                     "user": pa.array(samples.user, pa.string()),
                     "len_history": pa.array(samples.len_history, pa.int64()),
                     "next": pa.array(samples.next, pa.int64()),
                     "candidates": pa.array(candidates.tolist(), pa.list_(pa.int64())),
                     "recommender_scores": pa.array(rec.tolist(), pa.list_(pa.float32())),
                     "scores": pa.array(llm.tolist(), pa.list_(pa.float32())),
                     "rank": pa.array(ranks, pa.int64()),
                     "fused_rank": pa.array(ranks, pa.int64())})


def test_the_report_holds_the_content_ranking_beside_popularity(dataset, tmp_path):
    rows = np.arange(len(dataset.samples("test")))[::-1]  # any order of the split's rows
    table = scored_table(dataset, rows)
    run = FinetuneConfig(llm="tiny", data_dir=str(dataset.directory), rec_checkpoint="rec",
                         output_dir=str(tmp_path / "run"))
    report = evaluation_report(Scored(table, "score 0.1"), run, {"weight": 0.5},
                               EvalConfig(split="test"))
    samples = dataset.samples("test").select(rows)
    candidates = np.array(table["candidates"].to_pylist())
    expected = ranks_of(content_scores(ContentIndex.from_dataset(dataset), samples.history,
                                       samples.len_history, candidates),
                        candidates, samples.next)
    assert report["metrics"]["content"] == ranking_metrics(expected)
    comparison = report["comparison"]
    assert comparison["baseline"] == "recommender"
    assert list(comparison["metrics"]) == ["LLM", "fused", "recommender", "popularity",
                                           "content"]
    assert comparison["metrics"]["content"]["HitRatio@1"] == \
        report["metrics"]["content"]["HitRatio@1"]
    assert set(comparison["against"]) == {"LLM", "fused", "popularity", "content"}
    assert all("content" in row["metrics"] for row in comparison["popularity"])


def test_content_ranks_refuse_rows_the_dataset_does_not_hold(dataset):
    table = scored_table(dataset, np.arange(4))
    assert content_ranks(table.slice(0, 0), dataset, "test") is None
    wrong = table.set_column(0, "sample_id", pa.array([10**9] * 4, pa.int64()))
    with pytest.raises(DataError, match="sample 1000000000 is not a test row"):
        content_ranks(wrong, dataset, "test")
    with pytest.raises(DataError, match="is not a val row"):
        content_ranks(table, dataset, "val")
    targets = table["next"].to_numpy()
    moved = table.set_column(3, "next", pa.array((targets + 1) % dataset.num_items, pa.int64()))
    with pytest.raises(DataError, match="true items differ from its test rows'"):
        content_ranks(moved, dataset, "test")
