"""Our errors survive Ray: they pickle with their message and attributes, and the one we raised
is found again inside whatever Ray wrapped it in (task, actor, Ray Data, Ray Train, Serve)."""

import pickle

import pytest

import llara.common.atomic
import llara.common.wheels
import llara.data.fetch
import llara.data.items
import llara.data.pickles
import llara.inference.new_items
import llara.inference.serving
import llara.model.llm
import llara.prompts.tokenize
import llara.training.build_lock
import llara.ray_jobs.submit
from llara.common.errors import (ConfigError, DataError, LlaraError, error_line, find_llara_error,
                                 llara_error_in_text)

EXAMPLES = {
    LlaraError: lambda: LlaraError("plain message"),
    ConfigError: lambda: ConfigError("invalid 'train.lr': must be positive"),
    DataError: lambda: DataError("runs/demo/data", "no dataset.json here", line=3,
                                 column="next", expected="a prepared dataset"),
    llara.prompts.tokenize.PromptTooLong:
        lambda: llara.prompts.tokenize.PromptTooLong("prompt", "too long"),
    llara.inference.serving.RequestError:
        lambda: llara.inference.serving.RequestError("history", "empty", 404),
    llara.model.llm.ModelLoadError:
        lambda: llara.model.llm.ModelLoadError("GGUF file x.gguf not found"),
    llara.common.wheels.WheelDownloadError:
        lambda: llara.common.wheels.WheelDownloadError("pip failed"),
    llara.data.fetch.FetchError: lambda: llara.data.fetch.FetchError("no network"),
    llara.data.pickles.RefusedPickle:
        lambda: llara.data.pickles.RefusedPickle("train_data.df", "refers to os.system"),
    llara.ray_jobs.submit.ClusterError: lambda: llara.ray_jobs.submit.ClusterError("head is down"),
    llara.data.items.ItemLookupError:
        lambda: llara.data.items.ItemLookupError("'Hamlet' names 2 items (ids 5, 6)"),
    llara.inference.new_items.NewItemError:
        lambda: llara.inference.new_items.NewItemError("items[0]: title must be a string"),
    llara.common.atomic.ForeignFilesError:
        lambda: llara.common.atomic.ForeignFilesError("data/ml: refusing to replace"),
    llara.training.build_lock.StaleBuildLock:
        lambda: llara.training.build_lock.StaleBuildLock("lock: a build lock left behind"),
}


def all_subclasses(cls):
    found = {cls}
    for sub in cls.__subclasses__():
        found |= all_subclasses(sub)
    return found


def test_every_error_class_survives_pickling_with_its_message_and_fields():
    # A new error class must be added here, so that this test covers it too.
    assert all_subclasses(LlaraError) <= set(EXAMPLES)
    for cls, make in EXAMPLES.items():
        error = make()
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is cls and str(copy) == str(error) and copy.args == error.args
        assert vars(copy) == vars(error)
    data = pickle.loads(pickle.dumps(EXAMPLES[DataError]()))
    assert (data.path, data.line, data.column) == ("runs/demo/data", 3, "next")
    assert str(data) == ("runs/demo/data, line 3, column 'next': no dataset.json here "
                         "(expected a prepared dataset)")
    request = pickle.loads(pickle.dumps(EXAMPLES[llara.inference.serving.RequestError]()))
    assert (request.field, request.status) == ("history", 404)


def test_found_through_plain_exception_chains_and_worker_maps():
    inner = DataError("data", "missing")
    try:
        try:
            raise inner
        except DataError as err:
            raise RuntimeError("wrapped") from err
    except RuntimeError as outer:
        assert find_llara_error(outer) is inner

    class WorkerGroupLike(Exception):
        def __init__(self):
            super().__init__("Training failed due to worker errors")
            self.worker_failures = {1: ValueError("other"), 0: inner}

    assert find_llara_error(WorkerGroupLike()) is inner
    assert find_llara_error(ValueError("nothing of ours")) is None
    assert find_llara_error(None) is None
    assert error_line(DataError("x", "first\nRay's retry advice"), remote=True) == "x: first"


def test_serve_tracebacks_as_text():
    text = ("The deployment failed to start 3 times in a row.\nTraceback (most recent call "
            "last):\n  File \"app.py\", line 55, in __init__\nllara.model.llm.ModelLoadError: GGUF "
            "file /tmp/gone.gguf not found\n\nray.exceptions.RayTaskError: ...")
    assert llara_error_in_text(text) == "GGUF file /tmp/gone.gguf not found"
    assert llara_error_in_text("ValueError: not ours") is None
    assert llara_error_in_text(None) is None


MESSAGE = "worker/path: no dataset.json here (expected a prepared dataset)"


def remote_code():
    """Code for Ray to run, built here so that Ray ships it by value (workers do not import
    the tests package)."""
    def raise_data_error(*_):
        raise DataError("worker/path", "no dataset.json here", expected="a prepared dataset")

    class FailsInConstructor:
        def __init__(self):
            raise_data_error()

        def __call__(self, batch):
            return batch

    class FailsOnBatch:
        def __call__(self, batch):
            raise_data_error()

    return raise_data_error, FailsInConstructor, FailsOnBatch


@pytest.mark.slow
def test_found_behind_real_ray_task_actor_and_data_errors(ray_local):
    from llara.ray_jobs.session import quiet_ray_data

    ray = ray_local
    raise_data_error, fails_in_constructor, fails_on_batch = remote_code()
    quiet_ray_data()  # what every CLI verb's connect() sets up
    with pytest.raises(Exception) as caught:
        ray.get(ray.remote(num_cpus=0.5)(raise_data_error).remote())
    assert error_line(find_llara_error(caught.value), remote=True) == MESSAGE

    actor = ray.remote(num_cpus=0.5)(fails_in_constructor).remote()
    with pytest.raises(Exception) as caught:
        ray.get(actor.__call__.remote(1))
    assert error_line(find_llara_error(caught.value), remote=True) == MESSAGE
    ray.kill(actor)

    for udf in (fails_in_constructor, fails_on_batch):
        stream = ray.data.range(4).map_batches(udf, compute=ray.data.ActorPoolStrategy(size=1),
                                               num_cpus=0.5)
        with pytest.raises(Exception) as caught:
            stream.take_all()
        found = find_llara_error(caught.value)
        assert found is not None, repr(caught.value)
        assert error_line(found, remote=True) == MESSAGE


@pytest.mark.slow
def test_found_behind_a_ray_train_worker_group_error(ray_local, tmp_path):
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    raise_data_error = remote_code()[0]
    trainer = TorchTrainer(raise_data_error, torch_config=TorchConfig(backend="gloo"),
                           scaling_config=ScalingConfig(num_workers=1),
                           run_config=RunConfig(storage_path=str(tmp_path),
                                                failure_config=FailureConfig(max_failures=0)))
    with pytest.raises(Exception) as caught:
        trainer.fit()
    assert type(caught.value).__name__ == "WorkerGroupError"
    assert error_line(find_llara_error(caught.value), remote=True) == MESSAGE
