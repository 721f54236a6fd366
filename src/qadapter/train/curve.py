"""The learning curve: the validation metric against the number of training pairs, for the chosen kind of adapter."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from qadapter.train.candidates import search_device
from qadapter.train.crossfit import shrink
from qadapter.train.objectives import part_weights
from qadapter.train.selection import (
    Augmentation,
    Candidate,
    SelectionRules,
    _fit_candidate,
    training_set,
    validation_split,
)
from qadapter.train.validation import RowQueries, per_query

logger = logging.getLogger(__name__)

#: fitting queries above which the learning curve is not drawn: it answers "would more queries help?", which matters
#: for small training sets, and costs three more fits
CURVE_MAX_QUERIES = 20_000


def learning_curve(
    chosen: Candidate,
    Q: np.ndarray,
    D: np.ndarray,
    rels: list[dict[int, int]],
    rules: SelectionRules,
    augmentation: Augmentation | None = None,
    *,
    shrinkage: float = 1.0,
) -> list[dict[str, Any]]:
    """Validation metric (parts weighed as ``rules.objective`` weighs them) at 10%, 25%, 50% and all of the fitting
    queries, each map shrunk toward the identity by ``shrinkage`` (when the search chose a shrunk one); empty when
    there is no validation data, the chosen candidate is the identity, or there are more than
    :data:`CURVE_MAX_QUERIES` fitting queries."""
    fit_rows, parts = validation_split(rels, seed=rules.seed)
    if not parts or chosen.method == "identity":
        return []
    if len(fit_rows) > CURVE_MAX_QUERIES:
        logger.info(
            "%d fitting queries: the learning curve is drawn up to %d only", len(fit_rows), CURVE_MAX_QUERIES
        )
        return []
    val = {k: RowQueries(Q[rows], [rels[q] for q in rows]) for k, rows in parts.items()}
    weights = part_weights(rules.objective, rules.coverage, list(val))
    device = search_device([chosen])

    def score_of(transform: Callable[[np.ndarray], np.ndarray]) -> float:
        return float(
            sum(
                weights.get(k, 0.0)
                * per_query(transform(v.embeddings), D, v.rels, [rules.metric], device=device)[
                    rules.metric
                ].mean()
                for k, v in val.items()
            )
        )

    base = score_of(lambda x: x)
    rng = np.random.default_rng(rules.seed)
    shuffled = [fit_rows[i] for i in rng.permutation(len(fit_rows))]
    curve = []
    for fraction in (0.1, 0.25, 0.5, 1.0):
        rows = shuffled[: max(2, int(round(fraction * len(shuffled))))]
        Q_sub, pairs = training_set(Q, rows, rels, augmentation)
        adapter, _, _ = _fit_candidate(chosen, Q_sub, D, pairs, None)
        if shrinkage != 1.0:
            adapter = shrink(adapter, shrinkage)
        n_real = sum(1 for q in rows for g in rels[q].values() if g > 0)
        curve.append(
            {
                "n_pairs": n_real,
                "baseline": base,
                "adapted": score_of(adapter.transform),
                "metric": rules.metric,
            }
        )
    return curve
