"""Local paths become absolute once, against the user's working directory; names and remote
URIs stay as they are."""

from pathlib import Path

from llara.common.paths import absolute_path, absolute_paths
from llara.config.distributed import DistributedConfig, ShardConfig
from llara.config.io import to_dict
from llara.config.prompt import PromptConfig
from llara.config.run import FinetuneConfig
from llara.config.search import SearchSettings
from llara.config.serving import ServingConfig


def test_relative_paths_resolve_against_the_given_base(tmp_path):
    assert absolute_path("runs/x", base=tmp_path) == str(tmp_path / "runs" / "x")
    assert absolute_path(Path("a/../b"), base=tmp_path) == tmp_path / "b"  # type kept
    assert absolute_path("/already/absolute", base=tmp_path) == "/already/absolute"
    assert absolute_path(None, base=tmp_path) is None
    for uri in ("s3://bucket/run", "gs://b/x", "hdfs://nn/data", "file:///tmp/x"):
        assert absolute_path(uri, base=tmp_path) == uri
    assert absolute_path("~/cache") == str(Path.home() / "cache")


def test_names_stay_names_unless_a_local_file_has_that_name(tmp_path):
    for name in ("smollm2-135m", "tiny", "HuggingFaceTB/SmolLM2-135M", "zero2"):
        assert absolute_path(name, "or_name", base=tmp_path) == name
    (tmp_path / "HuggingFaceTB" / "SmolLM2-135M").mkdir(parents=True)
    assert absolute_path("HuggingFaceTB/SmolLM2-135M", "or_name", base=tmp_path) == \
        str(tmp_path / "HuggingFaceTB" / "SmolLM2-135M")


def test_every_path_option_of_a_run_becomes_absolute_and_nothing_else_changes(tmp_path,
                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.gguf").write_bytes(b"")
    (tmp_path / "ds.json").write_text("{}")
    run = FinetuneConfig(llm="model.gguf", data_dir="data", rec_checkpoint="rec/sasrec",
                         output_dir="runs/x",
                         prompt=PromptConfig(template_file="templates.json"),
                         shards=ShardConfig(dir="shards"),
                         distributed=DistributedConfig(deepspeed="ds.json",
                                                       storage_path="ray-results"))
    before = to_dict(run)
    resolved = absolute_paths(run)
    assert to_dict(run) == before  # a copy: the caller's config is untouched
    expected = {"llm": "model.gguf", "data_dir": "data", "rec_checkpoint": "rec/sasrec",
                "output_dir": "runs/x"}
    for key, value in expected.items():
        assert getattr(resolved, key) == str(tmp_path / value)
    assert resolved.prompt.template_file == str(tmp_path / "templates.json")
    assert resolved.shards.dir == str(tmp_path / "shards")
    assert resolved.distributed.deepspeed == str(tmp_path / "ds.json")
    assert resolved.distributed.storage_path == str(tmp_path / "ray-results")
    changed = {k for k, v in to_dict(resolved).items() if v != before[k]}
    assert changed == {"llm", "data_dir", "rec_checkpoint", "output_dir", "prompt", "shards",
                       "distributed"}
    assert absolute_paths(resolved) == resolved  # idempotent

    packaged = absolute_paths(FinetuneConfig(distributed=DistributedConfig(
        storage_path="s3://bucket/ray")))
    assert packaged.llm == "smollm2-135m" and packaged.distributed.deepspeed == "zero2"
    assert packaged.distributed.storage_path == "s3://bucket/ray"


def test_search_and_serving_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_paths(SearchSettings(output_dir="runs/tune")).output_dir == \
        str(tmp_path / "runs" / "tune")
    assert absolute_paths(ServingConfig(checkpoint="runs/llara/best")).checkpoint == \
        str(tmp_path / "runs" / "llara" / "best")
