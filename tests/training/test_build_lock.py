"""The bounded wait on a torch extension's build lock (DeepSpeed's JIT ops)."""

import os
import subprocess
import sys
import threading
import time

import pytest
import torch.utils.cpp_extension as cpp_extension

import llara.training.build_lock as build_lock
from llara.training.build_lock import (StaleBuildLock, extension_build_dir,
                                       processes_working_in, wait_for_build_lock)
from tests.conftest import HANG_GUARD_S

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


def waited(monkeypatch, on_poll=lambda polls: None, **options) -> tuple[list[str], int]:
    """Run wait_for_build_lock in a thread, bounded by the hang guard only; returns what it
    said and how many times it looked for builders (once per poll of an existing lock).
    `on_poll(n)` runs at the n-th look: the test's build ends there."""
    polls, said, errors = [], [], []

    def looking(directory):
        polls.append(directory)
        on_poll(len(polls))
        return processes_working_in(directory)

    monkeypatch.setattr(build_lock, "processes_working_in", looking)

    def run():
        try:
            wait_for_build_lock(NAME, log=said.append, **options)
        except Exception as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)

    waiter = threading.Thread(target=run, daemon=True)
    waiter.start()
    waiter.join(timeout=HANG_GUARD_S)  # the hang guard, not a judgement of speed
    assert not waiter.is_alive(), "wait_for_build_lock never returned"
    if errors:
        raise errors[0]
    return said, len(polls)


def test_no_lock_returns_at_once(build_dir, monkeypatch):
    said, polls = waited(monkeypatch, idle_after_s=0.0)
    assert polls == 0 and said == []  # returned without a single poll


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
def test_a_build_in_progress_is_waited_for(build_dir, builder, monkeypatch):
    lock = build_dir / "lock"
    lock.write_text("")
    assert builder.pid in processes_working_in(build_dir)
    seen = []

    def build_ends_at_third_poll(polls: int) -> None:
        seen.append(lock.exists())
        if polls == 3:
            lock.unlink()  # the build ends: its lock goes

    # idle_after_s far above any wait: only the lock's going can end this one
    said, polls = waited(monkeypatch, build_ends_at_third_poll, idle_after_s=HANG_GUARD_S,
                         poll_s=0.05)
    # It polled while the build held the lock, and returned at the first look after the
    # lock went: because of the release, not of a timeout.
    assert seen == [True, True, True] and polls == 3 and not lock.exists()
    assert len(said) == 1 and "waiting for the build" in said[0]


def test_a_lock_older_than_any_build_is_reported(build_dir, builder):
    lock = build_dir / "lock"
    lock.write_text("")
    an_hour_ago = time.time() - 3600
    os.utime(lock, (an_hour_ago, an_hour_ago))
    with pytest.raises(StaleBuildLock, match="60 minutes old"):
        wait_for_build_lock(NAME, poll_s=0.05, log=lambda _: None)
    assert lock.exists()
