"""Retrieval metrics over TREC/BEIR-style qrels and runs, named as strings (``"hit@10"``, ``"ndcg@10"``, ``"map"``).

Conventions follow trec_eval / ranx: a document is relevant when its qrels score is > 0; only queries that have at
least one relevant document are evaluated; a query missing from the run scores 0. With ranked list ``r_1..r_n``,
relevance ``rel(d)`` and ``R`` relevant documents in total:

- ``hit@k``       = 1 if any of ``r_1..r_k`` is relevant, else 0.
- ``precision@k`` = |relevant in top k| / k.
- ``recall@k``    = |relevant in top k| / R.
- ``mrr@k``       = 1 / rank of the first relevant document within the top k (0 if none). Voorhees, TREC-8 QA (1999).
- ``ndcg@k``      = DCG@k / IDCG@k with DCG@k = sum_i rel(r_i) / log2(i + 1) (linear gains, as trec_eval and ranx);
  IDCG is the DCG of the ideal ordering of all judged documents. Järvelin & Kekäläinen, TOIS 20(4), 2002.
- ``map@k``       = (1/R) * sum over relevant r_i with i <= k of precision@i; ``map`` uses the whole run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from qadapter.errors import QadapterError

METRIC_NAMES = ("hit", "precision", "recall", "mrr", "ndcg", "map")
DEFAULT_KS = (1, 3, 5, 10)
_PATTERN = re.compile(r"^(hit|precision|recall|mrr|ndcg|map)(?:@(\d+))?$")


def default_metrics(ks: Iterable[int] = DEFAULT_KS) -> list[str]:
    ks = list(ks)
    names = [f"{m}@{k}" for m in ("hit", "recall", "mrr", "ndcg") for k in ks]
    return [*names, "map"]


def parse_metric(name: str) -> tuple[str, int | None]:
    """Split ``"ndcg@10"`` into ``("ndcg", 10)``; ``"map"`` gives ``("map", None)``."""
    match = _PATTERN.match(name.strip().lower())
    if not match:
        raise QadapterError(
            f"unknown metric '{name}'; valid metrics are {', '.join(METRIC_NAMES)} with a cutoff, e.g. 'ndcg@10', "
            "or 'map' without one"
        )
    kind, k = match.group(1), match.group(2)
    if k is None and kind != "map":
        raise QadapterError(f"metric '{name}' needs a cutoff, e.g. '{kind}@10'")
    if k is not None and int(k) < 1:
        raise QadapterError(f"metric '{name}': the cutoff must be at least 1")
    return kind, (int(k) if k is not None else None)


def _query_metric(kind: str, k: int | None, ranked: Sequence[str], rels: Mapping[str, int]) -> float:
    relevant = {d: r for d, r in rels.items() if r > 0}
    n_rel = len(relevant)
    top = list(ranked if k is None else ranked[:k])
    flags = [1 if d in relevant else 0 for d in top]
    if kind == "hit":
        return float(any(flags))
    if kind == "precision":
        return sum(flags) / k  # type: ignore[operator]
    if kind == "recall":
        return sum(flags) / n_rel
    if kind == "mrr":
        for i, flag in enumerate(flags, start=1):
            if flag:
                return 1.0 / i
        return 0.0
    if kind == "ndcg":
        dcg = sum(relevant.get(d, 0) / math.log2(i + 1) for i, d in enumerate(top, start=1))
        ideal = sorted(relevant.values(), reverse=True)[:k]
        idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
        return dcg / idcg if idcg > 0 else 0.0
    # map
    hits, total = 0, 0.0
    for i, flag in enumerate(flags, start=1):
        if flag:
            hits += 1
            total += hits / i
    return total / n_rel


def rank(run_query: Mapping[str, float]) -> list[str]:
    """Documents of one query's run, best first; equal scores are ordered by descending document id, as trec_eval
    orders them, so results agree with trec_eval and ranx even on ties."""
    by_id = sorted(run_query.items(), key=lambda item: item[0], reverse=True)
    return [d for d, _ in sorted(by_id, key=lambda item: -item[1])]


def per_query_scores(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str],
) -> dict[str, np.ndarray]:
    """``{metric: array of per-query values}`` over the evaluated queries, in sorted query-id order."""
    parsed = [(m, *parse_metric(m)) for m in metrics]
    query_ids = evaluated_queries(qrels)
    out = {m: np.zeros(len(query_ids), dtype=np.float64) for m, _, _ in parsed}
    for i, qid in enumerate(query_ids):
        ranked = rank(run.get(qid, {}))
        for name, kind, k in parsed:
            out[name][i] = _query_metric(kind, k, ranked, qrels[qid])
    return out


def evaluated_queries(qrels: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Query ids with at least one relevant document, sorted."""
    return sorted(q for q, docs in qrels.items() if any(r > 0 for r in docs.values()))


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str] | None = None,
) -> dict[str, float]:
    """Mean of each metric over the queries that have relevant documents."""
    metrics = list(metrics or default_metrics())
    scores = per_query_scores(qrels, run, metrics)
    if not evaluated_queries(qrels):
        raise QadapterError("no query in the qrels has a relevant document (score > 0); nothing to evaluate")
    return {m: float(v.mean()) for m, v in scores.items()}
