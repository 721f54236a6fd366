"""Exact nearest-neighbour search by cosine similarity, in numpy (the default; stores sit in qadapter.stores)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qadapter.data.types import Run


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def search(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    *,
    k: int,
    batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` documents per query by cosine similarity: ``(indices, scores)``, each ``(n_queries, k)``, best first."""
    q = normalize(query_embeddings)
    d = normalize(doc_embeddings)
    k = min(k, d.shape[0])
    all_idx = np.empty((q.shape[0], k), dtype=np.int64)
    all_scores = np.empty((q.shape[0], k), dtype=np.float32)
    for start in range(0, q.shape[0], batch_size):
        sims = q[start : start + batch_size] @ d.T
        if k < sims.shape[1]:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(sims.shape[1]), (sims.shape[0], 1))
        part_scores = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        all_idx[start : start + batch_size] = np.take_along_axis(part, order, axis=1)
        all_scores[start : start + batch_size] = np.take_along_axis(part_scores, order, axis=1)
    return all_idx, all_scores


def search_run(
    query_ids: Sequence[str],
    query_embeddings: np.ndarray,
    doc_ids: Sequence[str],
    doc_embeddings: np.ndarray,
    *,
    k: int = 100,
) -> Run:
    """Exact search as a TREC-style run ``{query_id: {doc_id: score}}``."""
    idx, scores = search(query_embeddings, doc_embeddings, k=k)
    return {
        qid: {doc_ids[j]: float(s) for j, s in zip(row, srow, strict=True)}
        for qid, row, srow in zip(query_ids, idx, scores, strict=True)
    }
