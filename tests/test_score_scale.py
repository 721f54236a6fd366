"""The score-scale mapping: fitted on one sample, it keeps a base cut-off's share on another, and never reorders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qadapter.core.score_scale import (
    fit_score_mapping,
    map_threshold,
    score_mapping_for,
    share_above,
    to_base_scale,
)
from qadapter.errors import QadapterError


def _scores(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Base scores ~ N(0.5, 0.1) and adapted = a monotone squash of them (what an adapter does to the scale)."""
    base = np.random.default_rng(seed).normal(0.5, 0.1, n)
    return base, 0.6 * base - 0.1 + 0.05 * np.tanh(base)


def test_mapping_fitted_on_one_sample_keeps_the_share_on_another() -> None:
    mapping = fit_score_mapping(*_scores(0))
    base, adapted = _scores(1)  # held-out sample, like test queries after fitting on training queries
    for t in (0.3, 0.4, 0.5, 0.6, 0.7):
        # with a monotone change of scale the shares agree up to sampling error (sd <= 0.0035 at n=20,000)
        assert share_above(adapted, map_threshold(mapping, t)) == pytest.approx(
            share_above(base, t), abs=0.02
        )
    # without the mapping an app's cut-off keeps a very different share: the problem being solved
    assert share_above(adapted, 0.5) < share_above(base, 0.5) - 0.4


def test_to_base_scale_is_strictly_increasing_so_rankings_never_change() -> None:
    mapping = fit_score_mapping(*_scores(0, n=500))
    scores = np.concatenate(
        [np.random.default_rng(2).uniform(-1.0, 1.0, 5000), [-5.0, 5.0]]
    )  # beyond the fit too
    mapped = to_base_scale(mapping, scores)
    assert np.array_equal(np.argsort(scores, kind="stable"), np.argsort(mapped, kind="stable"))
    assert len(np.unique(mapped)) == len(np.unique(scores))  # no two scores merged into a tie
    assert mapped.shape == scores.shape


def test_the_two_directions_are_inverse_and_the_mapping_is_json() -> None:
    mapping = json.loads(json.dumps(fit_score_mapping(*_scores(3), k=10)))
    assert mapping["method"] == "quantile" and mapping["k"] == 10
    for t in (-0.5, 0.2, 0.5, 0.65, 2.0):
        assert float(to_base_scale(mapping, map_threshold(mapping, t))) == pytest.approx(t, abs=1e-9)


def test_identity_adapter_maps_thresholds_to_themselves() -> None:
    rng = np.random.default_rng(4)
    docs, queries = rng.normal(size=(300, 8)), rng.normal(size=(200, 8))
    mapping = score_mapping_for(queries, queries.copy(), docs, k=5)
    assert mapping["k"] == 5 and mapping["n_base"] == 1000
    for t in (0.2, 0.5, 0.8):
        assert map_threshold(mapping, t) == pytest.approx(t, abs=1e-6)


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(QadapterError, match="base_scores has 1 finite score"):
        fit_score_mapping(np.array([0.4, np.nan]), np.array([0.1, 0.2]))
    with pytest.raises(QadapterError, match="method 'percentile', expected 'quantile'"):
        map_threshold({"method": "percentile"}, 0.5)
    broken = {**fit_score_mapping(*_scores(0, n=100)), "adapted": [0.3, 0.2]}
    with pytest.raises(QadapterError, match="not increasing"):
        to_base_scale(broken, [0.1])
    with pytest.raises(QadapterError, match="same queries before and after"):
        score_mapping_for(np.ones((3, 4)), np.ones((2, 4)), np.ones((5, 4)))
