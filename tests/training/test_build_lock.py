"""The bounded wait on a torch extension's build lock (DeepSpeed's JIT ops)."""

import os
import subprocess
import sys
import threading
import time

import pytest
import torch.utils.cpp_extension as cpp_extension

from llara.training.build_lock import (StaleBuildLock, extension_build_dir,
                                       processes_working_in, wait_for_build_lock)

NAME = "deepspeed_shm_comm"
LINUX_PROC = os.path.exists("/proc/self/cwd")


@pytest.fixture
def build_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    directory = tmp_path / NAME
    directory.mkdir()
    return directory


@pytest.fixture
def builder(build_dir):
    """A process working in the build folder, as ninja does during a build."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                               cwd=build_dir)
    yield process
    process.kill()
    process.wait()


def test_the_folder_is_the_one_torch_builds_in(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    monkeypatch.setattr(cpp_extension, "get_default_build_root", lambda: str(tmp_path))
    assert str(extension_build_dir(NAME)) == cpp_extension._get_build_directory(NAME, False)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "elsewhere"))
    assert str(extension_build_dir(NAME)) == cpp_extension._get_build_directory(NAME, False)


def test_no_lock_returns_at_once(build_dir):
    said = []
    started = time.monotonic()
    wait_for_build_lock(NAME, idle_after_s=0.0, log=said.append)
    assert time.monotonic() - started < 5 and said == []


@pytest.mark.skipif(not LINUX_PROC, reason="needs /proc to see who builds")
def test_a_lock_nobody_builds_under_is_reported_and_kept(build_dir):
    lock = build_dir / "lock"
    lock.write_text("")
    said = []
    with pytest.raises(StaleBuildLock, match="no process has been building") as caught:
        wait_for_build_lock(NAME, idle_after_s=0.3, poll_s=0.05, log=said.append)
    assert str(lock) in str(caught.value) and "delete that file" in str(caught.value)
    assert lock.exists() and len(said) == 1


@pytest.mark.skipif(not LINUX_PROC, reason="needs /proc to see who builds")
def test_a_build_in_progress_is_waited_for(build_dir, builder):
    lock = build_dir / "lock"
    lock.write_text("")
    assert builder.pid in processes_working_in(build_dir)
    # the build ends after a while: its lock goes
    threading.Timer(1.0, lock.unlink).start()
    said = []
    started = time.monotonic()
    wait_for_build_lock(NAME, idle_after_s=0.3, poll_s=0.05, log=said.append)
    assert time.monotonic() - started >= 0.9
    assert len(said) == 1 and "waiting for the build" in said[0]


def test_a_lock_older_than_any_build_is_reported(build_dir, builder):
    lock = build_dir / "lock"
    lock.write_text("")
    an_hour_ago = time.time() - 3600
    os.utime(lock, (an_hour_ago, an_hour_ago))
    with pytest.raises(StaleBuildLock, match="60 minutes old"):
        wait_for_build_lock(NAME, poll_s=0.05, log=lambda _: None)
    assert lock.exists()
