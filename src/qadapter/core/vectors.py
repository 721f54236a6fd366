"""Exact nearest-neighbour search by cosine similarity, in bounded memory (the default; stores sit in qadapter.stores).

Search streams over blocks of queries and blocks of documents and keeps a running top-k per query, so memory is
``O(query_block * doc_block + n_queries * k)`` whatever the corpus size: a block of similarities is
``query_block * doc_block * 4`` bytes (64 MiB with the defaults) plus its partition indices. Documents are never
copied whole: their norms are computed once and each block is normalised as it is used.

With ``device`` set (``cpu``, ``cuda``, ``mps``), the same blocked search runs in torch on that device (``topk`` on
the block); without it, numpy (no torch import).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qadapter.data.types import Run

#: queries per block
QUERY_BLOCK = 1024
#: documents per block (a block of similarities is QUERY_BLOCK x DOC_BLOCK float32)
DOC_BLOCK = 16_384


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def row_norms(x: np.ndarray, block: int = DOC_BLOCK * 4) -> np.ndarray:
    """``max(||row||, 1e-12)`` per row, computed in blocks (no full float32 copy of ``x``)."""
    out = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), block):
        rows = np.asarray(x[start : start + block], dtype=np.float32)
        out[start : start + len(rows)] = np.maximum(np.linalg.norm(rows, axis=1), 1e-12)
    return out


def _merge_top(
    best_idx: np.ndarray, best_scores: np.ndarray, idx: np.ndarray, scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``k`` best of (running best, new candidates) per row, unordered."""
    all_idx = np.concatenate([best_idx, idx], axis=1)
    all_scores = np.concatenate([best_scores, scores], axis=1)
    if all_scores.shape[1] <= k:
        return all_idx, all_scores
    part = np.argpartition(-all_scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(all_idx, part, axis=1), np.take_along_axis(all_scores, part, axis=1)


def _sort_rows(idx: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best first; equal scores by ascending document row (deterministic whatever the blocking)."""
    order = np.lexsort((idx, -scores), axis=1) if idx.size else np.zeros(idx.shape, dtype=np.int64)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(scores, order, axis=1)


def _block_top(sims: np.ndarray, k: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of one block of similarities (argpartition on the block only), as corpus rows."""
    if k < sims.shape[1]:
        np.negative(sims, out=sims)
        part = np.argpartition(sims, k - 1, axis=1)[:, :k]
        np.negative(sims, out=sims)
    else:
        part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
    return part + offset, np.take_along_axis(sims, part, axis=1)


#: with a running top-k, a block's candidates are only the similarities above each row's k-th best; when no row
#: has more than this many times k of them, they are gathered instead of partitioning the whole block (after the
#: first block that is nearly always so, and a comparison is several times cheaper than a partition)
PRUNE_FACTOR = 4


def _above_kth(
    sims: np.ndarray, best_scores: np.ndarray, k: int, offset: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The block's similarities strictly above each row's current k-th best, padded to the same width (-inf,
    row -1), or ``None`` when some row has too many of them (then the block is partitioned). Strictly above:
    an equal score in a later block belongs to a higher row, which ranks after the one kept."""
    rows, cols = np.nonzero(sims > best_scores.min(axis=1, keepdims=True))
    counts = np.bincount(rows, minlength=len(sims))
    width = int(counts.max()) if len(counts) else 0
    if width > PRUNE_FACTOR * k:
        return None
    idx = np.full((len(sims), width), -1, dtype=np.int64)
    scores = np.full((len(sims), width), -np.inf, dtype=np.float32)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    idx[rows, slot] = cols + offset
    scores[rows, slot] = sims[rows, cols]
    return idx, scores


def _search_numpy(
    q: np.ndarray, docs: np.ndarray, norms: np.ndarray, k: int, q_block: int, d_block: int
) -> tuple[np.ndarray, np.ndarray]:
    all_idx = np.empty((q.shape[0], k), dtype=np.int64)
    all_scores = np.empty((q.shape[0], k), dtype=np.float32)
    for qs in range(0, q.shape[0], q_block):
        qb = q[qs : qs + q_block]
        best_idx = np.empty((len(qb), 0), dtype=np.int64)
        best_scores = np.empty((len(qb), 0), dtype=np.float32)
        for ds in range(0, docs.shape[0], d_block):
            block = np.asarray(docs[ds : ds + d_block], dtype=np.float32) / norms[ds : ds + d_block, None]
            sims = qb @ block.T
            pruned = _above_kth(sims, best_scores, k, ds) if best_scores.shape[1] == k else None
            idx, scores = pruned if pruned is not None else _block_top(sims, k, ds)
            best_idx, best_scores = _merge_top(best_idx, best_scores, idx, scores, k)
        all_idx[qs : qs + len(qb)], all_scores[qs : qs + len(qb)] = _sort_rows(best_idx, best_scores)
    return all_idx, all_scores


def _search_torch(
    q: np.ndarray, docs: np.ndarray, norms: np.ndarray, k: int, q_block: int, d_block: int, device: str
) -> tuple[np.ndarray, np.ndarray]:
    import torch

    index = TorchIndex(docs, device, d_block=d_block, norms=norms)
    idx, scores = index.search(torch.from_numpy(q), k, q_block=q_block)
    return _sort_rows(idx.cpu().numpy(), scores.cpu().numpy())


class TorchIndex:
    """Documents held on a torch device, normalised once, searched block by block (validation after every epoch
    searches the same documents many times)."""

    def __init__(
        self, docs: np.ndarray, device: str, *, d_block: int = DOC_BLOCK, norms: np.ndarray | None = None
    ) -> None:
        import torch

        self.device = torch.device(device)
        self.d_block = d_block
        norms = row_norms(docs) if norms is None else norms
        self.blocks = []
        for start in range(0, len(docs), d_block):
            block = torch.from_numpy(np.ascontiguousarray(docs[start : start + d_block], dtype=np.float32))
            scale = torch.from_numpy(norms[start : start + d_block])[:, None]
            self.blocks.append((block / scale).to(self.device))
        self.n_docs = len(docs)

    def search(self, queries: Any, k: int, *, q_block: int = QUERY_BLOCK) -> tuple[Any, Any]:
        """Top-``k`` (rows, cosine scores) of ``queries`` (a tensor, any device), each ``(n_queries, k)``."""
        import torch
        import torch.nn.functional as F

        k = min(k, self.n_docs)
        out_idx, out_scores = [], []
        with torch.no_grad():
            for qs in range(0, len(queries), q_block):
                qb = F.normalize(queries[qs : qs + q_block].to(self.device, torch.float32), dim=-1, eps=1e-12)
                best_s = torch.empty((len(qb), 0), device=self.device)
                best_i = torch.empty((len(qb), 0), dtype=torch.int64, device=self.device)
                for b, block in enumerate(self.blocks):
                    s, i = torch.topk(qb @ block.T, min(k, len(block)), dim=1)
                    s, i = torch.cat([best_s, s], 1), torch.cat([best_i, i + b * self.d_block], 1)
                    best_s, pick = torch.topk(s, min(k, s.shape[1]), dim=1)
                    best_i = torch.gather(i, 1, pick)
                out_idx.append(best_i)
                out_scores.append(best_s)
        empty = torch.empty((0, k), device=self.device)
        idx = torch.cat(out_idx) if out_idx else empty.long()
        return idx, (torch.cat(out_scores) if out_scores else empty)


def search(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    *,
    k: int,
    batch_size: int = QUERY_BLOCK,
    doc_batch_size: int = DOC_BLOCK,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` documents per query by cosine similarity: ``(indices, scores)``, each ``(n_queries, k)``, best first
    (equal scores by ascending row).

    Never holds more than ``batch_size x doc_batch_size`` similarities at once. ``device`` runs it in torch there.
    """
    q = normalize(query_embeddings)
    k = min(k, len(doc_embeddings))
    norms = row_norms(doc_embeddings)
    if device is not None:
        return _search_torch(q, doc_embeddings, norms, k, batch_size, doc_batch_size, device)
    return _search_numpy(q, doc_embeddings, norms, k, batch_size, max(doc_batch_size, k))


#: similarities closer than this count as a tie (:func:`rank_of_best`)
TIE = 1e-6


def rank_of_best(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    relevant: np.ndarray,
    *,
    batch_size: int = QUERY_BLOCK,
    doc_batch_size: int = DOC_BLOCK,
) -> np.ndarray:
    """The rank (1 = first) among all documents of each query's best-scoring relevant document: one more than the
    number of documents scoring higher by cosine similarity (by more than ``1e-6``, so that the relevant document
    never outranks itself through rounding). ``relevant``: (queries, width) document rows,
    padded with -1; a query without any ranks last (``len(doc_embeddings)``). Streams over blocks of documents like
    :func:`search` (exact, whatever the corpus size)."""
    q = normalize(query_embeddings)
    n_docs = len(doc_embeddings)
    norms = row_norms(doc_embeddings)
    valid = relevant >= 0
    rows = np.where(valid, relevant, 0)
    rel_docs = np.asarray(doc_embeddings[rows.ravel()], dtype=np.float32).reshape(*rows.shape, -1)
    rel_scores = np.einsum("qd,qrd->qr", q, rel_docs) / norms[rows]
    best = np.where(valid, rel_scores, -np.inf).max(1) if rows.shape[1] else np.full(len(q), -np.inf)
    above = np.zeros(len(q), dtype=np.int64)
    for ds in range(0, n_docs, doc_batch_size):
        block = (
            np.asarray(doc_embeddings[ds : ds + doc_batch_size], dtype=np.float32)
            / norms[ds : ds + doc_batch_size, None]
        )
        for qs in range(0, len(q), batch_size):
            sims = q[qs : qs + batch_size] @ block.T
            above[qs : qs + batch_size] += (sims > best[qs : qs + batch_size, None] + TIE).sum(1)
    return np.where(valid.any(1), above + 1, n_docs)


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
