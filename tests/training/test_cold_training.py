"""A run that reads new items (cold.content=map): trains, saves, reloads to the same scores,
draws training negatives from warm items only, and places cold candidates by the LLM."""

import dataclasses

import numpy as np
import pytest
import torch

from llara.config import DataConfig
from llara.config.cold import ColdConfig
from llara.config.evaluation import EvalConfig
from llara.config.recommender import RecRunConfig, RecTrainConfig
from llara.common.errors import ConfigError
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.evaluation.fusion import fused_scores, ranks_of, without_cold
from llara.inference.evaluate import evaluate_trained
from llara.inference.trained import load_trained
from llara.recsys.retrieval import training_lists
from llara.recsys.train import train_recommender
from llara.training.loop import train_local
from tests.conftest import toy_config, write_ml100k
from tests.data.test_cold import staggered_log


@pytest.fixture(scope="module")
def cold_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cold")
    raw = write_ml100k(root / "raw", staggered_log(), 40)
    prepare_dataset(raw, root / "data", DataConfig(num_candidates=6, cold_items=0.3,
                                                   rows_per_user=2))
    train_recommender(PreparedDataset.open(root / "data"),
                      RecRunConfig(train=RecTrainConfig(epochs=1, batch_size=64, device="cpu")),
                      root / "sasrec", progress=False, log=lambda *_: None)
    return root


def test_id_dropout_needs_the_content_map():
    with pytest.raises(ConfigError, match="cold.id_dropout"):
        ColdConfig(id_dropout=0.2)
    with pytest.raises(ConfigError, match="cold.content"):
        ColdConfig(content="llm")


def test_training_negatives_are_warm(cold_inputs):
    dataset = PreparedDataset.open(cold_inputs / "data")
    pool = dataset.negative_pool()
    train = dataset.samples("train")
    lists = training_lists(train, "random", 40, 6, 0, 0, pool=pool)
    assert np.isin(lists.items, pool).all()
    free = training_lists(train, "random", 40, 6, 0, 0)
    assert not np.isin(free.items, pool).all()  # without the pool, new items are drawn


def test_a_cold_run_trains_saves_and_reloads_to_the_same_scores(cold_inputs, tmp_path):
    config = toy_config((cold_inputs / "data", cold_inputs / "sasrec"), tmp_path / "run",
                        max_train_samples=16)
    config = dataclasses.replace(config, cold=ColdConfig(content="map", id_dropout=0.5))
    torch.manual_seed(0)
    result = train_local(config, progress=False, log=lambda *_: None)
    trained = load_trained(result.checkpoint_dir, "cpu", log=lambda *_: None)
    model = trained.model
    dataset = PreparedDataset.open(cold_inputs / "data")
    cold = dataset.cold_mask()
    assert np.array_equal(model.cold_mask(), cold)
    # The cold items' rows are their content vectors; the warm rows the recommender's own.
    from llara.recsys.checkpoint import load_item_embeddings
    table = load_item_embeddings(cold_inputs / "sasrec")
    warm = torch.as_tensor(~cold)
    assert torch.equal(model.item_embeddings[warm], table[warm])
    assert torch.allclose(model.item_embeddings[~warm], model.content_vectors[~warm])
    assert not torch.allclose(model.item_embeddings[~warm], table[~warm])
    first = evaluate_trained(trained, EvalConfig(split="test", local=True), False)
    again = evaluate_trained(load_trained(result.checkpoint_dir, "cpu", log=lambda *_: None),
                             EvalConfig(split="test", local=True), False)
    assert np.allclose(first["ranking"].scores, again["ranking"].scores, atol=1e-5)
    # The fusion choice holds a cold level, tried at every level with every weight, and the
    # fused ranking places new candidates at it.
    fusion = trained.info["fusion"]
    assert fusion["cold_level"] in config.scoring.cold_levels
    assert {(row["cold_level"], row["weight"]) for row in fusion["grid"]} == \
        {(level, w) for level in config.scoring.cold_levels for w in config.scoring.fusion_grid}
    level = trained.cold_level
    assert first["cold_level"] == level == \
        (None if fusion["serves"] == "recommender" else fusion["cold_level"])
    fused = fused_scores(first["ranking"].scores,
                         without_cold(first["rec_scores"], first["candidates"], cold, level),
                         trained.fusion_weight)
    assert np.array_equal(ranks_of(fused, first["candidates"], first["samples"].next),
                          first["fused_ranks"])


