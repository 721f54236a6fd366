"""Scoring adapters on held-out queries, with documents addressed by corpus row (fast, no string ids)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from qadapter.evaluate.metrics import parse_metric, per_query_scores
from qadapter.evaluate.search import search


@dataclass
class RowQueries:
    """Queries as embeddings plus graded judgements keyed by corpus row."""

    embeddings: np.ndarray
    rels: list[dict[int, int]]

    def __len__(self) -> int:
        return len(self.rels)


def per_query(
    query_vectors: np.ndarray,
    doc_embeddings: np.ndarray,
    rels: Sequence[Mapping[int, int]],
    metrics: Sequence[str],
) -> dict[str, np.ndarray]:
    """Per-query metric values for ``query_vectors`` searched against all of ``doc_embeddings``."""
    depth = max([parse_metric(m)[1] or 100 for m in metrics])
    idx, scores = search(query_vectors, doc_embeddings, k=depth)
    run = {
        str(i): {str(int(j)): float(s) for j, s in zip(row, srow, strict=True)}
        for i, (row, srow) in enumerate(zip(idx, scores, strict=True))
    }
    qrels = {str(i): {str(d): g for d, g in r.items()} for i, r in enumerate(rels)}
    scores_by_metric = per_query_scores(qrels, run, metrics)
    # per_query_scores orders queries by sorted string id; put them back in row order
    order = sorted(range(len(rels)), key=str)
    inverse = np.empty(len(rels), dtype=np.int64)
    inverse[order] = np.arange(len(rels))
    return {m: v[inverse] for m, v in scores_by_metric.items()}


def score(
    transform: Callable[[np.ndarray], np.ndarray],
    queries: RowQueries,
    doc_embeddings: np.ndarray,
    metric: str,
) -> float:
    return float(
        per_query(transform(queries.embeddings), doc_embeddings, queries.rels, [metric])[metric].mean()
    )
