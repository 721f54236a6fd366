"""Encode texts through the cache: each distinct text is encoded once per model, every batch is committed at once."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from qadapter.core.progress import progress as progress_bar
from qadapter.encoders.base import Encoder, TextKind
from qadapter.encoders.cache import EmbeddingCache
from qadapter.encoders.engines import get_engine
from qadapter.errors import ArtifactError


def model_identity(encoder: Encoder, memo: MutableMapping[str, str] | None = None) -> str:
    """The string the cache keys ``encoder``'s vectors by: its ``cache_identity()`` when it has one (every qadapter
    encoder does: a hash of the model's files, or the normalised endpoint), else its ``name``."""
    identify = getattr(encoder, "cache_identity", None)
    return str(identify(memo)) if callable(identify) else str(encoder.name)


def _distinct_missing(texts: Sequence[str], rows: np.ndarray) -> tuple[list[int], dict[str, int]]:
    missing = [int(i) for i in np.flatnonzero(rows < 0)]
    order: dict[str, int] = {}
    for i in missing:
        order.setdefault(texts[i], len(order))
    return missing, order


def _encode_missing(
    encoder: Encoder,
    todo: list[str],
    *,
    kind: TextKind,
    cache: EmbeddingCache | None,
    identity: str,
    batch_size: int,
    engine: str,
    bar: Any,
) -> np.ndarray | None:
    """Encode ``todo`` on ``engine``, committing each batch to ``cache`` as it arrives (in whatever order)."""
    if not todo:
        return None
    where = {t: i for i, t in enumerate(todo)}
    fresh: np.ndarray | None = None
    for batch, vectors in get_engine(engine)(encoder, todo, kind, batch_size):
        if cache is not None:
            cache.put_many(identity, kind, batch, vectors)
        if fresh is None:
            fresh = np.empty((len(todo), vectors.shape[1]), dtype=np.float32)
        fresh[[where[t] for t in batch]] = vectors
        bar.update(len(batch))
    return fresh


def embed(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    kind: TextKind,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    progress: bool = False,
    desc: str | None = None,
    engine: str = "local",
) -> np.ndarray:
    """Encode ``texts`` with ``encoder``, reading and filling ``cache`` so each text is encoded at most once.

    Each batch is committed to the cache as soon as it is encoded, so an interrupted run resumes where it stopped.
    ``engine`` (see :data:`qadapter.encoders.engines.ENGINES`) is where encoding runs: ``local`` or ``ray``.
    """
    texts = list(texts)
    identity = model_identity(encoder, cache.digests if cache is not None else None)
    rows = cache.rows(identity, kind, texts) if cache is not None else np.full(len(texts), -1, dtype=np.int64)
    missing, order = _distinct_missing(texts, rows)
    writing = cache.writer_lock() if cache is not None and cache.writer_lock and order else nullcontext()
    with (
        writing,
        progress_bar(len(order), desc=desc or f"embedding {kind}s", unit="text", enabled=progress) as bar,
    ):
        fresh = _encode_missing(
            encoder,
            list(order),
            kind=kind,
            cache=cache,
            identity=identity,
            batch_size=batch_size,
            engine=engine,
            bar=bar,
        )
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    hit = np.flatnonzero(rows >= 0)
    cached = cache.read(identity, kind, rows[hit]) if cache is not None and len(hit) else None
    dim = fresh.shape[1] if fresh is not None else cached.shape[1]  # type: ignore[union-attr]
    if cached is not None and cached.shape[1] != dim:
        raise ArtifactError(
            f"model '{encoder.name}' gives {dim}-dimensional vectors but the cache holds {cached.shape[1]}-dimensional "
            f"ones for it; delete the cache ({cache.path if cache else ''})"
        )
    out = np.empty((len(texts), dim), dtype=np.float32)
    if cached is not None:
        out[hit] = cached
    if fresh is not None:
        out[missing] = fresh[[order[texts[i]] for i in missing]]
    return out
