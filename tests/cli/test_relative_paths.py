"""The README's commands as a user types them: relative paths, from the project's folder,
while Ray's workers and actors run in working directories of their own."""

import json
import shutil
from pathlib import Path

from tests.cli.test_cli import _llara

TRAIN_OPTIONS = ["--set", "train.batch_size=8", "--set", "train.micro_batch_size=4",
                 "--set", "train.epochs=1", "--set", "train.max_eval_samples=4",
                 "--set", "train.device=cpu", "--set", "prompt.min_history=2",
                 "--set", "distributed.checkpoint_every=100"]


def project_with(inputs, root: Path) -> Path:
    """A user's project folder holding a prepared dataset and a recommender."""
    project = root / "project"
    shutil.copytree(inputs[0], project / "data")
    shutil.copytree(inputs[1], project / "rec")
    return project


def test_shards_then_train_with_relative_paths(toy_inputs, tmp_path):
    project = project_with(toy_inputs, tmp_path)
    done = _llara("data", "shards", "--data", "data", "--llm", "tiny", "--out", "run/shards",
                  "--rows-per-shard", "64", "--num-cpus", "2", "--set", "prompt.min_history=2",
                  "--set", "train.epochs=1",  # the run's one epoch, not the default's five
                  "--no-progress", cwd=project)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert (project / "run" / "shards" / "manifest.json").is_file()
    assert "Ray logs: " in done.stdout
    assert "logging_progress" not in output and "deprecated" not in output

    shutil.copytree(project / "rec", project / "rec-all")  # stacking's second recommender
    done = _llara("train", "--data", "data", "--rec-checkpoint", "rec", "--llm", "tiny",
                  "--fusion-rec-checkpoint", "rec-all",
                  "--out", "run", "--budget", "16", "--num-cpus", "2", *TRAIN_OPTIONS,
                  "--no-progress", cwd=project)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "shards in" not in done.stdout  # the shards built above were reused
    run = json.loads((project / "run" / "final" / "run.json").read_text())["config"]
    assert run["data_dir"] == str(project / "data")  # what the run records: absolute
    assert run["rec_checkpoint"] == str(project / "rec")
    assert run["fusion_rec_checkpoint"] == str(project / "rec-all")  # loaded by the workers
    assert run["output_dir"] == str(project / "run")
    assert [json.loads(line)["step"] for line in
            (project / "run" / "metrics.jsonl").read_text().splitlines()] == [1, 2, 2]
    assert "Traceback" not in output


def test_a_training_error_names_the_file_in_one_line(toy_inputs, tmp_path):
    project = project_with(toy_inputs, tmp_path)
    shutil.rmtree(project / "rec")
    (project / "rec").mkdir()
    done = _llara("train", "--data", "data", "--rec-checkpoint", "rec", "--llm", "tiny",
                  "--out", "run", "--budget", "16", "--num-cpus", "2", *TRAIN_OPTIONS,
                  "--no-progress", cwd=project)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert f"error: {project / 'rec'}" in done.stdout, output[-3000:]
    assert "Traceback" not in output and "TypeError" not in output
