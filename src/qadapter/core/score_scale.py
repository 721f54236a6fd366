"""Keep similarity cut-offs meaningful after an adapter: a monotone map between the base and the adapted score scale.

An adapter changes the cosine scores a store returns (on AppleQA the median score of a relevant document fell from
0.49 to 0.23), so an app that keeps "chunks with score > 0.4" silently loses most results. The mapping here is fitted
at train time, never on test data: the top-``k`` scores of the training/validation queries under the base model and
under the adapter are summarised by their quantiles, and a base score ``t`` corresponds to the adapted score with the
same share of results above it (quantile matching).

Both directions are strictly increasing piecewise-linear functions, so applying them never reorders results:

* :func:`map_threshold` turns a base-scale cut-off into the adapted one (``0.5 -> 0.21``);
* :func:`to_base_scale` puts adapted scores back on the base scale, for apps that keep their old cut-offs.

The mapping is a plain JSON-serialisable dict, recorded in the adapter config under ``score_scale``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qadapter.errors import QadapterError

#: format name written into every mapping (and checked when one is applied)
METHOD = "quantile"
#: number of quantile knots stored (0%, 0.5%, ..., 100%)
N_KNOTS = 201
#: top-k depth whose scores are matched by default (what a RAG app typically retrieves)
DEFAULT_K = 10
_SPREAD = 1e-9  # keeps knots strictly increasing where quantiles tie


def fit_score_mapping(
    base_scores: np.ndarray, adapted_scores: np.ndarray, *, k: int | None = None
) -> dict[str, Any]:
    """Fit the quantile mapping from two samples of returned scores (e.g. the top-``k`` scores of training queries).

    ``base_scores`` are the scores the base model returns, ``adapted_scores`` those with the adapter, for the same
    queries; any shape is flattened. ``k`` is recorded so readers know which results the shares refer to.
    """
    base = _finite_sample(base_scores, "base_scores")
    adapted = _finite_sample(adapted_scores, "adapted_scores")
    probs = np.linspace(0.0, 1.0, N_KNOTS)
    return {
        "method": METHOD,
        "k": k,
        "n_base": int(base.size),
        "n_adapted": int(adapted.size),
        "probs": [round(float(p), 6) for p in probs],
        "base": _knots(base, probs).tolist(),
        "adapted": _knots(adapted, probs).tolist(),
    }


def score_mapping_for(
    base_queries: np.ndarray,
    adapted_queries: np.ndarray,
    doc_embeddings: np.ndarray,
    *,
    k: int = DEFAULT_K,
) -> dict[str, Any]:
    """One call for train time: search the documents with both query sets and fit the mapping of their top-k scores."""
    from qadapter.core.ann import nearest

    if len(base_queries) != len(adapted_queries):
        raise QadapterError(
            f"got {len(base_queries)} base query vectors but {len(adapted_queries)} adapted ones; "
            "pass the same queries before and after the adapter"
        )
    # an approximate index above ANN_ABOVE documents: the mapping needs the score distributions, not exact ranks
    _, base = nearest(base_queries, doc_embeddings, k=k)
    _, adapted = nearest(adapted_queries, doc_embeddings, k=k)
    return fit_score_mapping(base, adapted, k=min(k, len(doc_embeddings)))


def map_threshold(mapping: dict[str, Any], threshold: float) -> float:
    """The adapted-scale cut-off that keeps the same share of results as ``threshold`` on the base scale."""
    base, adapted = _checked(mapping)
    return float(_interp(np.asarray([threshold], dtype=np.float64), base, adapted)[0])


def to_base_scale(mapping: dict[str, Any], scores: np.ndarray | float) -> np.ndarray:
    """Adapted scores expressed on the base model's scale; strictly increasing, so rankings never change."""
    base, adapted = _checked(mapping)
    values = np.asarray(scores, dtype=np.float64)
    return _interp(values.reshape(-1), adapted, base).reshape(values.shape)


def share_above(scores: np.ndarray, threshold: float) -> float:
    """Share of ``scores`` strictly above ``threshold`` (0 for an empty array)."""
    values = np.asarray(scores).reshape(-1)
    return float((values > threshold).mean()) if values.size else 0.0


def _finite_sample(scores: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if values.size < 2:
        raise QadapterError(
            f"{name} has {values.size} finite score(s); the score mapping needs at least 2 "
            "(fit it on the top-k scores of the training queries)"
        )
    return values


def _knots(values: np.ndarray, probs: np.ndarray) -> np.ndarray:
    knots = np.quantile(values, probs)
    # strictly increasing knots make the interpolation invertible (ties would merge distinct scores)
    return np.maximum.accumulate(knots) + _SPREAD * np.arange(len(knots))


def _checked(mapping: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(mapping, dict) or mapping.get("method") != METHOD:
        got = mapping.get("method") if isinstance(mapping, dict) else type(mapping).__name__
        raise QadapterError(
            f"score mapping has method {got!r}, expected {METHOD!r}; fit it with qadapter.core.score_scale.fit_score_mapping"
        )
    base = np.asarray(mapping.get("base", []), dtype=np.float64)
    adapted = np.asarray(mapping.get("adapted", []), dtype=np.float64)
    if (
        base.size < 2
        or base.shape != adapted.shape
        or np.any(np.diff(base) <= 0)
        or np.any(np.diff(adapted) <= 0)
    ):
        raise QadapterError(
            "score mapping knots are missing, of unequal length or not increasing; refit it with fit_score_mapping"
        )
    return base, adapted


def _interp(x: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Piecewise-linear ``src -> dst``; beyond the fitted range it shifts by the end offset (slope 1, still monotone)."""
    out = np.interp(x, src, dst)
    low, high = x < src[0], x > src[-1]
    out[low] = x[low] + (dst[0] - src[0])
    out[high] = x[high] + (dst[-1] - src[-1])
    return out
