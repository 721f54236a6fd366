"""One writer per workspace: a second ``generate``/``embed``/``train`` into the same folder fails at once.

Use it around any stage that writes into a workspace::

    from qadapter.data.lock import workspace_lock

    with workspace_lock(ws_path, "embed"):
        ...  # write the cache, the queries, the adapter

The lock is an ``flock`` on ``WS/.qadapter/lock``, a small JSON file that names the holder (pid, job, command, start
time), so the second writer's error can say who holds it. The kernel drops an ``flock`` when its process dies, even
after ``kill -9``, so a lock left by a dead process is taken over without anyone deleting files. Within one process the
lock is re-entrant: ``qadapter run`` holds it and the stages it calls take it again without blocking themselves.

Not guaranteed: network filesystems whose ``flock`` is local to one machine; platforms without ``fcntl`` (Windows),
where the lock is skipped with a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qadapter.errors import QadapterError

logger = logging.getLogger(__name__)

#: The lock file, relative to the workspace folder.
LOCK_FILE = Path(".qadapter") / "lock"

_held: dict[Path, tuple[int, int]] = {}  # lock file -> (file descriptor, depth) for locks this process holds
_held_guard = threading.Lock()


class WorkspaceLocked(QadapterError):
    """Another process is writing into the workspace."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class LockInfo:
    """Who holds a workspace lock (what the lock file records)."""

    path: Path
    pid: int
    job: str
    command: str


def _command() -> str:
    """The running command as a person typed it: ``qadapter generate ws ...`` rather than a path to __main__.py."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if program in ("__main__.py", "qadapter", "-m", "-c"):
        program = "qadapter" if program != "-c" else "python -c"
    return " ".join([program, *sys.argv[1:]])


def _describe(holder: dict[str, Any]) -> str:
    started = holder.get("started")
    when = (
        time.strftime(" since %H:%M:%S", time.localtime(started)) if isinstance(started, int | float) else ""
    )
    command = holder.get("command") or holder.get("job") or "another qadapter process"
    return f"{command!s} (pid {holder.get('pid', '?')}){when}"


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 65536) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _record_holder(fd: int, info: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(info).encode("utf-8"))


def _acquire(lock_path: Path, job: str) -> int:
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        workspace = lock_path.parent.parent
        raise WorkspaceLocked(
            f"{workspace} is being written by {_describe(holder)}; wait for it to finish or stop it "
            f"(kill {holder.get('pid', 'PID')}), then re-run (the {job} would have collided with it)",
            holder,
        ) from None
    except BaseException:
        os.close(fd)
        raise
    previous = _read_holder(fd)
    if previous.get("pid") not in (None, os.getpid()):
        logger.info("taking over the lock of %s, which is no longer running", _describe(previous))
    info = {"pid": os.getpid(), "job": job, "command": _command(), "started": round(time.time(), 3)}
    try:
        _record_holder(fd, info)
    except OSError as exc:  # a full disk must not stop the lock itself; only the holder's name is lost
        logger.warning("%s: cannot record the lock holder (%s)", lock_path, exc.strerror or exc)
    return fd


@contextlib.contextmanager
def workspace_lock(path: str | Path, job: str) -> Iterator[LockInfo]:
    """Hold the write lock of workspace ``path`` for the block; raise :class:`WorkspaceLocked` at once if another
    process holds it. ``job`` names the stage (``generate``, ``embed``, ``train``) in the other writer's error.

    Re-entrant within a process; a lock of a dead process is taken over.
    """
    lock_path = (Path(path) / LOCK_FILE).resolve()
    info = LockInfo(lock_path, os.getpid(), job, _command())
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - Windows
        logger.warning("no file locking on this platform: nothing stops a second writer into %s", path)
        yield info
        return
    with _held_guard:
        fd, depth = _held.get(lock_path, (-1, 0))
        if depth == 0:
            fd = _acquire(lock_path, job)
        _held[lock_path] = (fd, depth + 1)
    try:
        yield info
    finally:
        with _held_guard:
            fd, depth = _held[lock_path]
            if depth == 1:
                del _held[lock_path]
                os.close(fd)  # closing the descriptor releases the flock
            else:
                _held[lock_path] = (fd, depth - 1)


def lock_holder(path: str | Path) -> dict[str, Any] | None:
    """What the lock file of workspace ``path`` records (pid, job, command, started), or None without one."""
    lock_path = Path(path) / LOCK_FILE
    try:
        data = json.loads(lock_path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data else None
