"""What the report shows beyond the mean metrics: metric-vs-k curves, per-query rank changes and score distributions.

Everything here works on runs (``{query_id: {doc_id: score}}``, top ``depth`` per query) and on the (query, relevant
document) pairs of the qrels, so memory grows with queries x depth and with the qrels, never with queries x documents.
The outputs are plain JSON-friendly dicts that :mod:`qadapter.report` draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qadapter.core.metrics import evaluated_queries, rank
from qadapter.core.vectors import normalize

#: metrics drawn as curves over k = 1..depth (hit = recall when each query has one relevant document)
CURVE_METRICS = ("hit", "recall", "ndcg")
#: rank-change buckets: (label, lowest change, highest change); change = base rank - adapted rank (> 0: moved up)
RANK_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("down >20", -math.inf, -21),
    ("down 6-20", -20, -6),
    ("down 2-5", -5, -2),
    ("down 1", -1, -1),
    ("same", 0, 0),
    ("up 1", 1, 1),
    ("up 2-5", 2, 5),
    ("up 6-20", 6, 20),
    ("up >20", 21, math.inf),
)
#: histogram edges of the score distributions (cosine; values outside are counted in the end bins)
SCORE_BINS = tuple(round(x, 3) for x in np.linspace(-0.2, 1.0, 49))
_QUANTILES = {"p10": 0.1, "p25": 0.25, "median": 0.5, "p75": 0.75, "p90": 0.9}


def metric_curves(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], depth: int
) -> dict[str, list[float]]:
    """Mean ``hit@k``, ``recall@k`` and ``ndcg@k`` for k = 1..depth (``{"hit": [k=1, k=2, ...], ...}``)."""
    query_ids = evaluated_queries(qrels)
    gains = np.zeros((len(query_ids), depth))
    ideal = np.zeros((len(query_ids), depth))
    n_rel = np.zeros(len(query_ids))
    for i, qid in enumerate(query_ids):
        relevant = {d: g for d, g in qrels[qid].items() if g > 0}
        ranked = rank(run.get(qid, {}))[:depth]
        gains[i, : len(ranked)] = [relevant.get(d, 0) for d in ranked]
        best = sorted(relevant.values(), reverse=True)[:depth]
        ideal[i, : len(best)] = best
        n_rel[i] = len(relevant)
    if not query_ids:
        return {name: [] for name in CURVE_METRICS}
    discount = 1.0 / np.log2(np.arange(2, depth + 2))
    dcg = np.cumsum(gains * discount, axis=1)
    idcg = np.cumsum(ideal * discount, axis=1)
    found = np.cumsum(gains > 0, axis=1)
    curves = {
        "hit": (found > 0).mean(axis=0),
        "recall": (found / n_rel[:, None]).mean(axis=0),
        "ndcg": np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0).mean(axis=0),
    }
    return {name: [round(float(v), 6) for v in values] for name, values in curves.items()}


def first_relevant_ranks(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], depth: int
) -> np.ndarray:
    """Rank (1 = top) of each evaluated query's first relevant document; ``depth + 1`` when not in the run."""
    ranks = np.full(len(evaluated_queries(qrels)), depth + 1, dtype=np.int64)
    for i, qid in enumerate(evaluated_queries(qrels)):
        for position, doc in enumerate(rank(run.get(qid, {}))[:depth], start=1):
            if qrels[qid].get(doc, 0) > 0:
                ranks[i] = position
                break
    return ranks


def rank_changes(base_ranks: np.ndarray, adapted_ranks: np.ndarray, depth: int) -> dict[str, Any]:
    """How many queries' first relevant document moved up or down, and by how much, in :data:`RANK_BUCKETS`."""
    change = np.asarray(base_ranks) - np.asarray(adapted_ranks)
    counts = [int(((change >= lo) & (change <= hi)).sum()) for _, lo, hi in RANK_BUCKETS]
    return {
        "depth": depth,
        "buckets": [label for label, _, _ in RANK_BUCKETS],
        "counts": counts,
        "up": int((change > 0).sum()),
        "down": int((change < 0).sum()),
        "same": int((change == 0).sum()),
        "found": int(((base_ranks > depth) & (adapted_ranks <= depth)).sum()),
        "lost": int(((base_ranks <= depth) & (adapted_ranks > depth)).sum()),
    }


def relevant_pair_scores(
    query_ids: Sequence[str],
    query_embeddings: np.ndarray,
    qrels: Mapping[str, Mapping[str, int]],
    doc_index: Mapping[str, int],
    doc_embeddings: np.ndarray,
) -> np.ndarray:
    """Cosine of every (query, relevant document) pair in the qrels, computed pair by pair."""
    pairs = [
        (row, doc_index[doc])
        for row, qid in enumerate(query_ids)
        for doc, grade in qrels.get(qid, {}).items()
        if grade > 0 and doc in doc_index
    ]
    if not pairs:
        return np.zeros(0, dtype=np.float32)
    rows, cols = np.asarray(pairs).T
    return np.einsum("ij,ij->i", normalize(query_embeddings[rows]), normalize(doc_embeddings[cols]))


def non_relevant_scores(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], k: int = 10
) -> np.ndarray:
    """Scores of the returned top-``k`` documents that are not relevant (what a similarity cut-off must drop)."""
    values = [
        score
        for qid in evaluated_queries(qrels)
        for doc, score in sorted(run.get(qid, {}).items(), key=lambda item: -item[1])[:k]
        if qrels[qid].get(doc, 0) <= 0
    ]
    return np.asarray(values, dtype=np.float64)


def top_scores(run: Mapping[str, Mapping[str, float]], query_ids: Sequence[str], k: int = 10) -> np.ndarray:
    """Every returned top-``k`` score of ``query_ids``, flattened (the results an app with a cut-off filters)."""
    return np.asarray(
        [s for qid in query_ids for s in sorted(run.get(qid, {}).values(), reverse=True)[:k]],
        dtype=np.float64,
    )


def distribution(scores: np.ndarray) -> dict[str, Any]:
    """Quantiles and a histogram (on :data:`SCORE_BINS`) of a sample of scores."""
    values = np.clip(np.asarray(scores, dtype=np.float64), SCORE_BINS[0], SCORE_BINS[-1])
    counts, _ = np.histogram(values, bins=np.asarray(SCORE_BINS))
    summary: dict[str, Any] = {"n": int(values.size), "counts": [int(c) for c in counts]}
    for name, q in _QUANTILES.items():
        summary[name] = round(float(np.quantile(scores, q)), 4) if values.size else None
    return summary
