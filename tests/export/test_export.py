"""`llara export`: a self-contained folder that loads with nothing of its run left, scores as
the checkpoint did, refuses damage naming the part, and is found on the hub's cache; a plain
checkpoint whose inputs moved loads when pointed at them, if they hold the same content."""

import dataclasses
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llara.common.errors import DataError
from llara.config.cold import ColdConfig
from llara.config.data import DataConfig
from llara.config.export import ExportConfig, MovedInputs
from llara.config.recommender import RecRunConfig, RecTrainConfig
from llara.config.serving import ServingConfig
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.model.manifest import read_manifest
from llara.export.write import export_model
from llara.inference.serving import Recommender
from llara.recsys.popularity import dataset_target_counts
from llara.recsys.train import train_recommender
from llara.training.inputs import checked_run_config
from llara.training.loop import train_local
from tests.conftest import saga_titles, toy_config, write_ml100k
from tests.data.test_cold import staggered_log

QUIET = dict(log=lambda *_: None)
pytestmark = pytest.mark.slow  # every test here trains a tiny run


def train_run(root, llm: str = "tiny", **options):
    """A tiny run that reads new items (cold.content=map, the cold-item protocol): its data,
    recommender and checkpoint under `root`; `options` replace run options."""
    raw = write_ml100k(root / "raw", staggered_log(), 40, saga_titles(40))
    prepare_dataset(raw, root / "data", DataConfig(num_candidates=6, cold_items=0.2))
    for seed, name in ((0, "sasrec"), (1, "sasrec-all")):
        train_recommender(PreparedDataset.open(root / "data"),
                          RecRunConfig(train=RecTrainConfig(epochs=1, batch_size=64,
                                                            device="cpu", seed=seed)),
                          root / name, progress=False, **QUIET)
    config = toy_config((root / "data", root / "sasrec"), root / "run", max_train_samples=8)
    config = dataclasses.replace(
        config, llm=llm, cold=ColdConfig(content="map", id_dropout=0.2),
        prompt=dataclasses.replace(config.prompt, conditioned_candidates=True),
        scoring=dataclasses.replace(config.scoring, head="slot"),
        curriculum=dataclasses.replace(config.curriculum, schedule="direct"))
    return train_local(dataclasses.replace(config, **options), progress=False,
                       **QUIET).checkpoint_dir


