"""Scoring adapters on held-out queries, with documents addressed by corpus row.

Validation runs after every epoch of every candidate, so it is vectorised: the top-k document rows of all queries are
compared with a padded array of their relevant rows at once (no per-query dictionaries). The formulas are those of
:mod:`qadapter.core.metrics` (tests check that both agree).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qadapter.core.ann import nearest
from qadapter.core.metrics import parse_metric
from qadapter.core.vectors import rank_of_best

_FAST = {"hit", "mrr", "ndcg", "recall", "precision"}


@dataclass
class RowQueries:
    """Queries as embeddings plus graded judgements keyed by corpus row."""

    embeddings: np.ndarray
    rels: list[dict[int, int]]
    _padded: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.rels)

    def padded(self) -> tuple[np.ndarray, np.ndarray]:
        """Relevant rows and grades as padded arrays (computed once: validation reads them every epoch)."""
        if self._padded is None:
            self._padded = _padded(self.rels)
        return self._padded


def _padded(rels: Sequence[Mapping[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(1, max((sum(1 for g in r.values() if g > 0) for r in rels), default=1))
    rows = np.full((len(rels), width), -1, dtype=np.int64)
    grades = np.zeros((len(rels), width), dtype=np.float64)
    for i, r in enumerate(rels):
        pos = [(d, g) for d, g in r.items() if g > 0]
        pos.sort(key=lambda item: -item[1])
        for j, (d, g) in enumerate(pos):
            rows[i, j], grades[i, j] = d, g
    return rows, grades


def per_query(
    query_vectors: np.ndarray,
    doc_embeddings: np.ndarray,
    rels: Sequence[Mapping[int, int]],
    metrics: Sequence[str],
    *,
    device: str | None = None,
    ann: str = "auto",
) -> dict[str, np.ndarray]:
    """Per-query values of cutoff metrics (hit, mrr, ndcg, recall, precision @k), searching all documents
    (blockwise exact search, on ``device`` when given; an approximate index above ``ANN_ABOVE`` documents, see
    :mod:`qadapter.core.ann`)."""
    depth = metric_depth(metrics)
    idx, _ = nearest(query_vectors, doc_embeddings, k=depth, ann=ann, device=device)
    padded = rels.padded() if isinstance(rels, RowQueries) else _padded(rels)
    return metrics_of_ranking(idx, padded, metrics)


def log_ranks(
    query_vectors: np.ndarray, doc_embeddings: np.ndarray, rels: Sequence[Mapping[int, int]]
) -> np.ndarray:
    """Per query, ``-log(rank)`` of its best relevant document among all documents (0 when it ranks first; exact).

    A finer per-query score than a cutoff metric: MRR@10 is 0 for every rank past 10 and moves in steps of 1/k near
    the top, so a map that lifts many documents from rank 40 to 15 scores nothing. Cross-fitting takes its
    confidence from this score (:mod:`qadapter.train.crossfit`). It depends on the ranking only, never on how
    similarities are scaled: a score that did, such as the softmax likelihood of the relevant document, rewards a
    map that merely flattens the similarities (on pure-noise labels it gave z > 10)."""
    rows, _ = rels.padded() if isinstance(rels, RowQueries) else _padded(rels)
    return -np.log(rank_of_best(query_vectors, doc_embeddings, rows).astype(np.float64))


def metric_depth(metrics: Sequence[str]) -> int:
    """The deepest cutoff of ``metrics`` (checking that each is a cutoff metric validation supports)."""
    parsed = [(m, *parse_metric(m)) for m in metrics]
    for name, kind, k in parsed:
        if kind not in _FAST or k is None:
            raise ValueError(f"validation supports {sorted(_FAST)} with a cutoff, not {name!r}")
    return max(int(k) for _, _, k in parsed if k is not None)


def metrics_of_ranking(
    idx: np.ndarray | Any, padded: tuple[np.ndarray, np.ndarray], metrics: Sequence[str]
) -> dict[str, np.ndarray]:
    """Per-query metric values of ranked document rows ``idx`` (queries, depth) against padded judgements."""
    parsed = [(m, *parse_metric(m)) for m in metrics]
    depth = metric_depth(metrics)
    idx = np.asarray(idx)
    # an approximate index pads with -1, which is also the judgements' padding
    idx = np.where(idx < 0, -2, idx)
    if idx.shape[1] < depth:
        idx = np.pad(idx, ((0, 0), (0, depth - idx.shape[1])), constant_values=-2)
    rows, grades = padded
    match = idx[:, :, None] == rows[:, None, :]  # (queries, depth, relevant)
    gain_at = (match * grades[:, None, :]).sum(-1)
    rel_at = match.any(-1)
    n_rel = (rows >= 0).sum(1)
    discounts = 1.0 / np.log2(np.arange(2, depth + 2))
    out: dict[str, np.ndarray] = {}
    for name, kind, k in parsed:
        assert k is not None
        hits = rel_at[:, :k]
        if kind == "hit":
            out[name] = hits.any(1).astype(np.float64)
        elif kind == "recall":
            out[name] = hits.sum(1) / np.maximum(n_rel, 1)
        elif kind == "precision":
            out[name] = hits.sum(1) / k
        elif kind == "mrr":
            first = np.argmax(hits, axis=1)
            out[name] = np.where(hits.any(1), 1.0 / (first + 1), 0.0)
        else:  # ndcg
            dcg = (gain_at[:, :k] * discounts[:k]).sum(1)
            ideal = (grades[:, : min(k, grades.shape[1])] * discounts[: min(k, grades.shape[1])]).sum(1)
            out[name] = np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0)
    return out


def score(
    transform: Callable[[np.ndarray], np.ndarray],
    queries: RowQueries,
    doc_embeddings: np.ndarray,
    metric: str,
) -> float:
    return float(
        per_query(transform(queries.embeddings), doc_embeddings, queries.rels, [metric])[metric].mean()
    )
