"""An on-disk embedding cache: each text is encoded once per model, and an interrupted encode resumes.

Layout (format ``qadapter-embedding-cache`` version 2), one folder per workspace::

    embeddings/index.sqlite     which rows hold which text, per (model identity, text kind)
    embeddings/t<N>.float32     the vectors of table N, one fixed-width row after another (or .float16)

The vectors sit in flat files read through a memory map, so reading a million of them is a gather, not a million
SQLite rows; the index maps ``sha256(text)`` to a row. A batch is appended and flushed to its file first, then its
index rows and the table's row count are committed in one SQLite transaction (which also serialises writers), so a
crash or a full disk leaves at most unreferenced bytes past the committed rows, which the next write overwrites.

Models are identified by what they are (see :mod:`qadapter.encoders.identity`), not by a name. Caches of version 1
(``embeddings.sqlite``, keyed by model name) are never read. Deleting the folder only costs re-encoding.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from qadapter.errors import ArtifactError, QadapterError

logger = logging.getLogger(__name__)

FORMAT = "qadapter-embedding-cache"
VERSION = 2
#: storage types for cached vectors; float16 halves the size, vectors are always returned as float32
DTYPES = ("float32", "float16")
_BLOCK = 65536  # rows gathered per step when reading
_IN_CHUNK = 900  # keys per SQL ``IN (...)``

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tables (id INTEGER PRIMARY KEY, model TEXT NOT NULL, kind TEXT NOT NULL, "
    "dim INTEGER NOT NULL, dtype TEXT NOT NULL, rows INTEGER NOT NULL, UNIQUE (model, kind))",
    "CREATE TABLE IF NOT EXISTS vectors (tbl INTEGER NOT NULL, key BLOB NOT NULL, row INTEGER NOT NULL, "
    "PRIMARY KEY (tbl, key)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS model_digests (fingerprint TEXT PRIMARY KEY, digest TEXT NOT NULL)",
)


def text_key(text: str) -> bytes:
    """The index key of a text: the first 16 bytes of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


def _full_disk(exc: BaseException) -> bool:
    return (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    ) or "full" in str(exc)


def _cut(path: Path, size: int) -> None:
    """Best effort: give back the bytes of a batch that was not committed (the next write overwrites them anyway)."""
    try:
        with open(path, "rb+") as handle:
            handle.truncate(size)
    except OSError:
        logger.debug("could not cut %s back to %d bytes", path, size)


class _DigestMemo(MutableMapping[str, str]):
    """Model-folder digests kept in the cache index, so a folder is hashed once per workspace."""

    def __init__(self, cache: EmbeddingCache) -> None:
        self._cache = cache

    def __getitem__(self, key: str) -> str:
        row = self._cache._db.execute(
            "SELECT digest FROM model_digests WHERE fingerprint = ?", (key,)
        ).fetchone()
        if row is None:
            raise KeyError(key)
        return str(row[0])

    def __setitem__(self, key: str, value: str) -> None:
        with self._cache._writing():
            self._cache._db.execute("INSERT OR REPLACE INTO model_digests VALUES (?, ?)", (key, value))

    def __delitem__(self, key: str) -> None:  # pragma: no cover - part of the mapping protocol only
        with self._cache._writing():
            self._cache._db.execute("DELETE FROM model_digests WHERE fingerprint = ?", (key,))

    def __iter__(self) -> Iterator[str]:
        return iter([r[0] for r in self._cache._db.execute("SELECT fingerprint FROM model_digests")])

    def __len__(self) -> int:
        return int(self._cache._db.execute("SELECT COUNT(*) FROM model_digests").fetchone()[0])


