"""Atomic file and folder writes: a reader never sees a half-written file, a crash leaves the old one intact.

A folder is built in a hidden sibling (``.<name>.<host>-<pid>.<random>.tmp``) and renamed into place at the end.
Without ``overwrite`` the rename is exclusive (``renameat2(RENAME_NOREPLACE)`` where the kernel has it), so when
two writers race for the same path exactly one reports "saved" and the other gets an :class:`ArtifactError`.
Temporary folders left by a killed writer are removed by the next writer of the same path, but only when their
process is gone (same host, pid not running) or, for folders without an owner in their name, after a day.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from qadapter.errors import ArtifactError

logger = logging.getLogger(__name__)

#: Temporary folders without an owner in their name (older qadapter versions) count as stale after this long.
STALE_UNOWNED_SECONDS = 24 * 3600
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _default_mode(directory: bool) -> int:
    """Permissions a normal ``open``/``mkdir`` would give under the current umask (mkstemp/mkdtemp use 0600/0700)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _default_mode(False))
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _owner_prefix(path: Path) -> str:
    return f".{path.name}.{_host_tag()}-{os.getpid()}."


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _is_stale(folder: Path, name: str) -> bool:
    """A temporary sibling of ``name`` whose writer is gone (see the module docstring)."""
    rest = folder.name[len(name) + 2 :]  # after ".<name>."
    owner = re.match(r"([0-9a-f]{8})-(\d+)\.", rest)
    if owner is not None:
        return owner.group(1) == _host_tag() and not _pid_running(int(owner.group(2)))
    try:
        return time.time() - folder.stat().st_mtime > STALE_UNOWNED_SECONDS
    except OSError:
        return False


def clean_stale(path: str | Path) -> list[Path]:
    """Remove temporary folders a killed writer left next to ``path``; returns the ones removed."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for candidate in path.parent.glob(f".{glob_escape(path.name)}.*"):
        if candidate.suffix in {".tmp", ".old"} and candidate.is_dir() and _is_stale(candidate, path.name):
            shutil.rmtree(candidate, ignore_errors=True)
            logger.warning("removed %s, left by a writer that was stopped before it finished", candidate)
            removed.append(candidate)
    return removed


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, failing with FileExistsError if ``dst`` exists (atomically where supported)."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is not None:
        result = renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # unsupported here: fall back below
            raise OSError(code, os.strerror(code), str(dst))
    if dst.exists() or dst.is_symlink():
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)  # a non-empty folder at dst still makes this fail (ENOTEMPTY)


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    if not overwrite:
        try:
            _rename_noreplace(tmp, path)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                raise ArtifactError(
                    f"{path} was created by another writer while this one was saving; nothing was replaced "
                    "(choose another output path, or pass --overwrite to replace it)"
                ) from None
            raise
        return
    if path.exists():
        old = tmp.with_suffix(".old")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder in a temporary sibling and move it into place only when the block succeeds.

    Raises :class:`ArtifactError` when ``path`` exists (before or after the block) and ``overwrite`` is false, so
    nothing is replaced by accident and two racing writers never both succeed.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ArtifactError(f"{path} already exists; choose another output path or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=_owner_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(tmp, _default_mode(True))
    try:
        yield tmp
        _publish(tmp, path, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
