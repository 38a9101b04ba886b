import json
import shutil

import pytest

from llara.common.errors import DataError
from llara.config.candidates import CandidateConfig
from llara.config.evaluation import EvalConfig
from llara.config.io import apply_overrides
from llara.inference.evaluate import evaluate_trained
from llara.inference.trained import load_trained
from llara.training.inputs import check_inputs, run_inputs
from llara.training.loop import train_local
from tests.conftest import toy_config


def test_training_on_retrieved_lists_with_full_validation(toy_inputs, tmp_path):
    config = toy_config(toy_inputs, tmp_path / "run", max_train_samples=16)
    config.candidates = CandidateConfig(source="recommender", validation="full", retrieve=6)
    result = train_local(config, progress=False, log=lambda *_: None)
    records = [json.loads(line) for line in
               (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    validation = [r for r in records if "val_HitRatio@1" in r]
    assert len(validation) == 1
    for key in ("val_full_HitRatio@1", "val_full_HitRatio@10", "val_full_NDCG@10",
                "val_full_Recall@6"):
        assert 0.0 <= validation[0][key] <= 1.0
    # Reordering inside the retrieved six keeps every retrieved hit inside the top 10 and
    # cannot bring in one retrieval missed.
    assert validation[0]["val_full_HitRatio@10"] >= validation[0]["val_full_Recall@6"] - 1e-9
    assert validation[0]["val_full_HitRatio@5"] <= validation[0]["val_full_Recall@6"] + 1e-9
    run = json.loads((result.checkpoint_dir / "run.json").read_text())
    assert run["config"]["candidates"] == {"source": "recommender", "validation": "full",
                                           "retrieve": 6}


@pytest.mark.parametrize("key, value", [("max_history", 5), ("num_items", 41)])
def test_a_recommender_of_other_data_is_refused_naming_both_values(toy_inputs, tmp_path, key,
                                                                   value):
    data, rec = toy_inputs
    other = tmp_path / "other-rec"
    shutil.copytree(rec, other)
    header = json.loads((other / "config.json").read_text())
    ours = header[key]
    header[key] = value
    (other / "config.json").write_text(json.dumps(header))
    config = toy_config((data, other), tmp_path / "run")
    what = "items" if key == "num_items" else key
    with pytest.raises(DataError, match=f"recommender has {what} {value} but the dataset .* "
                                        f"has {what} {ours}"):
        check_inputs(config)
    with pytest.raises(DataError, match=f"has {what} {value}"):  # serve and evaluate load so
        run_inputs(config, "cpu", None, log=lambda *_: None, inference=True)


def test_a_best_folder_with_foreign_files_is_refused_before_training(toy_inputs, tmp_path):
    from llara.common.atomic import ForeignFilesError

    best = tmp_path / "run" / "best"
    best.mkdir(parents=True)
    (best / "notes.md").write_text("my notes")
    config = toy_config(toy_inputs, tmp_path / "run", max_train_samples=8)
    with pytest.raises(ForeignFilesError, match=r"run/best: refusing.*notes\.md"):
        train_local(config, progress=False, log=lambda *_: None)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best"]
    assert (best / "notes.md").read_text() == "my notes"


def test_a_run_on_the_first_layers_reloads_with_those_layers_only(toy_inputs, tmp_path):
    """llm_layers travels in run.json: evaluation rebuilds the same shortened LLM, so the
    reloaded checkpoint scores the validation rows as training did."""
    config = apply_overrides(
        toy_config(toy_inputs, tmp_path / "run", max_train_samples=16, max_eval_samples=None,
                   precision="fp32"),
        ["llm_layers=1", "scoring.head=slot", "curriculum.schedule=direct"])
    result = train_local(config, progress=False, log=lambda *_: None)
    trained = load_trained(result.checkpoint_dir, "cpu", log=lambda *_: None)
    assert trained.config.llm_layers == 1
    assert len(trained.model.llm.get_decoder().layers) == 1
    scored = evaluate_trained(trained, EvalConfig(split="val"), progress=False)["score"]
    for metric in ("HitRatio@1", "NDCG@5"):
        assert scored[metric] == pytest.approx(result.val_metrics[metric], abs=1e-9)


def test_a_stacked_run_reads_one_recommender_and_fuses_with_the_other(toy_inputs, tmp_path):
    """Stacking: the LLM reads the recommender trained without each user's last rows and
    trains on those rows; validation, evaluation and serving fuse with (and retrieve from)
    the recommender trained on every row."""
    import numpy as np
    import torch

    from llara.config.recommender import RecRunConfig, RecTrainConfig
    from llara.data import PreparedDataset, holdout_split
    from llara.inference.evaluate import evaluate_samples
    from llara.inference.serving import check_checkpoint
    from llara.recsys.checkpoint import load_checkpoint
    from llara.recsys.ranking import candidate_scores
    from llara.recsys.train import train_recommender
    from llara.training.validation import load_fusion_recommender

    data, full = toy_inputs
    parts = holdout_split(data, last=3, rec_dir=tmp_path / "rec-part",
                          llm_dir=tmp_path / "llm-part")
    train_recommender(PreparedDataset.open(parts.rec_dir),
                      RecRunConfig(train=RecTrainConfig(epochs=1, batch_size=64, device="cpu")),
                      tmp_path / "sasrec-part", progress=False, log=lambda *_: None)
    shutil.copytree(full, tmp_path / "sasrec-full")  # this test moves it away below
    config = apply_overrides(
        toy_config((parts.llm_dir, tmp_path / "sasrec-part"), tmp_path / "run",
                   max_train_samples=8),
        ["scoring.head=slot", "curriculum.schedule=direct",
         f"fusion_rec_checkpoint={tmp_path / 'sasrec-full'}"])
    result = train_local(config, progress=False, log=lambda *_: None)
    trained = load_trained(result.checkpoint_dir, "cpu")
    assert trained.config.rec_checkpoint == str(tmp_path / "sasrec-part")
    served = trained.recommender().state_dict()
    validated = load_fusion_recommender(config, "cpu").state_dict()  # the Ray Train loop's
    for name, weight in load_checkpoint(tmp_path / "sasrec-full").model.state_dict().items():
        assert torch.equal(served[name], weight) and torch.equal(validated[name], weight)

    val = trained.dataset.samples("val")
    val = val.select(np.arange(min(8, len(val))))  # the rows training validated on
    outcome = evaluate_samples(trained, val, EvalConfig(split="val"), progress=False)
    lists = outcome["candidates"]
    assert np.array_equal(outcome["rec_scores"], candidate_scores(
        load_checkpoint(tmp_path / "sasrec-full").model, val, lists))
    assert not np.allclose(outcome["rec_scores"], candidate_scores(
        load_checkpoint(tmp_path / "sasrec-part").model, val, lists))
    # Training chose its fusion weight against the full recommender too: its grid is the one
    # evaluation finds with that recommender on the same rows.
    stored = json.loads((result.checkpoint_dir / "run.json").read_text())["fusion"]["grid"]
    for mine, theirs in zip(stored, outcome["fusion_grid"]):
        assert mine["weight"] == theirs["weight"]
        for metric in ("HitRatio@1", "HitRatio@3", "NDCG@5"):
            assert mine[metric] == pytest.approx(theirs[metric], abs=1e-9)

    shutil.move(tmp_path / "sasrec-full", tmp_path / "elsewhere")
    with pytest.raises(DataError, match="fusion_rec_checkpoint .* is missing"):
        check_checkpoint(result.checkpoint_dir)


def test_a_fusion_recommender_of_other_data_is_refused(toy_inputs, tmp_path):
    data, rec = toy_inputs
    other = tmp_path / "other-rec"
    shutil.copytree(rec, other)
    header = json.loads((other / "config.json").read_text())
    header["num_items"] = 41
    (other / "config.json").write_text(json.dumps(header))
    config = apply_overrides(toy_config(toy_inputs, tmp_path / "run"),
                             [f"fusion_rec_checkpoint={other}"])
    with pytest.raises(DataError, match="other-rec: the recommender has items 41"):
        check_inputs(config)


def test_a_checkpoint_stores_what_it_serves_and_evaluation_ranks_with_it(toy_inputs, tmp_path):
    """A tiny LLM barely trained cannot beat SASRec by more than chance on a few validation rows:
    the checkpoint serves SASRec's ranking, and on other rows its fused ranks are SASRec's."""
    import numpy as np

    from llara.evaluation.fusion import ranks_of

    result = train_local(toy_config(toy_inputs, tmp_path / "run", max_train_samples=8),
                         progress=False, log=lambda *_: None)
    fusion = json.loads((result.checkpoint_dir / "run.json").read_text())["fusion"]
    assert fusion["serves"] == "recommender" and 0 < fusion["rows"] <= 8
    assert set(fusion["gain"]) == {"HitRatio@1", "NDCG@5"}
    assert fusion["gain"]["HitRatio@1"]["low"] <= 0
    trained = load_trained(result.checkpoint_dir, "cpu", log=lambda *_: None)
    assert trained.fusion_weight == float("inf")
    test = evaluate_trained(trained, EvalConfig(), progress=False)
    assert np.array_equal(test["fused_ranks"], ranks_of(test["rec_scores"], test["candidates"],
                                                        test["samples"].next))
    assert test["fused"] == test["recommender"]