def test_id_dropout_swaps_warm_slots_in_training_only(cold_inputs, tmp_path):
    config = toy_config((cold_inputs / "data", cold_inputs / "sasrec"), tmp_path / "run",
                        max_train_samples=8)
    config = dataclasses.replace(config, cold=ColdConfig(content="map", id_dropout=0.9))
    from llara.model.llara import build_llara
    from llara.training.inputs import run_inputs

    inputs = run_inputs(config, "cpu", None, lambda *_: None)
    model = build_llara(config, inputs.llm, inputs.tokenizer, inputs.item_table,
                        inputs.user_encoder, inputs.cold)
    dataset = inputs.dataset
    ids = torch.tensor([[model.history_token, model.candidate_token, 5]])
    warm = int(np.flatnonzero(~dataset.cold_mask())[0])
    slots = torch.tensor([[warm, warm]])
    model.eval()
    plain = model.embed(ids, slots, hybrid=True)
    assert torch.equal(plain, model.embed(ids, slots, hybrid=True))
    model.train()
    torch.manual_seed(0)
    changed = [not torch.equal(model.embed(ids, slots, hybrid=True), plain) for _ in range(20)]
    assert any(changed)


def test_the_report_holds_the_cold_and_warm_slices_and_cold_only_lists(cold_inputs, tmp_path,
                                                                       capsys):
    from cli.common import print_report
    from llara.inference.report import evaluate_here, evaluation_report
    from llara.training.inputs import checked_run_config

    config = toy_config((cold_inputs / "data", cold_inputs / "sasrec"), tmp_path / "run",
                        max_train_samples=8)
    config = dataclasses.replace(config, cold=ColdConfig(content="map"))
    result = train_local(config, progress=False, log=lambda *_: None)
    run = checked_run_config(result.checkpoint_dir, lambda *_: None)
    evaluation = EvalConfig(split="test", local=True)
    scored = evaluate_here(result.checkpoint_dir, evaluation, run, progress=False,
                           log=lambda *_: None)
    report = evaluation_report(scored, run, {}, evaluation)
    cold = report["cold"]
    dataset = PreparedDataset.open(cold_inputs / "data")
    mask = dataset.cold_mask()
    targets = dataset.samples("test").next
    slices = {row["slice"]: row for row in cold["slices"]}
    assert slices["cold"]["rows"] == int(mask[targets].sum()) > 0
    assert slices["cold"]["rows"] + slices["warm"]["rows"] == len(targets)
    assert {"LLM", "fused", "recommender", "content", "popularity"} <= \
        set(slices["cold"]["metrics"])
    assert set(slices["cold"]["against"]) == {"recommender", "content"}
    assert slices["cold"]["metrics"]["popularity"]["HitRatio@1"] == 0.0  # never a target
    only = scored.cold_only
    assert only is not None and mask[np.array(only["candidates"].to_pylist())].all()
    assert cold["cold_only"]["rows"] == only.num_rows
    print_report(report)
    assert "new item" in capsys.readouterr().out
    # `llara evaluate --predictions` writes those rows beside the paper lists' table.
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from llara.cli.app import app
    written = CliRunner().invoke(app, [
        "evaluate", "--checkpoint", str(result.checkpoint_dir), "--local", "--split", "test",
        "--predictions", str(tmp_path / "pred.parquet"), "--no-progress"])
    assert written.exit_code == 0, written.output
    assert pq.read_table(tmp_path / "pred.parquet").num_rows == len(targets)
    beside = pq.read_table(tmp_path / "pred.cold-only.parquet")
    assert beside.num_rows == only.num_rows
    assert np.allclose(np.array(beside["scores"].to_pylist()),
                       np.array(only["scores"].to_pylist()), atol=1e-5)


