"""Choose the adapter on validation data carved out of the training split, with the identity always a candidate.

Validation has up to two parts, both taken from the *training* split (never from the split being reported):

- ``new-documents``: every query of a random subset of documents (whole connected groups of queries and documents,
  so no document is on both sides). It predicts what happens to documents added after training.
- ``seen-documents``: some other queries of documents that keep training queries. It predicts what happens to new
  queries about documents that had training queries.

Each candidate is fitted on the rest with its whole schedule and judged once, at its end, on the validation parts
(nothing is picked per epoch, so the judges are not flattered by having chosen the epoch).

Training sets below ``SelectionRules.crossfit_below`` queries are judged by cross-fitting instead
(:mod:`qadapter.train.crossfit`): every training query judges once, with the same parts and rules, except that the
confidence comes from each query's log-rank of its relevant document (a finer score than the metric) against
bars that count the rows judged.

Objectives (what the winner maximises):

- ``balanced`` (default): the mean gain over the identity across parts.
- ``seen``: the gain on seen documents.
- ``covered``: for a corpus whose documents (nearly) all have training queries, so that queries about documents
  without them are rare: each part weighs what it stands for in the corpus, ``coverage`` (the share of corpus
  documents with training queries) for seen documents and ``1 - coverage`` for new ones.

The winner must (1) gain with confidence: at least ``min_z`` = 2 standard errors above zero, which also keeps the
chance of shipping a map fitted to noise small across several candidates; and (2) under ``balanced`` and ``seen``,
show no evidence of harm on documents without training queries: their gain not more than ``max_harm_z`` = 1
standard error below zero. Under ``covered`` such harm is not a veto (the corpus has next to no such documents) but
is reported in the reason, because documents added later are such documents. When no candidate qualifies,
qadapter ships the identity and says so. The winner is then refitted, with the same schedule, on all training
queries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qadapter.adapters import Adapter
from qadapter.train.candidates import (
    Augmentation,
    Candidate,
    _fit_candidate,
    _fit_candidates,
    _pairs,
    default_candidates,
    search_device,
    training_set,
)
from qadapter.train.config import History
from qadapter.train.crossfit import select_crossfit
from qadapter.train.judging import (
    CROSSFIT_BELOW,
    MIN_PART,
    SelectionResult,
    SelectionRules,
    _components,
    _no_winner_reason,
    _winner,
    _winner_reason,
    table_row,
)
from qadapter.train.objectives import NEW, OBJECTIVES, SEEN, part_weights
from qadapter.train.validation import RowQueries, per_query

logger = logging.getLogger(__name__)

# the names other modules and tests read from here (the candidates and judging modules hold them)
__all__ = [
    "CROSSFIT_BELOW",
    "MIN_PART",
    "NEW",
    "OBJECTIVES",
    "SEEN",
    "Augmentation",
    "Candidate",
    "SelectionResult",
    "SelectionRules",
    "_components",
    "_fit_candidate",
    "_pairs",
    "default_candidates",
    "select",
    "table_row",
    "training_set",
    "MAX_PART",
    "validation_split",
]


# -- validation split --------------------------------------------------------------------------------------------

#: the most queries a validation part holds: its standard error is then below ~0.01 MRR@10, and judging a candidate
#: costs part x corpus similarities, which must not grow with a large training set (the rest of the queries fit)
MAX_PART = 2_000


def _new_documents_part(rels: Sequence[dict[int, int]], rng: np.random.Generator, size: float) -> list[int]:
    """Whole groups of connected queries and documents, in random order, until ``size`` queries."""
    groups = _components(rels)
    order = rng.permutation(len(groups))
    new: list[int] = []
    if len(groups) > 1:
        for g in order:
            if len(new) >= size:
                break
            if len(new) + len(groups[g]) <= 2 * size:
                new.extend(groups[g])
    return new


def _seen_documents_part(rels: Sequence[dict[int, int]], remaining: list[int], size: float) -> list[int]:
    """Queries (in the order of ``remaining``) whose every document keeps another query for fitting."""
    count: dict[int, int] = {}
    for q in remaining:
        for d in rels[q]:
            count[d] = count.get(d, 0) + 1
    seen: list[int] = []
    for q in remaining:
        if len(seen) >= size:
            break
        if all(count[d] >= 2 for d in rels[q]):
            seen.append(q)
            for d in rels[q]:
                count[d] -= 1
    return seen


def validation_split(
    rels: Sequence[dict[int, int]],
    *,
    new_fraction: float = 0.15,
    seen_fraction: float = 0.1,
    min_part: int = 10,
    max_part: int = MAX_PART,
    seed: int = 0,
) -> tuple[list[int], dict[str, list[int]]]:
    """Split training queries (by row) into a fitting part and validation parts (see the module docstring); a part
    holds at most ``max_part`` queries (the rest fit)."""
    rng = np.random.default_rng(seed)
    n = len(rels)
    new = _new_documents_part(rels, rng, min(new_fraction * n, max_part))
    new_set = set(new)
    remaining = [int(q) for q in rng.permutation(n) if q not in new_set]
    seen = _seen_documents_part(rels, remaining, min(seen_fraction * n, max_part))
    parts = {name: sorted(rows) for name, rows in ((NEW, new), (SEEN, seen)) if len(rows) >= min_part}
    held = {q for rows in parts.values() for q in rows}
    return [q for q in range(n) if q not in held], parts


# -- selection ---------------------------------------------------------------------------------------------------


@dataclass
class _Judges:
    """The validation parts, the base model's per-query scores on them and how much each part counts."""

    parts: dict[str, RowQueries]
    base: dict[str, np.ndarray]
    weights: dict[str, float]
    #: where the judging searches run (None: numpy on the CPU; else the training device, see search_device)
    device: str | None = None


