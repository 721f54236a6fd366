"""Encode texts through the cache: each distinct text is encoded once per model, every batch is committed at once."""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

import numpy as np

from qadapter.core.progress import progress as progress_bar
from qadapter.encoders.base import Encoder, TextKind
from qadapter.encoders.cache import EmbeddingCache
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
    bar_desc: str,
    show: bool,
) -> np.ndarray | None:
    if not todo:
        return None
    chunks = []
    step = max(batch_size * 4, 256)
    with progress_bar(len(todo), desc=bar_desc, unit="text", enabled=show) as bar:
        for start in range(0, len(todo), step):
            batch = todo[start : start + step]
            vectors = encoder.encode(batch, kind=kind, batch_size=batch_size)
            if cache is not None:
                cache.put_many(identity, kind, batch, vectors)
            chunks.append(np.asarray(vectors, dtype=np.float32))
            bar.update(len(batch))
    return np.concatenate(chunks, axis=0)


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
    identity = model_identity(encoder, cache.digests if cache is not None else None)
    rows = cache.rows(identity, kind, texts) if cache is not None else np.full(len(texts), -1, dtype=np.int64)
    missing, order = _distinct_missing(texts, rows)
    fresh = _encode_missing(
        encoder,
        list(order),
        kind=kind,
        cache=cache,
        identity=identity,
        batch_size=batch_size,
        bar_desc=desc or f"embedding {kind}s",
        show=progress,
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