def test_the_local_loop_and_hard_negatives_draw_warm_items_only(cold_inputs, tmp_path,
                                                               monkeypatch):
    import llara.training.loop as loop
    from llara.recsys.checkpoint import load_checkpoint

    dataset = PreparedDataset.open(cold_inputs / "data")
    pool = dataset.negative_pool()
    assert set(pool.tolist()) == set(np.flatnonzero(~dataset.cold_mask()).tolist())
    seen = []
    original = loop.training_lists

    def recording(*args, **kwargs):
        lists = original(*args, **kwargs)
        seen.append(lists.items)
        return lists

    monkeypatch.setattr(loop, "training_lists", recording)
    config = toy_config((cold_inputs / "data", cold_inputs / "sasrec"), tmp_path / "run",
                        max_train_samples=8)
    train_local(config, progress=False, log=lambda *_: None)
    assert seen and all(np.isin(items, pool).all() for items in seen)
    retriever = load_checkpoint(cold_inputs / "sasrec").model
    hard = training_lists(dataset.samples("train"), "recommender", 40, 6, 0, 0, retriever,
                          pool=pool)
    assert len(hard.rows) and np.isin(hard.items, pool).all()


def test_newest_warm_items_stand_in_for_new_ones_in_training_only(cold_inputs, tmp_path):
    """cold.newest_warm: the newest warm items are read by their content in every training
    slot (no dropout needed) and in training's user states, are left out of the map's fit,
    and keep their trained rows once the model ranks."""
    from llara.model.llara import build_llara
    from llara.recsys.content_map import newest_warm_items
    from llara.training.inputs import run_inputs

    with pytest.raises(ConfigError, match="cold.newest_warm"):
        ColdConfig(newest_warm=0.2)
    with pytest.raises(ConfigError, match="cold.newest_warm"):
        ColdConfig(content="map", newest_warm=1.0)
    dataset = PreparedDataset.open(cold_inputs / "data")
    first_seen, cold = dataset.first_seen(), dataset.cold_mask()
    assert first_seen is not None and np.isnan(first_seen).sum() <= cold.sum()
    chosen = newest_warm_items(first_seen, cold, 0.25)
    warm = np.flatnonzero(~cold)
    assert chosen.sum() == round(0.25 * len(warm)) and not (chosen & cold).any()
    assert first_seen[chosen].min() >= first_seen[warm[~chosen[warm]]].max()  # the newest

    config = toy_config((cold_inputs / "data", cold_inputs / "sasrec"), tmp_path / "run",
                        max_train_samples=8)
    config = dataclasses.replace(config, cold=ColdConfig(content="map", newest_warm=0.25),
                                 prompt=dataclasses.replace(config.prompt,
                                                            conditioned_candidates=True))
    inputs = run_inputs(config, "cpu", None, lambda *_: None)
    assert torch.equal(inputs.cold.stand_ins, torch.as_tensor(chosen))
    # The map never saw the stand-ins' rows: fitted with them taken as cold, it is the same.
    from llara.recsys.checkpoint import load_item_embeddings
    from llara.recsys.content import ContentIndex
    from llara.recsys.content_map import cold_path
    refit = cold_path(ContentIndex.from_dataset(dataset, config.cold.min_df),
                      load_item_embeddings(cold_inputs / "sasrec"), cold | chosen,
                      config.cold.ridge)
    assert torch.allclose(refit.vectors, inputs.cold.vectors, atol=1e-6)
    model = build_llara(config, inputs.llm, inputs.tokenizer, inputs.item_table,
                        inputs.user_encoder, inputs.cold)
    stand_in, other = int(np.flatnonzero(chosen)[0]), int(warm[~chosen[warm]][0])
    ids = torch.tensor([[model.history_token, model.candidate_token, 5]])
    table = model.item_embeddings
    assert not torch.allclose(table[stand_in], model.content_vectors[stand_in])
    for slots, swapped in (([other, other], False), ([other, stand_in], True)):
        model.train()
        hybrid = model.embed(ids, torch.tensor([slots]), hybrid=True)
        model.eval()
        plain = model.embed(ids, torch.tensor([slots]), hybrid=True)
        assert torch.allclose(hybrid, plain) != swapped  # stand-ins: content in training
    # Training's user state reads stand-ins by content; validation's and ranking's by their
    # rows (the run's one recommender copy, as a checkpoint loads it).
    rows = model.training_encoder.items.embedding.weight
    ranked = model.user_encoder.items.embedding.weight
    assert torch.allclose(rows[stand_in], inputs.cold.vectors[stand_in])
    assert torch.equal(ranked[stand_in], table[stand_in])
    assert torch.equal(rows[other], ranked[other])
    ranking = run_inputs(config, "cpu", None, lambda *_: None, inference=True)
    assert torch.equal(ranking.user_encoder.items.embedding.weight, ranked)
    states = {}
    for mode in (True, False):
        model.train(mode)
        states[mode] = model.user_states(torch.tensor([[model.history_token] * 2]),
                                         torch.tensor([[stand_in, other]]))
    assert not torch.allclose(states[True], states[False])


