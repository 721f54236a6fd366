"""A full disk while embedding is one clear line, and nothing half-written is ever read back (issue 10, item 8).

The failure is injected where it happens: SQLite reporting ``database or disk is full`` on the index commit, and the
vector file's write failing with ``ENOSPC``; and for real, in a child process whose file-size limit stops the write.
"""

from __future__ import annotations

import errno
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qadapter.data import Document, Query, Workspace
from qadapter.encoders import EmbeddingCache, embed
from qadapter.encoders.cache import EmbeddingCache as CacheClass
from qadapter.errors import ArtifactError

TEXTS = [f"text {i}" for i in range(600)]


class SeededEncoder:
    name = "seeded"
    dim = 8

    def encode(self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 64) -> np.ndarray:
        rows = [np.random.default_rng(abs(hash((kind, t))) % 2**32).normal(size=self.dim) for t in texts]
        return np.asarray(rows, dtype=np.float32)


class FullOnInsert:
    """A SQLite connection that says the disk is full when the index rows of a batch are written."""

    def __init__(self, db: sqlite3.Connection, fail_after: int) -> None:
        self._db, self.left = db, fail_after

    def executemany(self, sql: str, rows: Any) -> Any:
        if self.left <= 0:
            raise sqlite3.OperationalError("database or disk is full")
        self.left -= 1
        return self._db.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def _state(path: Path) -> tuple[int, int]:
    with EmbeddingCache(path) as cache:
        return len(cache), (path / "t1.float32").stat().st_size


def test_sqlite_disk_full_is_one_line_and_the_cache_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "cache"
    encoder = SeededEncoder()
    cache = EmbeddingCache(path)
    cache._db = FullOnInsert(cache._db, fail_after=1)  # type: ignore[assignment]
    with pytest.raises(ArtifactError) as info:
        embed(encoder, TEXTS, kind="document", cache=cache)  # 256 texts per batch: the second batch fails
    cache.close()
    message = str(info.value)
    assert "\n" not in message and "disk is full" in message and "run the command again" in message
    assert _state(path) == (256, 256 * 8 * 4)  # the first batch, and not one byte of the second
    with EmbeddingCache(path) as cache:  # the re-run resumes and gives what an unbroken run gives
        np.testing.assert_array_equal(
            embed(encoder, TEXTS, kind="document", cache=cache), encoder.encode(TEXTS, kind="document")
        )
        assert len(cache) == 600


def test_a_vector_file_write_failing_with_enospc_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache"
    encoder = SeededEncoder()
    with EmbeddingCache(path) as cache:
        embed(encoder, TEXTS[:10], kind="document", cache=cache)
    real = CacheClass._append

    def half_then_full(file: Path, n_rows: int, data: np.ndarray) -> None:
        with open(file, "ab") as handle:
            handle.write(b"\0" * 100)  # a partial write before the disk filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(CacheClass, "_append", staticmethod(half_then_full))
    with EmbeddingCache(path) as cache, pytest.raises(ArtifactError, match="disk is full"):
        embed(encoder, TEXTS, kind="document", cache=cache)
    monkeypatch.setattr(CacheClass, "_append", staticmethod(real))
    with EmbeddingCache(path) as cache:
        assert len(cache) == 10
        np.testing.assert_array_equal(
            embed(encoder, TEXTS, kind="document", cache=cache), encoder.encode(TEXTS, kind="document")
        )


def test_the_embed_command_reports_a_full_disk_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qadapter.cli import main

    ws = Workspace(tmp_path / "ws")
    ws.write_corpus([Document(f"d{i}", f"document {i}") for i in range(5)])
    ws.write_queries([Query("q1", "question")])
    ws.write_qrels("test", {"q1": {"d1": 1}})

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: FullOnInsert(connect(*a, **k), fail_after=0))
    monkeypatch.setattr("qadapter.encoders.get_encoder", lambda *a, **k: SeededEncoder())
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", str(ws.path)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code != 0
    assert len(err.splitlines()) == 1 and "disk is full" in err and "Traceback" not in err


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_a_real_file_size_limit_mid_embed_is_one_error(tmp_path: Path) -> None:
    """A child process may write at most 192 KiB per file: the vector file fills up in the second batch."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        import numpy as np
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from qadapter.encoders import EmbeddingCache, embed
        from qadapter.errors import QadapterError
        class Big:
            name = "big"
            dim = 128
            def encode(self, texts, *, kind="query", batch_size=64):
                return np.ones((len(texts), 128), dtype=np.float32)
        cache = EmbeddingCache({str(tmp_path / "cache")!r})
        resource.setrlimit(resource.RLIMIT_FSIZE, (192 * 1024, 192 * 1024))
        try:
            embed(Big(), [f"t{{i}}" for i in range(2000)], kind="document", cache=cache)
        except QadapterError as exc:
            print("ERROR", exc)
            print("ROWS", len(cache))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ERROR" in done.stdout and "disk is full" in done.stdout
    rows = int(done.stdout.split("ROWS")[1])
    assert rows == 256  # 256 rows x 128 floats = 128 KiB fit; the second batch would pass 192 KiB
    assert (tmp_path / "cache" / "t1.float32").stat().st_size == rows * 128 * 4
