import json

import numpy as np
import pytest
import torch

from llara.config.data import DataConfig
from llara.config.recommender import RecommenderConfig, RecRunConfig, RecTrainConfig
from llara.data.candidates import sample_candidates
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.recsys.checkpoint import load_checkpoint
from llara.recsys.ranking import evaluate_ranking, rank_candidates, write_predictions
from llara.recsys.train import train_recommender
from tests.conftest import synthetic_log, write_ml100k


@pytest.fixture(scope="module")
def sequential_task(tmp_path_factory):
    """Next item = previous + 1 (mod 40) with 10% noise: learnable only from the sequence."""
    root = tmp_path_factory.mktemp("task")
    raw = write_ml100k(root / "raw", synthetic_log(num_users=150, length=12), 40)
    prepare_dataset(raw, root / "data", DataConfig())
    return PreparedDataset.open(root / "data")


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "caser"])
def test_short_training_lifts_hit_ratio_far_above_chance(sequential_task, tmp_path, name):
    run = RecRunConfig(model=RecommenderConfig(model=name, embedding_dim=32),
                       train=RecTrainConfig(epochs=6, batch_size=64, lr=5e-3, patience=6))
    result = train_recommender(sequential_task, run, tmp_path / "ck", progress=False,
                               log=lambda *_: None)
    test = sequential_task.samples("test")
    candidates = sample_candidates(test, 40, 20, seed=0)
    model = load_checkpoint(tmp_path / "ck").model
    metrics = evaluate_ranking(rank_candidates(model, test, candidates))
    assert metrics["HitRatio@1"] > 0.5  # chance is 1/20 = 0.05
    assert result.val_metrics["HitRatio@1"] > 0.5
    records = [json.loads(line) for line in (tmp_path / "ck" / "metrics.jsonl").open()]
    assert [r["epoch"] for r in records] == list(range(1, result.epochs_run + 1))
    assert records[result.best_epoch - 1]["val_HitRatio@1"] == result.val_metrics["HitRatio@1"]


def test_training_is_reproducible_with_a_seed(sequential_task, tmp_path):
    run = RecRunConfig(model=RecommenderConfig(embedding_dim=16),
                       train=RecTrainConfig(epochs=1, batch_size=128, seed=5))
    for name in ("a", "b"):
        train_recommender(sequential_task, run, tmp_path / name, progress=False,
                          log=lambda *_: None)
    a, b = (load_checkpoint(tmp_path / n).model for n in "ab")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))


def test_predictions_table(sequential_task, tmp_path):
    import pyarrow.parquet as pq

    run = RecRunConfig(model=RecommenderConfig(embedding_dim=16),
                       train=RecTrainConfig(epochs=1, batch_size=128))
    train_recommender(sequential_task, run, tmp_path / "ck", progress=False, log=lambda *_: None)
    model = load_checkpoint(tmp_path / "ck").model
    test = sequential_task.samples("test")
    candidates = sample_candidates(test, 40, 20, seed=0)
    ranking = rank_candidates(model, test, candidates, batch_size=7)
    write_predictions(tmp_path / "pred.parquet", test, candidates, ranking)
    table = pq.read_table(tmp_path / "pred.parquet")
    assert table.num_rows == len(test)
    ranked = np.array(table["ranked_items"].to_pylist())
    assert np.array_equal(ranked[np.arange(len(test)), table["rank"].to_numpy()], test.next)
    scores = np.array(table["ranked_scores"].to_pylist())
    assert (np.diff(scores, axis=1) <= 0).all()
    assert sorted(ranked[0].tolist()) == sorted(candidates[0].tolist())


def test_an_output_folder_with_foreign_files_is_refused_before_training(sequential_task,
                                                                        tmp_path):
    from llara.common.atomic import ForeignFilesError

    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.csv").write_text("my results")
    logged = []
    with pytest.raises(ForeignFilesError, match="results.csv"):
        train_recommender(sequential_task, RecRunConfig(), out, progress=False,
                          log=logged.append)
    assert logged == [] and [p.name for p in out.iterdir()] == ["results.csv"]


def test_a_sampled_softmax_learns_the_task_too(sequential_task, tmp_path):
    """sampled_negatives: the batch's targets and K uniform draws instead of the catalogue."""
    run = RecRunConfig(model=RecommenderConfig(embedding_dim=32),
                       train=RecTrainConfig(epochs=6, batch_size=64, lr=5e-3, patience=6,
                                            sampled_negatives=8))
    result = train_recommender(sequential_task, run, tmp_path / "ck", progress=False,
                               log=lambda *_: None)
    assert result.val_metrics["HitRatio@1"] > 0.5  # chance is 1/20 = 0.05
    with pytest.raises(Exception, match="train.sampled_negatives"):
        RecTrainConfig(sampled_negatives=-1)


def test_a_sampled_loss_masks_the_rows_own_target_among_the_negatives():
    from llara.recsys.models import build_recommender
    from llara.recsys.train import batch_loss

    torch.manual_seed(0)
    model = build_recommender(RecommenderConfig(embedding_dim=8), 6, 4).eval()  # no dropout
    history = torch.tensor([[0, 1, 6, 6], [2, 6, 6, 6]])
    lengths = torch.tensor([2, 1])
    targets = torch.tensor([3, 3])  # both rows want item 3: each other's column is a hit
    generator = torch.Generator().manual_seed(1)
    loss = batch_loss(model, history, lengths, targets, 5, generator)
    drawn = torch.randint(0, 6, (5,), generator=torch.Generator().manual_seed(1))
    states = model.encode(history, lengths)
    table = model.items
    manual = []
    for row in range(2):
        columns = [targets[row].item()] + [c for c in drawn.tolist() if c != 3]
        logits = states[row] @ table.embedding.weight[columns].T + table.bias[columns]
        manual.append(-torch.log_softmax(logits, 0)[0])
    assert torch.allclose(loss, torch.stack(manual).mean(), atol=1e-6)


def test_other_rows_targets_are_negatives_in_a_sampled_loss():
    from llara.recsys.models import build_recommender
    from llara.recsys.train import batch_loss

    torch.manual_seed(0)
    model = build_recommender(RecommenderConfig(embedding_dim=8), 6, 4).eval()  # no dropout
    history = torch.tensor([[0, 1, 6, 6], [2, 6, 6, 6]])
    lengths = torch.tensor([2, 1])
    targets = torch.tensor([3, 4])
    loss = batch_loss(model, history, lengths, targets, 3, torch.Generator().manual_seed(2))
    drawn = torch.randint(0, 6, (3,), generator=torch.Generator().manual_seed(2)).tolist()
    states, table = model.encode(history, lengths), model.items
    manual = []
    for row in range(2):
        own = targets[row].item()
        columns = [own] + [c for c in [*targets.tolist(), *drawn] if c != own]
        logits = states[row] @ table.embedding.weight[columns].T + table.bias[columns]
        manual.append(-torch.log_softmax(logits, 0)[0])
    assert torch.allclose(loss, torch.stack(manual).mean(), atol=1e-6)