def test_newest_warm_needs_first_interaction_times(cold_inputs, tmp_path):
    import pyarrow.parquet as pq

    data = tmp_path / "data"
    import shutil
    shutil.copytree(cold_inputs / "data", data)
    items = pq.read_table(data / "items.parquet")
    pq.write_table(items.drop(["first_seen"]), data / "items.parquet")
    config = toy_config((data, cold_inputs / "sasrec"), tmp_path / "run", max_train_samples=8)
    config = dataclasses.replace(config, cold=ColdConfig(content="map", newest_warm=0.2))
    from llara.training.inputs import run_inputs
    with pytest.raises(ConfigError, match="no first-interaction times"):
        run_inputs(config, "cpu", None, lambda *_: None)


def test_a_mixed_run_fuses_its_text_only_reading_as_chosen(cold_inputs, tmp_path):
    from llara.evaluation.predictions import predictions_table

    config = toy_config((cold_inputs / "data", cold_inputs / "sasrec"), tmp_path / "run",
                        max_train_samples=16)
    config = dataclasses.replace(
        config, cold=ColdConfig(content="map"),
        curriculum=dataclasses.replace(config.curriculum, schedule="mixed"),
        scoring=dataclasses.replace(config.scoring, text_weights=(0.0, 1.0)))
    with pytest.raises(ConfigError, match="scoring.text_weights"):
        dataclasses.replace(config, curriculum=dataclasses.replace(config.curriculum,
                                                                   schedule="direct"))
    torch.manual_seed(0)
    result = train_local(config, progress=False, log=lambda *_: None)
    trained = load_trained(result.checkpoint_dir, "cpu", log=lambda *_: None)
    fusion = trained.info["fusion"]
    assert {row["text_weight"] for row in fusion["grid"]} == {0.0, 1.0}
    assert fusion["text_weight"] in (0.0, 1.0) and "text_HitRatio@1" in trained.info["val_metrics"]
    cold = PreparedDataset.open(cold_inputs / "data").cold_mask()
    first = evaluate_trained(trained, EvalConfig(split="test", local=True), False)
    text, candidates = first["text_scores"], first["candidates"]
    assert text.shape == candidates.shape
    assert not np.allclose(text, first["ranking"].scores)  # the other prompt kind
    fused = fused_scores(first["ranking"].scores,
                         without_cold(first["rec_scores"], candidates, cold, trained.cold_level),
                         trained.fusion_weight, text, trained.text_weight)
    assert np.array_equal(ranks_of(fused, candidates, first["samples"].next),
                          first["fused_ranks"])
    # A stored choice that gives the text reading weight ranks by both readings.
    trained.info = {**trained.info, "fusion": {"weight": 0.0, "serves": "fused",
                                               "text_weight": 1.0}}
    both = evaluate_trained(trained, EvalConfig(split="test", local=True), False)
    assert np.array_equal(both["fused_ranks"], ranks_of(
        fused_scores(both["ranking"].scores, None, 0.0, both["text_scores"], 1.0),
        candidates, both["samples"].next))
    assert "text_scores" in predictions_table(both, trained.titles).column_names


