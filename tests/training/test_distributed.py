"""DeepSpeed on CPU (gloo): the pickle-free optimizer checkpoint continues a run exactly."""

import os
import socket
import subprocess
import sys

import pytest
import torch

from llara.common.errors import ConfigError
from llara.config.distributed import DistributedConfig
from llara.config.run import FinetuneConfig
from llara.config.training import FinetuneTrainConfig
from llara.training.deepspeed import deepspeed_config, step_plan
from llara.training.state import load_state_tree, load_trainable, save_state_tree, save_trainable
from llara.training.step import DeepSpeedBackend, train_step
from tests.model.test_llara import make_batch, make_model


@pytest.fixture(scope="module")
def process_group():
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"LOCAL_RANK": "0", "RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port)}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0,
                                world_size=1)
        yield
        dist.destroy_process_group()


def engine_for(model, config):
    import deepspeed

    params = model.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=config.train.lr)
    engine, _, _, scheduler = deepspeed.initialize(
        model=model, optimizer=optimizer, model_parameters=params,
        lr_scheduler=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0 / (1 + s)),
        config=deepspeed_config(config, step_plan(config, 8, 1), bf16=False),
        dist_init_required=False)
    return engine, scheduler


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_optimizer_state_round_trip_continues_the_run(process_group, tmp_path, stage):
    config = FinetuneConfig(train=FinetuneTrainConfig(batch_size=4, micro_batch_size=2, lr=1e-2),
                            distributed=DistributedConfig(deepspeed=stage))
    model, _ = make_model()
    batch = make_batch(model)
    micro = [batch, batch]  # two micro-batches of 2 = one step of 4
    engine, scheduler = engine_for(model, config)
    backend = DeepSpeedBackend(engine)
    for _ in range(2):
        train_step(engine, micro, True, backend, "fp32", "cpu")
    save_trainable(model, tmp_path / "trainable.safetensors")
    save_state_tree(engine.optimizer.state_dict(), tmp_path / "optimizer")
    rng = torch.get_rng_state()  # LoRA dropout draws the same masks in both continuations
    straight = [train_step(engine, micro, True, backend, "fp32", "cpu")[0] for _ in range(2)]

    resumed, _ = make_model()
    with torch.no_grad():
        for p in resumed.trainable_parameters():
            p.normal_()  # forget the initial weights: only the files may restore them
    load_trainable(resumed, tmp_path / "trainable.safetensors")
    engine2, scheduler2 = engine_for(resumed, config)
    engine2.optimizer.load_state_dict([load_state_tree(tmp_path / "optimizer")],
                                      load_optimizer_states=True, load_from_fp32_weights=True)
    scheduler2.load_state_dict(scheduler.state_dict() | {"last_epoch": 2, "_step_count": 3})
    backend2 = DeepSpeedBackend(engine2)
    torch.set_rng_state(rng)
    again = [train_step(engine2, micro, True, backend2, "fp32", "cpu")[0] for _ in range(2)]
    assert again == pytest.approx(straight, rel=1e-5)


def test_plan_and_config_errors_name_the_option():
    config = FinetuneConfig(train=FinetuneTrainConfig(batch_size=8, micro_batch_size=4))
    plan = step_plan(config, train_rows=100, world_size=2)
    assert (plan.per_worker_batch, plan.micro_per_step, plan.steps_per_epoch) == (4, 1, 12)
    assert deepspeed_config(config, plan, bf16=False)["gradient_accumulation_steps"] == 1
    with pytest.raises(ConfigError, match="train.batch_size.*multiple"):
        step_plan(config, 100, world_size=3)
    with pytest.raises(ConfigError, match="train.batch_size.*exceeds"):
        step_plan(config, 7, world_size=1)
    config.distributed.deepspeed = "zero9"
    with pytest.raises(ConfigError, match="distributed.deepspeed.*zero2"):
        deepspeed_config(config, plan, bf16=False)


def test_one_process_skips_the_shared_memory_all_reduce_build(tmp_path):
    """One worker has nothing to all-reduce: DeepSpeed's CPU shared-memory op is not built (it
    cost ~35 s of a fresh demo's training minutes); two workers still get it. In a fresh
    process with an empty extensions folder, since the switch holds for the process."""
    code = ("from llara.training.deepspeed import deepspeed_jit_ops\n"
            "import importlib\n"  # deepspeed.comm's own `torch` name hides the submodule
            "comm = importlib.import_module('deepspeed.comm.torch')\n"
            "two = deepspeed_jit_ops(2)\n"
            "print('RESULT', two, deepspeed_jit_ops(1), comm.build_shm_op())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=os.environ | {"TORCH_EXTENSIONS_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    result = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert result == ["RESULT ['deepspeed_shm_comm'] [] None"]
    assert not list(tmp_path.iterdir())  # nothing compiled