class EmbeddingCache:
    """Maps (model identity, text kind, text) to a vector, stored as ``dtype`` (``float32`` or ``float16``)."""

    def __init__(
        self,
        path: str | Path,
        *,
        dtype: str = "float32",
        writer_lock: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> None:
        #: held while texts are encoded into this cache (a workspace's cache: its one-writer lock)
        self.writer_lock = writer_lock
        if dtype not in DTYPES:
            raise QadapterError(f"unknown cache dtype '{dtype}'; valid: {', '.join(DTYPES)}")
        self.path = Path(path)
        self.dtype = dtype
        if self.path.exists() and not self.path.is_dir():
            raise ArtifactError(
                f"{self.path}: embedding cache is unreadable (a file, expected a folder); delete it to rebuild"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path / "index.sqlite", timeout=120, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            with self._writing():
                for statement in _SCHEMA:
                    self._db.execute(statement)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('format', ?), ('version', ?)", (FORMAT, VERSION)
                )
            version = dict(self._db.execute("SELECT name, value FROM meta"))
        except (sqlite3.DatabaseError, OSError) as exc:
            raise ArtifactError(
                f"{self.path}: embedding cache is unreadable ({exc}); delete it to rebuild"
            ) from exc
        if version.get("format") != FORMAT or str(version.get("version")) != str(VERSION):
            raise ArtifactError(
                f"{self.path}: embedding cache has format {version.get('format')} version {version.get('version')}, "
                f"expected {FORMAT} version {VERSION}; delete the folder to rebuild it"
            )
        self.digests: MutableMapping[str, str] = _DigestMemo(self)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction (taking SQLite's write lock first); a full disk becomes one clear error."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except (sqlite3.OperationalError, OSError) as exc:
            if _full_disk(exc):
                raise ArtifactError(
                    f"{self.path}: the disk is full while writing the embedding cache ({exc}); nothing of this "
                    "batch was saved: free some space and run the command again (it resumes)"
                ) from exc
            raise ArtifactError(
                f"{self.path}: cannot write the embedding cache ({exc}); nothing of this batch was saved: "
                "check the disk and run the command again (it resumes)"
            ) from exc

    # -- tables ----------------------------------------------------------------------------------------------

    def _table(self, model: str, kind: str) -> tuple[int, int, str, int] | None:
        row = self._db.execute(
            "SELECT id, dim, dtype, rows FROM tables WHERE model = ? AND kind = ?", (model, kind)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), str(row[2]), int(row[3]))

    def _file(self, table: int, dtype: str) -> Path:
        return self.path / f"t{table}.{dtype}"

    def _open_table(self, model: str, kind: str, dim: int) -> tuple[int, int, str, int]:
        table = self._table(model, kind)
        if table is None:
            cursor = self._db.execute(
                "INSERT INTO tables (model, kind, dim, dtype, rows) VALUES (?, ?, ?, ?, 0)",
                (model, kind, dim, self.dtype),
            )
            return (int(cursor.lastrowid or 0), dim, self.dtype, 0)
        if table[1] != dim:
            raise ArtifactError(
                f"model '{model}' now gives {dim}-dimensional vectors but the cache holds {table[1]}-dimensional ones "
                f"for it; delete the cache ({self.path})"
            )
        return table

    # -- reading -----------------------------------------------------------------------------------------------

    def rows(self, model: str, kind: str, texts: Sequence[str]) -> np.ndarray:
        """The cache row of each text (``-1`` where it is not cached)."""
        table = self._table(model, kind)
        if table is None or not texts:
            return np.full(len(texts), -1, dtype=np.int64)
        keys = [text_key(t) for t in texts]
        found = self._lookup(table[0], list(dict.fromkeys(keys)), table[3])
        return np.fromiter((found.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))

    def _lookup(self, table: int, keys: list[bytes], n_rows: int) -> dict[bytes, int]:
        """``{key: row}`` for the cached ``keys``: by ``IN (...)`` batches, or one scan when most rows are wanted."""
        if len(keys) * 4 > n_rows:
            wanted = set(keys)
            scan = self._db.execute("SELECT key, row FROM vectors WHERE tbl = ?", (table,))
            return {k: r for k, r in scan if k in wanted}
        found: dict[bytes, int] = {}
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, row FROM vectors WHERE tbl = ? AND key IN ({marks})"  # noqa: S608 - only marks
            found.update(self._db.execute(query, (table, *chunk)))
        return found

    def read(self, model: str, kind: str, rows: np.ndarray) -> np.ndarray:
        """The float32 vectors at ``rows`` (all ``>= 0``), gathered block by block from the memory-mapped file."""
        table = self._table(model, kind)
        if table is None:
            return np.zeros((len(rows), 0), dtype=np.float32)
        table_id, dim, dtype, n_rows = table
        out = np.empty((len(rows), dim), dtype=np.float32)
        if len(rows) == 0:
            return out
        if int(rows.max()) >= n_rows:
            raise ArtifactError(
                f"{self.path}: the cache index points past its vectors; delete the cache to rebuild"
            )
        file = self._file(table_id, dtype)
        for start in range(0, len(rows), _BLOCK):
            block = rows[start : start + _BLOCK]
            order = np.argsort(block, kind="stable")  # read the file forwards
            out[start + order] = self._map(file, dtype, dim, int(block[order[0]]), int(block[order[-1]]) + 1)[
                block[order] - block[order[0]]
            ]
        return out

    def _map(self, file: Path, dtype: str, dim: int, first: int, stop: int) -> np.ndarray:
        """Rows ``first:stop`` of a vector file, memory-mapped only for the block being read (so resident pages
        never exceed a block's span)."""
        try:
            offset = first * dim * np.dtype(dtype).itemsize
            return np.memmap(file, dtype=dtype, mode="r", offset=offset, shape=(stop - first, dim))
        except (OSError, ValueError) as exc:
            raise ArtifactError(
                f"{self.path}: cached vectors are unreadable ({exc}); delete the cache"
            ) from exc

    def iter_vectors(
        self, model: str, kind: str, texts: Sequence[str], *, block: int = _BLOCK
    ) -> Iterator[np.ndarray]:
        """Yield the cached float32 vectors of ``texts`` in blocks of ``block`` rows (memory stays one block).

        Every text must be cached (embed first); a missing one is an error naming it.
        """
        for start in range(0, len(texts), block):
            chunk = texts[start : start + block]
            rows = self.rows(model, kind, chunk)
            if (rows < 0).any():
                first = chunk[int(np.argmin(rows))]
                raise ArtifactError(
                    f"text {first[:60]!r} is not in the embedding cache; run qadapter embed first"
                )
            yield self.read(model, kind, rows)

    def get_many(self, model: str, kind: str, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """Return ``{position: vector}`` for the texts already cached."""
        rows = self.rows(model, kind, texts)
        hit = np.flatnonzero(rows >= 0)
        vectors = self.read(model, kind, rows[hit])
        return {int(i): vectors[j] for j, i in enumerate(hit)}

    # -- writing -----------------------------------------------------------------------------------------------

    def put_many(self, model: str, kind: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Append ``vectors`` for ``texts`` (one row each) and commit them to the index in one transaction."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise QadapterError(f"put_many got {len(texts)} texts but vectors of shape {vectors.shape}")
        keys: dict[bytes, int] = {}
        for i, text in enumerate(texts):
            keys[text_key(text)] = i  # the last vector of a repeated text wins
        if not keys:
            return
        picked = vectors[list(keys.values())]
        appended: list[tuple[Path, int]] = []  # (file, committed size) once vectors were written
        try:
            with self._writing():
                table_id, _, dtype, n_rows = self._open_table(model, kind, int(vectors.shape[1]))
                file = self._file(table_id, dtype)
                appended.append((file, n_rows * picked.shape[1] * np.dtype(dtype).itemsize))
                self._append(file, n_rows, picked.astype(dtype, copy=False))
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                    [(table_id, k, n_rows + j) for j, k in enumerate(keys)],
                )
                self._db.execute("UPDATE tables SET rows = ? WHERE id = ?", (n_rows + len(keys), table_id))
        except BaseException:
            for file, size in appended:  # the index never saw these rows: give their bytes back
                _cut(file, size)
            raise

    @staticmethod
    def _append(path: Path, n_rows: int, data: np.ndarray) -> None:
        """Write ``data`` after the first ``n_rows`` rows and flush it to disk (the caller cuts it back on failure)."""
        offset = n_rows * data.shape[1] * data.itemsize
        with open(path, "ab+") as handle:
            handle.truncate(offset)  # drop bytes of a batch whose index rows were never committed
            handle.seek(offset)
            handle.write(np.ascontiguousarray(data).tobytes())
            handle.flush()
            os.fsync(handle.fileno())

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