def test_a_run_without_a_content_map_places_new_items_by_the_llm(cold_inputs, tmp_path):
    """A text-only run (no content map) still fuses its new candidates at a chosen level, not
    at their untrained recommender scores; a checkpoint whose choice was made on the raw
    scores (no cold level stored) keeps them."""
    import json

    config = toy_config((cold_inputs / "data", cold_inputs / "sasrec"), tmp_path / "run",
                        max_train_samples=16)
    config = dataclasses.replace(
        config, curriculum=dataclasses.replace(config.curriculum, schedule="text_only"))
    assert config.cold.content == "none"
    torch.manual_seed(0)
    result = train_local(config, progress=False, log=lambda *_: None)
    trained = load_trained(result.checkpoint_dir, "cpu", log=lambda *_: None)
    cold = PreparedDataset.open(cold_inputs / "data").cold_mask()
    assert cold.any() and np.array_equal(trained.model.cold_mask(), cold)
    assert trained.model.content_vectors is None  # nothing read by content
    fusion = trained.info["fusion"]
    assert "cold_level" in fusion
    assert {row["cold_level"] for row in fusion["grid"]} == set(config.scoring.cold_levels)
    first = evaluate_trained(trained, EvalConfig(split="test", local=True), False)
    candidates, targets = first["candidates"], first["samples"].next
    assert cold[candidates].any()
    fused = fused_scores(first["ranking"].scores,
                         without_cold(first["rec_scores"], candidates, cold, trained.cold_level),
                         trained.fusion_weight)
    assert np.array_equal(ranks_of(fused, candidates, targets), first["fused_ranks"])
    # An older checkpoint: its stored choice has no cold level, so the raw scores stay.
    run_json = result.checkpoint_dir / "run.json"
    payload = json.loads(run_json.read_text())
    payload["fusion"] = {"weight": 1.0, "serves": "fused"}
    run_json.write_text(json.dumps(payload))
    older = load_trained(result.checkpoint_dir, "cpu", log=lambda *_: None)
    assert older.model.cold_mask() is None
    again = evaluate_trained(older, EvalConfig(split="test", local=True), False)
    raw = fused_scores(again["ranking"].scores, again["rec_scores"], 1.0)
    assert np.array_equal(ranks_of(raw, candidates, targets), again["fused_ranks"])
    placed = fused_scores(again["ranking"].scores,
                          without_cold(again["rec_scores"], candidates, cold), 1.0)
    assert not np.array_equal(raw, placed)  # the two readings of the scores differ here


def test_the_fusion_choice_is_made_for_the_stated_share_of_new_targets(cold_inputs, tmp_path):
    from cli.common import fusion_note
    from llara.evaluation.fusion import new_target_weights

    config = toy_config((cold_inputs / "data", cold_inputs / "sasrec"), tmp_path / "run",
                        max_train_samples=8)
    config = dataclasses.replace(config, scoring=dataclasses.replace(config.scoring,
                                                                     new_target_share=0.1))
    torch.manual_seed(0)
    result = train_local(config, progress=False, log=lambda *_: None)
    trained = load_trained(result.checkpoint_dir, "cpu", log=lambda *_: None)
    fusion = trained.info["fusion"]
    val = PreparedDataset.open(cold_inputs / "data").samples("val")
    new_target = trained.model.cold_mask()[val.next]
    assert 0 < new_target.mean() < 1 and new_target_weights(new_target, 0.1) is not None
    assert fusion["new_target_share"] == 0.1
    assert "weighted to 0.1 of rows with a new target" in fusion_note(fusion)
