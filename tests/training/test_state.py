"""Saved training state is data: loading it imports and calls nothing a file names."""

import json

import pytest
import torch
from safetensors.torch import save_file

from llara.common.errors import DataError
from llara.training.state import (KNOWN_HOLDERS, TrainState, check_scheduler_state,
                                  load_state_tree, save_state_tree)


def write_state(stem, skeleton, tensors=None):
    save_file(tensors or {"t0": torch.zeros(1)}, str(stem.with_suffix(".safetensors")))
    stem.with_suffix(".json").write_text(json.dumps(skeleton))


def test_a_file_that_names_a_function_runs_nothing(tmp_path, monkeypatch):
    """The reproduction of issue 42: an `__enum__` naming os.system through a DeepSpeed
    module used to call it."""
    monkeypatch.chdir(tmp_path)
    stem = tmp_path / "opt"
    write_state(stem, {"__enum__": "deepspeed.launcher.runner:os.system", "value": "touch pwned"})
    with pytest.raises(DataError, match="not one llara restores"):
        load_state_tree(stem)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("skeleton, problem", [
    ({"__object__": "deepspeed.launcher.runner:os", "attributes": {"__items__": []}},
     "not one llara restores"),
    ({"__namedtuple__": "collections:namedtuple", "fields": ["x"]}, "never writes"),
    ({"__object__": "deepspeed.runtime.fp16.loss_scaler:LossScaler",
      "attributes": {"has_overflow": 1}}, "attributes other than"),
    ({"__object__": "deepspeed.runtime.fp16.loss_scaler:LossScaler",
      "attributes": {"cur_scale": {"__tensor__": "t0"}}}, "attributes other than"),
    ({"__enum__": "deepspeed.runtime.zero.config:ZeroStageEnum", "value": 7}, "not a value"),
    ({"__tensor__": "t9"}, "does not hold"),
    ({"__items__": [[{"__tuple__": [[1]]}, 2]]}, "not a plain value"),
    ({"__items__": [[1]]}, "not a \\[key, value\\] pair"),
    ({"__tensor__": "t0", "extra": 1}, "never writes"),
])
def test_anything_the_writer_never_writes_is_refused_by_name(tmp_path, skeleton, problem):
    stem = tmp_path / "opt"
    write_state(stem, skeleton)
    with pytest.raises(DataError, match=problem):
        load_state_tree(stem)


def test_deepspeeds_known_structures_round_trip(tmp_path):
    from deepspeed.runtime.fp16.loss_scaler import LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    tree = {"loss_scaler": LossScaler(2.0), "zero_stage": ZeroStageEnum.gradients,
            "map": [{"w": fragment_address(numel=4, start=8)}], "betas": (0.9, 0.99),
            0: {"exp_avg": torch.arange(3.0)}}
    save_state_tree(tree, tmp_path / "opt")
    back = load_state_tree(tmp_path / "opt")
    assert isinstance(back["loss_scaler"], LossScaler) and back["loss_scaler"].cur_scale == 2.0
    assert back["zero_stage"] is ZeroStageEnum.gradients
    assert (back["map"][0]["w"].numel, back["map"][0]["w"].start) == (4, 8)
    assert back["betas"] == (0.9, 0.99) and torch.equal(back[0]["exp_avg"], torch.arange(3.0))
    assert set(KNOWN_HOLDERS) == {"deepspeed.runtime.fp16.loss_scaler:LossScaler",
                                  "deepspeed.utils.tensor_fragment:fragment_address"}


def test_saving_an_unknown_structure_fails_before_anything_is_written(tmp_path):
    class Holder:
        def __init__(self):
            self.x = 1

    with pytest.raises(TypeError, match="KNOWN_HOLDERS"):
        save_state_tree({"h": Holder()}, tmp_path / "opt")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("payload, problem", [
    ({"step": "1"}, "'step' is '1'"), ({"step": 1.5}, "'step' is 1.5"),
    ({"best_hr1": float("inf")}, "'best_hr1'"), ({"steps": 1}, "holds \\['steps'\\]"),
    ([1], "holds list"),
])
def test_a_trainer_state_of_other_shapes_is_refused(tmp_path, payload, problem):
    (tmp_path / "trainer_state.json").write_text(json.dumps(payload))
    with pytest.raises(DataError, match=problem):
        TrainState.load(tmp_path)
    TrainState(step=3, best_hr1=0.5).save(tmp_path)
    assert TrainState.load(tmp_path) == TrainState(step=3, best_hr1=0.5)


def test_a_scheduler_state_carries_only_the_live_schedulers_plain_keys():
    model = torch.nn.Linear(2, 2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(torch.optim.AdamW(model.parameters()),
                                                  lambda s: 1.0)
    current = scheduler.state_dict()
    assert check_scheduler_state(json.loads(json.dumps(current)), current, "s.json") == current
    with pytest.raises(DataError, match="holds"):
        check_scheduler_state({**current, "optimizer": 1}, current, "s.json")
    with pytest.raises(DataError, match="lr_lambdas"):
        check_scheduler_state({**current, "lr_lambdas": [{"__code__": 1}]}, current, "s.json")
    with pytest.raises(DataError, match="base_lrs"):
        check_scheduler_state({**current, "base_lrs": ["x"]}, current, "s.json")


@pytest.mark.parametrize("text", [b"\xff\xfe", b"[" * 100000, b'{"t0": '])
def test_every_saved_file_of_a_run_reads_as_one_line_when_damaged(tmp_path, text):
    """Bytes that are not UTF-8, JSON nested past the parser's depth, a cut file: each reader
    of a file a run or a shared store provides says which file, in one line."""
    from llara.data.prepare import PreparedDataset
    from llara.model.checkpoint import read_run_json
    from llara.recsys.checkpoint import read_header
    from llara.training.run_record import RECORD_FILE, RunRecord
    from llara.training.shards import ShardManifest

    for name, read in (("trainer_state.json", lambda: TrainState.load(tmp_path)),
                       ("opt.json", lambda: load_state_tree(tmp_path / "opt")),
                       ("run.json", lambda: read_run_json(tmp_path)),
                       ("dataset.json", lambda: PreparedDataset.open(tmp_path)),
                       ("config.json", lambda: read_header(tmp_path)),
                       ("manifest.json", lambda: ShardManifest.read(tmp_path)),
                       (RECORD_FILE, lambda: RunRecord.read(tmp_path))):
        if name == "opt.json":
            save_file({"t0": torch.zeros(1)}, str(tmp_path / "opt.safetensors"))
        (tmp_path / name).write_bytes(text)
        with pytest.raises(DataError) as caught:
            read()
        assert name.split(".")[0] in str(caught.value) and "\n" not in str(caught.value)
