"""A real local Ray (loopback, 2 CPUs) and a toy platform run: prepared data, a SASRec
checkpoint, and a FinetuneConfig on the tiny LLM."""

from pathlib import Path

import pytest

from llara.config import DataConfig, RecRunConfig, RecTrainConfig
from llara.data.prepare import PreparedDataset, prepare_dataset
from llara.finetune_config import (DistributedConfig, FinetuneConfig, FinetuneTrainConfig,
                                   PromptConfig, ShardConfig)
from llara.recsys.train import train_recommender
from tests.conftest import synthetic_log, write_ml100k


@pytest.fixture(scope="session")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             configure_logging=False, log_to_driver=False, object_store_memory=200 * 2**20)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def toy_inputs(tmp_path_factory) -> tuple[Path, Path]:
    """(prepared dataset dir, SASRec checkpoint dir) on a 40-item synthetic log."""
    root = tmp_path_factory.mktemp("toy")
    raw = write_ml100k(root / "raw", synthetic_log(num_users=60), 40)
    prepare_dataset(raw, root / "data", DataConfig(num_candidates=10))
    train_recommender(PreparedDataset.open(root / "data"),
                      RecRunConfig(train=RecTrainConfig(epochs=1, batch_size=64, device="cpu")),
                      root / "sasrec", progress=False, log=lambda *_: None)
    return root / "data", root / "sasrec"


def toy_config(inputs, output: Path, **train) -> FinetuneConfig:
    data, rec = inputs
    options = dict(epochs=1, batch_size=8, micro_batch_size=4, lr=1e-3,
                   max_eval_samples=8, device="cpu")
    options.update(train)
    return FinetuneConfig(
        llm="tiny", data_dir=str(data), rec_checkpoint=str(rec), output_dir=str(output),
        prompt=PromptConfig(min_history=2), train=FinetuneTrainConfig(**options),
        shards=ShardConfig(rows_per_shard=64, concurrency=1),
        distributed=DistributedConfig(num_workers=1, checkpoint_every=2))
