"""An on-disk embedding cache: each text is encoded once per model, and an interrupted encode resumes.

Vectors live in one SQLite file per workspace (standard library, crash-safe, one transaction per batch), keyed by
``sha256(model name, text kind, text)``. Deleting the file only costs re-encoding.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qadapter.encoders.base import Encoder, TextKind
from qadapter.errors import ArtifactError


def _key(model: str, kind: str, text: str) -> str:
    return hashlib.sha256(f"{model}\x1f{kind}\x1f{text}".encode()).hexdigest()


class EmbeddingCache:
    """Maps (model, kind, text) to a float32 vector."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, model TEXT, dim INTEGER, vector BLOB)"
            )
        except sqlite3.DatabaseError as exc:
            raise ArtifactError(
                f"{self.path}: embedding cache is unreadable ({exc}); delete it to rebuild"
            ) from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, model: str, kind: str, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """Return ``{position: vector}`` for the texts already cached."""
        found: dict[int, np.ndarray] = {}
        keys = [_key(model, kind, t) for t in texts]
        positions: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            positions.setdefault(k, []).append(i)
        unique = list(positions)
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, vector in self._db.execute(
                f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk
            ):
                vec = np.frombuffer(vector, dtype=np.float32)
                for i in positions[key]:
                    found[i] = vec
        return found

    def put_many(self, model: str, kind: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        rows = [
            (
                _key(model, kind, t),
                model,
                int(v.shape[0]),
                np.ascontiguousarray(v, dtype=np.float32).tobytes(),
            )
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])


def embed(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    kind: TextKind,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    progress: bool = False,
    desc: str | None = None,
) -> np.ndarray:
    """Encode ``texts`` with ``encoder``, reading and filling ``cache`` so each text is encoded at most once.

    Each batch is committed to the cache as soon as it is encoded, so an interrupted run resumes where it stopped.
    """
    texts = list(texts)
    found = cache.get_many(encoder.name, kind, texts) if cache is not None else {}
    missing = [i for i in range(len(texts)) if i not in found]
    # Encode each distinct missing text once.
    order: dict[str, int] = {}
    for i in missing:
        order.setdefault(texts[i], len(order))
    todo = list(order)
    new_vectors: list[np.ndarray] = []
    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=desc or f"embedding {kind}s", unit="text", disable=not progress)
        step = max(batch_size * 4, 256)
        for start in range(0, len(todo), step):
            batch = todo[start : start + step]
            vectors = encoder.encode(batch, kind=kind, batch_size=batch_size)
            if cache is not None:
                cache.put_many(encoder.name, kind, batch, vectors)
            new_vectors.append(vectors)
            bar.update(len(batch))
        bar.close()
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    dim = next(iter(found.values())).shape[0] if found else new_vectors[0].shape[1]
    out = np.empty((len(texts), dim), dtype=np.float32)
    for i, vec in found.items():
        if vec.shape[0] != dim:
            raise ArtifactError(
                f"cached vector has dimension {vec.shape[0]}, expected {dim}; delete the cache"
            )
        out[i] = vec
    if todo:
        fresh = np.concatenate(new_vectors, axis=0)
        if fresh.shape[1] != dim:
            raise ArtifactError(
                f"model '{encoder.name}' now gives {fresh.shape[1]}-dimensional vectors but the cache holds "
                f"{dim}-dimensional ones under the same name; delete the cache ({cache.path if cache else ''})"
            )
        for i in missing:
            out[i] = fresh[order[texts[i]]]
    return out