def select(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    rels: Sequence[dict[int, int]],
    *,
    candidates: Sequence[Candidate] | None = None,
    rules: SelectionRules | None = None,
    negative_pool: np.ndarray | None = None,
    augmentation: Augmentation | None = None,
    progress: bool = False,
) -> SelectionResult:
    """Try ``candidates`` on validation parts of the training queries and refit the winner on all of them."""
    rules = (rules or SelectionRules()).resolved()
    start = time.perf_counter()
    candidates = list(candidates or default_candidates())
    if len(rels) < rules.crossfit_below:
        args = (candidates, rules, negative_pool, augmentation, progress)
        return select_crossfit(query_embeddings, doc_embeddings, rels, *args)
    dim = doc_embeddings.shape[1]
    fit_rows, parts_rows = validation_split(rels, seed=rules.seed)
    sizes = {"fit_queries": len(fit_rows), **{f"val_{k}": len(v) for k, v in parts_rows.items()}}
    if not parts_rows:
        reason = (
            f"only {len(rels)} training queries: too few to hold out validation queries, so no adapter can be shown "
            "to help; kept the base model (identity). Add labelled or generated queries and train again."
        )
        return SelectionResult(
            Adapter.identity(dim), "identity", reason, [], None, sizes, time.perf_counter() - start
        )
    judges = _judges(query_embeddings, doc_embeddings, rels, parts_rows, rules, search_device(candidates))
    Q_fit, fit_pairs = training_set(query_embeddings, fit_rows, rels, augmentation)
    # Every candidate trains its whole schedule and is judged once, at its end, on the validation parts. Picking
    # epochs on validation data as well (the first design) needed half of it to early-stop, which left noisier
    # judges, and the refit's epoch count inherited that noise: on AppleQA development splits it cost about
    # 0.01-0.02 MRR@10 against fixed schedules (benchmarks/results/recipe_dev.md).
    table: list[dict[str, Any]] = []
    histories: dict[str, History | None] = {}
    val = (judges.parts, judges.weights)
    fitted = _fit_candidates(candidates, Q_fit, doc_embeddings, fit_pairs, val, negative_pool, progress)
    for cand in candidates:
        adapter, histories[cand.name], best_epoch, seconds = fitted[cand.name]
        t0 = time.perf_counter()
        row = _judge(cand, adapter, doc_embeddings, judges, rules.metric)
        row["epochs"] = best_epoch
        row["seconds"] = round(seconds + time.perf_counter() - t0, 2)
        table.append(row)
        logger.info(
            "candidate %s: gain %+.4f (z=%.2f) %s", cand.name, row["mean_gain"], row["z"], row["gain"]
        )

    winner = _winner(table, rules)
    if winner is None:
        reason = _no_winner_reason(table, rules.metric)
        return SelectionResult(
            Adapter.identity(dim), "identity", reason, table, None, sizes, time.perf_counter() - start
        )
    cand = next(c for c in candidates if c.name == winner["name"])
    reason = _winner_reason(winner, rules)
    Q_all, all_pairs = training_set(query_embeddings, range(len(rels)), rels, augmentation)
    adapter, _, _ = _fit_candidate(cand, Q_all, doc_embeddings, all_pairs, None, negative_pool, progress)
    return SelectionResult(
        adapter, cand.name, reason, table, histories[cand.name], sizes, time.perf_counter() - start
    )


def _judges(
    Q: np.ndarray,
    D: np.ndarray,
    rels: Sequence[dict[int, int]],
    parts_rows: dict[str, list[int]],
    rules: SelectionRules,
    device: str | None = None,
) -> _Judges:
    parts = {name: RowQueries(Q[rows], [rels[q] for q in rows]) for name, rows in parts_rows.items()}
    base = {
        name: per_query(part.embeddings, D, part.rels, [rules.metric], device=device)[rules.metric]
        for name, part in parts.items()
    }
    return _Judges(parts, base, part_weights(rules.objective, rules.coverage, list(parts)), device)


def _judge(cand: Candidate, adapter: Adapter, D: np.ndarray, judges: _Judges, metric: str) -> dict[str, Any]:
    """One row of the selection table for ``adapter`` scored on the validation parts."""
    scores = {
        name: per_query(adapter.transform(part.embeddings), D, part.rels, [metric], device=judges.device)[
            metric
        ]
        for name, part in judges.parts.items()
    }
    return table_row(cand.name, cand.describe(), scores, judges.base, judges.weights)
