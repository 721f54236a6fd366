"""The workspace write lock, with real processes: a second writer fails at once, a dead holder's lock is taken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qadapter.data.lock import LOCK_FILE, WorkspaceLocked, lock_holder, workspace_lock

HOLD = """
import sys, time
from qadapter.data.lock import workspace_lock
with workspace_lock(sys.argv[1], "embed"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(ws: Path, seconds: float = 60.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(ws), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path) -> None:  # noqa: ANN001
    proc = _holder(tmp_path)
    try:
        started = time.monotonic()
        with pytest.raises(WorkspaceLocked) as exc, workspace_lock(tmp_path, "generate"):
            pass
        assert time.monotonic() - started < 1.0
        message = str(exc.value)
        assert f"pid {proc.pid}" in message and "being written by" in message and "\n" not in message
        assert f"kill {proc.pid}" in message and "generate" in message
        assert exc.value.holder["job"] == "embed" and exc.value.holder["pid"] == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path) -> None:  # noqa: ANN001
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert lock_holder(tmp_path)["pid"] == proc.pid  # the file still names the dead holder
    with workspace_lock(tmp_path, "generate") as info:
        assert info.pid == os.getpid()
        holder = lock_holder(tmp_path)
        assert holder is not None and (holder["pid"], holder["job"]) == (os.getpid(), "generate")


def test_released_after_the_block_and_reentrant_within_a_process(tmp_path) -> None:  # noqa: ANN001
    with workspace_lock(tmp_path, "run"), workspace_lock(tmp_path, "generate"):
        assert (tmp_path / LOCK_FILE).is_file()
        probe = subprocess.run(
            [sys.executable, "-c", HOLD, str(tmp_path), "0"], capture_output=True, text=True, timeout=60
        )
        assert probe.returncode != 0 and "WorkspaceLocked" in probe.stderr
    # released: another process takes it now
    proc = _holder(tmp_path, 0)
    proc.wait(timeout=60)
    assert proc.returncode == 0


def test_a_lock_released_by_an_error_in_the_block(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(RuntimeError), workspace_lock(tmp_path, "generate"):
        raise RuntimeError("boom")
    proc = _holder(tmp_path, 0)
    proc.wait(timeout=60)
    assert proc.returncode == 0


def test_encoding_into_a_workspace_takes_its_lock_and_reading_does_not(tmp_path: Path) -> None:
    """A second process that must encode into a locked workspace fails at once; one that only reads cached vectors
    (e.g. a second ``train`` on the same workspace) is not blocked."""
    import numpy as np

    from qadapter.data import Workspace
    from qadapter.embedding import cache_for
    from qadapter.encoders import embed

    class Fixed:
        name, dim = "fixed", 2

        def encode(self, texts, kind, batch_size=64):  # noqa: ANN001, ANN201
            return np.ones((len(texts), 2), dtype=np.float32)

    ws = Workspace(tmp_path / "ws")
    ws.path.mkdir()
    with cache_for(ws) as cache:
        embed(Fixed(), ["a"], kind="query", cache=cache)
    holder = _holder(ws.path)
    try:
        with cache_for(ws) as cache:
            assert embed(Fixed(), ["a"], kind="query", cache=cache).shape == (1, 2)  # cached: no lock needed
            with pytest.raises(WorkspaceLocked, match=str(holder.pid)):
                embed(Fixed(), ["b"], kind="query", cache=cache)
    finally:
        holder.kill()
        holder.wait()
