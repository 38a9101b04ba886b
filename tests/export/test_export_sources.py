"""Where an exported model comes from and what it needs: the base LLM copied in or named (a
different copy is reported), the hub's cache by id, and the `llara export` command's lines."""

import json
import shutil

import pytest

from llara.config.export import ExportConfig
from llara.model.hub import hub_reference, resolve_model
from llara.model.manifest import read_manifest
from llara.export.write import export_model
from llara.model.llm import load_llm
from llara.common.errors import DataError
from tests.cli.test_cli import _llara
from tests.cli.test_serve_cli import ranking_rows
from tests.export.test_export import QUIET, answers, train_run

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def write_llm(folder, hidden: int = 32) -> str:
    """A tiny Llama saved as a Hugging Face folder, as a user's own base LLM."""
    import torch

    from llara.model.llm import tiny_llm

    _, tokenizer = load_llm("tiny")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(hidden)
        model = tiny_llm(len(tokenizer), hidden_size=hidden)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.slow
def test_an_export_with_its_llm_loads_with_the_llm_deleted(tmp_path):
    root = tmp_path / "work"
    llm = write_llm(tmp_path / "my-llm")
    checkpoint = train_run(root, llm=llm)
    before = answers(checkpoint)
    export_model(checkpoint, tmp_path / "model", ExportConfig(include_llm=True), **QUIET)
    manifest = read_manifest(tmp_path / "model")
    assert manifest["base_llm"]["included"] and manifest["parts"][-1]["name"] == "base LLM"
    shutil.rmtree(tmp_path / "my-llm")
    shutil.rmtree(root)
    after = answers(tmp_path / "model")
    for old, new in zip(before, after):
        assert [i for i, _ in old] == [i for i, _ in new]
        assert [s for _, s in old] == pytest.approx([s for _, s in new], abs=1e-6)
    (tmp_path / "model" / "llm" / "config.json").write_text("{}")
    with pytest.raises(DataError, match="part 'base LLM'"):
        answers(tmp_path / "model")


@pytest.mark.slow
def test_a_named_llm_that_differs_from_the_recorded_one_is_reported(tmp_path):
    llm = write_llm(tmp_path / "my-llm")
    checkpoint = train_run(tmp_path / "work", llm=llm)
    lines = []
    export_model(checkpoint, tmp_path / "model", ExportConfig(), log=lines.append)
    assert any("stays out of the export" in line for line in lines)
    run = json.loads((tmp_path / "model" / "run.json").read_text())
    assert run["config"]["llm"] == "my-llm"  # its name, not where it was
    shutil.rmtree(tmp_path / "work" / "data")  # nothing of the run is read
    from llara.config.export import MovedInputs
    from llara.config.serving import ServingConfig
    from llara.inference.serving import Recommender

    with pytest.raises(DataError, match="base LLM \\(my-llm\\) was a local folder.*--llm PATH"):
        Recommender.load(ServingConfig(checkpoint=str(tmp_path / "model"), device="cpu"))
    settings = ServingConfig(checkpoint=str(tmp_path / "model"), device="cpu",
                             inputs=MovedInputs(llm=llm))
    warned = []
    Recommender.load(settings, log=warned.append)
    assert not any("differs" in line for line in warned)
    write_llm(tmp_path / "my-llm", hidden=16)  # another model where the first one was
    with pytest.raises(DataError, match="adapter"):  # it does not fit the adapter
        Recommender.load(settings, log=warned.append)
    assert any("differs from the one this model was exported with" in line for line in warned)


@pytest.mark.parametrize("text, reference", [
    ("someone/sagas", ("someone/sagas", None)),
    ("hf://someone/sagas@v2", ("someone/sagas", "v2")),
    ("runs/shop/best", None),
    ("best", None),
])
def test_hub_references(text, reference):
    assert hub_reference(text) == reference


def test_a_bad_hub_reference_or_missing_folder_is_one_clear_line(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="is not a hub reference"):
        hub_reference("hf://just-a-name")
    with pytest.raises(DataError, match="no such checkpoint folder"):
        resolve_model(tmp_path / "runs" / "a" / "best")
    # A mistyped folder under one that exists here stays a local path: never fetched.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert hub_reference("models/shop") is None
    with pytest.raises(DataError, match="models/shop: no such checkpoint folder"):
        resolve_model("models/shop")
    assert hub_reference("someone/shop") == ("someone/shop", None)


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """An export placed in a Hugging Face hub cache as `snapshot_download` leaves one."""
    root = tmp_path_factory.mktemp("hub")
    checkpoint = train_run(root / "work")
    repo = root / "cache" / "models--someone--sagas"
    export_model(checkpoint, repo / "snapshots" / COMMIT, ExportConfig(name="sagas"), **QUIET)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return checkpoint, root / "cache"


@pytest.mark.slow
def test_a_hub_id_is_read_from_the_hub_cache_by_every_command(hub_cache, tmp_path):
    checkpoint, cache = hub_cache
    offline = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    args = ("--history", "1, 5, 9", "--candidates", "13, 17, 2, 33", "--device", "cpu")
    local = ranking_rows(_llara("recommend", "--checkpoint", checkpoint, *args))
    for source in ("someone/sagas", f"hf://someone/sagas@{COMMIT}"):
        done = _llara("recommend", "--checkpoint", source, *args, cwd=tmp_path, env=offline)
        assert ranking_rows(done) == local
        assert "score by sagas@" in done.stdout  # an export goes by its name
    done = _llara("recommend", "--checkpoint", "someone/other", *args, cwd=tmp_path,
                  env=offline)
    assert done.returncode == 2
    assert "hf://someone/other: is no local folder, and the hub cannot give it" in done.stdout
    assert len(done.stdout.strip().splitlines()) == 2  # the fetch line and the error


@pytest.mark.slow
def test_the_export_command_prints_its_parts_and_refuses_in_one_line(hub_cache, tmp_path):
    checkpoint, _ = hub_cache
    done = _llara("export", checkpoint, "models/sagas", "--no-eval-rows", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for words in ("adapter", "catalogue", "recommender", "model card: models/sagas/README.md",
                  "rows: 0 validation, 0 test"):
        assert words in done.stdout
    shutil.copyfile(tmp_path / "models" / "sagas" / "head.safetensors",
                    tmp_path / "models" / "sagas" / "projector.safetensors")
    done = _llara("recommend", "--checkpoint", "models/sagas", "--history", "1, 5",
                  cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout.strip().count("\n") == 0
    assert "part 'projector' (projector.safetensors) is damaged or was altered" in done.stdout
