"""Which documents a training query is contrasted against, and which of those must not count as negatives.

Negatives come from the user's own corpus, restricted to *training documents* (those with at least one training
query): a document that never had a query is neither pulled toward nor pushed away from any query, so the adapter
does not learn to avoid documents added after training. When the training documents fit (``max_full_negatives``)
every query is contrasted against all of them; otherwise against its hard negatives (the base model's top-ranked
non-relevant documents) plus a random sample shared by the batch.

False negatives are masked: other documents judged relevant for the same query, and near-duplicates of the positive
(base-model cosine at least ``false_negative_threshold``), which are common in chunked corpora.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qadapter.core.vectors import normalize, search


@dataclass
class NegativePlan:
    """Training documents as columns, plus what each pair must not be contrasted against."""

    columns: np.ndarray  # corpus rows of the training documents
    pair_query: np.ndarray  # (n_pairs,) query row of each (query, positive) pair
    pair_pos_col: np.ndarray  # (n_pairs,) column of the positive
    excluded: list[
        np.ndarray
    ]  # per pair: columns that must not be negatives (other positives, near-duplicates)
    excluded_ptr: np.ndarray  # CSR view of ``excluded``: pair i owns excluded_cols[ptr[i]:ptr[i + 1]]
    excluded_cols: np.ndarray
    hard: np.ndarray | None  # (n_queries, n_hard) hard-negative columns per query, or None in full mode
    full: bool


def plan_negatives(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    *,
    max_full: int = 20_000,
    n_hard: int = 32,
    false_negative_threshold: float = 0.98,
) -> NegativePlan:
    pairs_arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    columns = np.unique(pairs_arr[:, 1])
    col_of = {int(row): i for i, row in enumerate(columns)}
    pos_cols = np.array([col_of[int(d)] for d in pairs_arr[:, 1]], dtype=np.int64)

    positives_of: dict[int, set[int]] = {}
    for q, c in zip(pairs_arr[:, 0], pos_cols, strict=True):
        positives_of.setdefault(int(q), set()).add(int(c))

    cand = normalize(doc_embeddings[columns])
    near_dup: dict[int, np.ndarray] = {}
    unique_pos = np.unique(pos_cols)
    for start in range(0, len(unique_pos), 1024):
        block = unique_pos[start : start + 1024]
        sims = cand[block] @ cand.T
        for col, row in zip(block, sims, strict=True):
            dup = np.flatnonzero(row >= false_negative_threshold)
            near_dup[int(col)] = dup[dup != col]

    excluded = []
    for q, c in zip(pairs_arr[:, 0], pos_cols, strict=True):
        others = positives_of[int(q)] - {int(c)}
        excl = np.union1d(np.fromiter(others, dtype=np.int64, count=len(others)), near_dup[int(c)])
        excluded.append(excl.astype(np.int64))

    full = len(columns) <= max_full
    hard = None
    if not full:
        n_queries = int(pairs_arr[:, 0].max()) + 1
        k = min(n_hard + 8, len(columns))
        idx, _ = search(query_embeddings[:n_queries], cand, k=k)
        hard = np.empty((n_queries, n_hard), dtype=np.int64)
        rng = np.random.default_rng(0)
        for q in range(n_queries):
            bad = positives_of.get(q, set())
            picks = [c for c in idx[q] if c not in bad][:n_hard]
            while len(picks) < n_hard:
                picks.append(int(rng.integers(len(columns))))
            hard[q] = picks
    lengths = np.array([len(e) for e in excluded], dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.concatenate(excluded) if len(excluded) else np.zeros(0, dtype=np.int64)
    return NegativePlan(columns, pairs_arr[:, 0], pos_cols, excluded, ptr, flat.astype(np.int64), hard, full)


def excluded_pairs(plan: NegativePlan, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row in batch, excluded column) for every false negative of the pairs in ``batch``."""
    starts, ends = plan.excluded_ptr[batch], plan.excluded_ptr[batch + 1]
    lengths = ends - starts
    if not lengths.sum():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows = np.repeat(np.arange(len(batch)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return rows, plan.excluded_cols[np.repeat(starts, lengths) + offsets]
