"""The plain-dict shapes the report reads (JSON-friendly TypedDicts), shared by ``markdown`` and ``charts``."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from qadapter.evaluate.stats import MetricComparison


class Results(TypedDict):
    """Test-set evaluation of the base model and the adapter on the same queries (``qadapter.evaluate``'s output)."""

    split: str  # qrels split the numbers come from, e.g. "test"
    n_queries: int
    model: str  # base embedding model name
    store: str  # where retrieval ran: one of qadapter.evaluate.EVAL_STORES
    baseline: dict[str, float]  # metric -> mean over queries
    adapted: dict[str, float]
    comparison: NotRequired[dict[str, MetricComparison]]  # output of qadapter.evaluate.stats.compare
    primary_metric: NotRequired[str]  # metric for the headline (else history's val_metric, else mrr@10, ...)
    offline_share: NotRequired[float]  # share of test queries that are offline pseudo-queries
    caveat: NotRequired[str | None]  # the sentence said next to the headline number when that share is > 0
    curves: NotRequired[dict[str, dict[str, list[float]]]]  # run -> {"hit"|"recall"|"ndcg": [k=1, 2, ...]}
    rank_changes: NotRequired[dict[str, Any]]  # qadapter.evaluate.diagnostics.rank_changes output
    score_distribution: NotRequired[dict[str, Any]]  # bins, k, and per run: relevant / non_relevant summaries
    score_scale: NotRequired[dict[str, Any]]  # the recorded threshold mapping checked on this split


class History(TypedDict, total=False):
    """Per-epoch training history; any of the series may be missing."""

    epochs: list[int]
    train_loss: list[float]
    val: list[float]  # validation metric per epoch
    val_metric: str  # e.g. "mrr@10"
    best_epoch: int  # the epoch whose weights were kept (else the last)


class CurvePoint(TypedDict):
    """One learning-curve point: test scores after training on ``n_pairs`` (query, document) pairs."""

    n_pairs: int
    baseline: float
    adapted: float
    metric: str


class Candidate(TypedDict):
    name: str
    params: dict[str, Any]
    val: dict[str, float]  # validation metric -> score
    chosen: bool


class Selection(TypedDict):
    """What model selection tried on the validation split and what it kept."""

    candidates: list[Candidate]
    chosen: str
    reason: str