def answers(checkpoint) -> list[list[tuple[int, float]]]:
    """The LLM's own scores (fusion off) on given lists, and the served default (retrieved
    candidates, the checkpoint's fusion), for three histories."""
    out = []
    for fusion in ("off", "auto"):
        recommender = Recommender.load(ServingConfig(checkpoint=str(checkpoint), device="cpu",
                                                     fusion=fusion), **QUIET)
        queries = [recommender.parse([1, 5, 9], candidates=[13, 17, 2, 33, 36]),
                   recommender.parse([4, 8], k=5), recommender.parse([2, 6, 10, 14], k=5)]
        out += recommender.rank(queries)
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(a checkpoint, its export) of one run that stays in place."""
    root = tmp_path_factory.mktemp("export")
    checkpoint = train_run(root)
    export_model(checkpoint, root / "model", ExportConfig(), **QUIET)
    return checkpoint, root / "model"


def test_an_export_moved_away_scores_as_before_with_its_run_deleted(tmp_path):
    root = tmp_path / "work"
    checkpoint = train_run(root)
    before = answers(checkpoint)
    export_model(checkpoint, root / "models" / "sagas", ExportConfig(), **QUIET)
    shutil.copytree(root / "models" / "sagas", tmp_path / "elsewhere" / "sagas")
    shutil.rmtree(root)  # the data, the recommender, the run and the export's first place
    after = answers(tmp_path / "elsewhere" / "sagas")
    for old, new in zip(before, after):
        assert [item for item, _ in old] == [item for item, _ in new]
        # The same computation on the same inputs: the same numbers.
        assert [score for _, score in old] == pytest.approx([score for _, score in new],
                                                           abs=1e-6)
    # New items are read by their text as they were: the content map fits on the catalogue.
    assert any(item >= 32 for ranking in after for item, _ in ranking)


def test_the_export_holds_every_part_with_relative_paths_and_a_card(exported):
    checkpoint, model = exported
    run = json.loads((model / "run.json").read_text())
    assert run["relative_to"] == "checkpoint"
    assert (run["config"]["data_dir"], run["config"]["rec_checkpoint"]) == ("data",
                                                                            "recommender")
    assert run["config"]["llm"] == "tiny" and run["config"]["output_dir"] == "."
    assert run["trained_inputs"] == json.loads((checkpoint / "run.json").read_text())["inputs"]
    manifest = read_manifest(model)
    assert [p["name"] for p in manifest["parts"]] == [
        "adapter", "projector", "head", "run config", "recommender", "catalogue"]
    assert not (model / "data" / "train.parquet").exists()
    card = (model / "README.md").read_text()
    for words in ("## Metrics", "## Intended use", "## Limits", "liao2024llara",
                  "llara serve --checkpoint model", "Cold-item protocol"):
        assert words in card
    # Every user is a pseudonym; the rows and their grouping are kept.
    source = PreparedDataset.open(checkpoint.parents[1] / "data").samples("test")
    rows = PreparedDataset.open(model / "data").samples("test")
    assert np.array_equal(rows.next, source.next) and np.array_equal(rows.history,
                                                                     source.history)
    assert all(u.startswith("user-") for u in rows.user)
    assert len(set(rows.user)) == len(set(source.user))


def test_the_catalogue_keeps_what_ranking_reads_of_training(exported):
    checkpoint, model = exported
    source = PreparedDataset.open(checkpoint.parents[1] / "data")
    catalogue = PreparedDataset.open(model / "data")
    assert catalogue.catalogue_only and not source.catalogue_only
    assert np.array_equal(catalogue.cold_mask(), source.cold_mask())
    assert np.array_equal(dataset_target_counts(catalogue), dataset_target_counts(source))
    with pytest.raises(DataError, match="no train rows"):
        catalogue.samples("train")


@pytest.mark.parametrize("damage, part", [
    (lambda m: _flip(m / "projector.safetensors"), "projector"),
    (lambda m: _flip(m / "adapter" / "adapter_model.safetensors"), "adapter"),
    (lambda m: _flip(m / "recommender" / "item_embeddings.safetensors"), "recommender"),
    (lambda m: (m / "head.safetensors").unlink(), "head"),
    (lambda m: (m / "data" / "notes.txt").write_text("x"), "catalogue"),
    (lambda m: (m / "run.json").write_text((m / "run.json").read_text().replace(
        '"ridge": 1.0', '"ridge": 2.0')), "run config"),
])
def test_a_damaged_or_altered_export_is_refused_naming_the_part(exported, tmp_path, damage,
                                                                 part):
    model = tmp_path / "model"
    shutil.copytree(exported[1], model)
    damage(model)
    with pytest.raises(DataError, match=f"part '{part}'") as caught:
        Recommender.load(ServingConfig(checkpoint=str(model), device="cpu"), **QUIET)
    assert "\n" not in str(caught.value)


def test_the_model_card_is_no_part_editing_it_changes_nothing(exported, tmp_path):
    shutil.copytree(exported[1], tmp_path / "model")
    (tmp_path / "model" / "README.md").write_text("our notes on this model")
    checked_run_config(tmp_path / "model", **QUIET)


def _flip(path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def test_evaluate_runs_on_the_export_alone_and_matches_the_checkpoint(exported):
    from llara.config.evaluation import EvalConfig
    from llara.inference import evaluation_report
    from llara.inference.report import evaluate_here
    from llara.model import stored_fusion

    checkpoint, model = exported
    evaluation = EvalConfig(split="test", local=True, device="cpu")
    reports = []
    for path in (checkpoint, model):
        run = checked_run_config(path, **QUIET)
        scored = evaluate_here(path, evaluation, run, None, False, lambda *_: None)
        reports.append(evaluation_report(scored, run, stored_fusion(path), evaluation))
    assert set(reports[0]["metrics"]) == {"score", "fused", "recommender", "content"}
    for ranking, metrics in reports[0]["metrics"].items():
        assert metrics == pytest.approx(reports[1]["metrics"][ranking], abs=1e-9), ranking
    # The pseudonymous users group the rows as the real ones did: the same intervals.
    assert reports[0]["comparison"]["users"] == reports[1]["comparison"]["users"]
    assert reports[0]["comparison"]["against"] == reports[1]["comparison"]["against"]
    assert reports[0]["cold"] == reports[1]["cold"]


def test_an_export_without_evaluation_rows_says_where_they_are(exported, tmp_path):
    checkpoint, _ = exported
    export_model(checkpoint, tmp_path / "bare", ExportConfig(eval_rows=False), **QUIET)
    catalogue = PreparedDataset.open(tmp_path / "bare" / "data")
    with pytest.raises(DataError, match="no test rows.*--data DIR"):
        catalogue.samples("test")
    # Pointed at the whole prepared dataset, it evaluates: the digest it trained on matches.
    moved = MovedInputs(data_dir=str(checkpoint.parents[1] / "data"))
    config = checked_run_config(tmp_path / "bare", moved=moved, **QUIET)
    assert PreparedDataset.open(config.data_dir).has("train")


def test_export_refuses_a_folder_it_did_not_write_and_replaces_its_own(exported, tmp_path):
    checkpoint, _ = exported
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(Exception, match="refusing to replace"):
        export_model(checkpoint, tmp_path / "mine", ExportConfig(), **QUIET)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"
    export_model(checkpoint, tmp_path / "again", ExportConfig(), **QUIET)
    export_model(checkpoint, tmp_path / "again", ExportConfig(name="sagas"), **QUIET)
    assert read_manifest(tmp_path / "again")["name"] == "sagas"
    with pytest.raises(DataError, match="inside it"):
        export_model(checkpoint, checkpoint / "export", ExportConfig(), **QUIET)


def test_a_checkpoint_whose_inputs_moved_loads_when_pointed_at_them(tmp_path):
    root = tmp_path / "work"
    checkpoint = train_run(root)
    before = answers(checkpoint)
    shutil.move(root / "data", tmp_path / "data-moved")
    shutil.move(root / "sasrec", tmp_path / "sasrec-moved")
    with pytest.raises(DataError, match="is not at .*--data DIR"):
        checked_run_config(checkpoint, **QUIET)
    moved = MovedInputs(data_dir=str(tmp_path / "data-moved"),
                        rec_checkpoint=str(tmp_path / "sasrec-moved"))
    config = checked_run_config(checkpoint, moved=moved, **QUIET)
    served = Recommender.load(ServingConfig(checkpoint=str(checkpoint), device="cpu",
                                            fusion="off", inputs=moved), run=config, **QUIET)
    (ranking,) = served.rank([served.parse([1, 5, 9], candidates=[13, 17, 2, 33, 36])])
    assert [item for item, _ in ranking] == [item for item, _ in before[0]]
    assert [score for _, score in ranking] == pytest.approx([s for _, s in before[0]], abs=1e-6)
    # Another dataset in the moved place is refused, named, before anything loads.
    items = tmp_path / "data-moved" / "items.parquet"
    table = pq.read_table(items)
    titles = pa.array(table["title"].to_pylist()[::-1])
    pq.write_table(table.set_column(table.column_names.index("title"), "title", titles), items)
    with pytest.raises(DataError, match="inputs changed since it was trained: the prepared "
                       "dataset"):
        checked_run_config(checkpoint, moved=moved, **QUIET)


def test_a_stacking_run_with_its_own_templates_takes_both_along(tmp_path):
    from llara.config.prompt import PromptConfig

    (tmp_path / "templates.txt").write_text(
        "Bought: [HistoryHere]. Which of [CansHere] next? Answer:\n")
    root = tmp_path / "work"
    prompt = PromptConfig(min_history=2, template_file=str(tmp_path / "templates.txt"),
                          conditioned_candidates=True)
    checkpoint = train_run(root, fusion_rec_checkpoint=str(root / "sasrec-all"), prompt=prompt)
    before = answers(checkpoint)
    export_model(checkpoint, tmp_path / "model", ExportConfig(), **QUIET)
    parts = {p["name"]: p["path"] for p in read_manifest(tmp_path / "model")["parts"]}
    assert parts["fusion recommender"] == "fusion-recommender"
    assert parts["prompt templates"] == "templates"
    run = json.loads((tmp_path / "model" / "run.json").read_text())["config"]
    assert run["prompt"]["template_file"] == "templates/templates.txt"
    shutil.rmtree(root)
    (tmp_path / "templates.txt").unlink()
    after = answers(tmp_path / "model")
    for old, new in zip(before, after):
        assert [i for i, _ in old] == [i for i, _ in new]
        assert [s for _, s in old] == pytest.approx([s for _, s in new], abs=1e-6)


def test_an_export_exported_again_keeps_what_it_was_trained_on(exported, tmp_path):
    checkpoint, model = exported
    export_model(model, tmp_path / "again", ExportConfig(), **QUIET)
    first = json.loads((model / "run.json").read_text())
    again = json.loads((tmp_path / "again" / "run.json").read_text())
    assert again["trained_inputs"] == first["trained_inputs"]
    assert again["inputs"]["data"] == first["inputs"]["data"]  # the same catalogue
    # Still pointable at the whole prepared dataset it was trained on.
    config = checked_run_config(tmp_path / "again", moved=MovedInputs(
        data_dir=str(checkpoint.parents[1] / "data")), **QUIET)
    assert PreparedDataset.open(config.data_dir).has("train")


@pytest.mark.parametrize("edit, words", [
    (lambda run: run["config"].update(data_dir="../data"), "names data_dir ../data, outside"),
    (lambda run: run["config"].update(rec_checkpoint="/etc"), "names rec_checkpoint /etc"),
    (lambda run: run["config"].update(llm="/opt/models/llm"), "names llm /opt/models/llm"),
])
def test_an_exports_run_config_reads_nothing_outside_it(exported, tmp_path, edit, words):
    """Even with export.json's digests made to match (they are no signature), run.json may
    not send the loader outside the folder."""
    from llara.model.manifest import part_digest

    model = tmp_path / "model"
    shutil.copytree(exported[1], model)
    run = json.loads((model / "run.json").read_text())
    edit(run)
    (model / "run.json").write_text(json.dumps(run))
    manifest = json.loads((model / "export.json").read_text())
    for part in manifest["parts"]:
        part["digest"] = part_digest(model / part["path"])
    (model / "export.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=words):
        checked_run_config(model, **QUIET)


def test_a_part_left_off_the_list_or_a_link_is_refused(exported, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(exported[1], model)
    manifest = json.loads((model / "export.json").read_text())
    listed = dict(manifest, parts=[p for p in manifest["parts"] if p["name"] != "recommender"])
    (model / "export.json").write_text(json.dumps(listed))
    with pytest.raises(DataError, match="lists no part 'recommender'"):
        checked_run_config(model, **QUIET)
    (model / "export.json").write_text(json.dumps(manifest))
    (model / "data" / "elsewhere.parquet").symlink_to(model / "data" / "items.parquet")
    with pytest.raises(DataError, match="part 'catalogue' \\(data\\) holds a symbolic link"):
        checked_run_config(model, **QUIET)
