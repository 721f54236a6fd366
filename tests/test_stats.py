"""Paired bootstrap CIs and randomization tests: known cases, calibration, agreement with scipy, determinism."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from scipy import stats as scipy_stats

from qadapter.errors import QadapterError
from qadapter.evaluate.stats import compare, randomization_test


def _pair(n: int, shift: float, seed: int = 0, noise: float = 0.2):
    rng = np.random.default_rng(seed)
    base = rng.random(n)
    return {"mrr@10": base}, {"mrr@10": base + shift + rng.normal(0, noise, n)}


@pytest.mark.parametrize("n", [5, 300])  # exact enumeration and Monte Carlo paths
def test_identical_systems(n):
    base = {"mrr@10": np.linspace(0, 1, n), "hit@10": (np.arange(n) % 2).astype(float)}
    out = compare(base, {k: v.copy() for k, v in base.items()})
    for res in out.values():
        assert res["delta"] == 0.0
        assert res["p_value"] == 1.0
        assert res["p_wilcoxon"] == 1.0
        assert res["delta_ci"][0] <= 0.0 <= res["delta_ci"][1]
        assert res["significant"] is False
        assert (res["better"], res["worse"], res["tied"]) == (0, 0, n)


def test_clearly_better_system():
    base, adapted = _pair(200, shift=0.15)
    res = compare(base, adapted, n_perm=5000)["mrr@10"]
    assert res["p_value"] <= 2 / 5001  # no sign flip of 5000 reaches the observed mean difference
    assert res["p_wilcoxon"] < 1e-6
    assert res["significant"] is True
    assert 0 < res["delta_ci"][0] < res["delta"] < res["delta_ci"][1]
    assert res["better"] > res["worse"] and res["better"] + res["worse"] + res["tied"] == 200
    assert res["adapted"] - res["baseline"] == pytest.approx(res["delta"])
    assert res["baseline_ci"][0] < res["baseline"] < res["baseline_ci"][1]
    assert res["adapted_ci"][0] < res["adapted"] < res["adapted_ci"][1]


def test_exact_randomization_p_value_by_hand():
    # Differences (1, 1, 1): of the 8 sign patterns only +++ and --- reach |mean| >= 1, so p = 2/8.
    assert randomization_test(np.array([[1.0, 1.0, 1.0]]), n_perm=1, rng=np.random.default_rng())[0] == 0.25
    # Differences (3, 1, -1), observed sum 3. The 8 sign patterns give sums 5, 3, 3, 1, -1, -3, -3, -5;
    # six of them have |sum| >= 3, so p = 6/8.
    assert randomization_test(np.array([[3.0, 1.0, -1.0]]), n_perm=1, rng=np.random.default_rng())[0] == 0.75


def test_exact_p_value_agrees_with_scipy_permutation_test():
    rng = np.random.default_rng(3)
    x, y = rng.random(10), rng.random(10) + 0.2
    ours = compare({"m": x}, {"m": y})["m"]["p_value"]
    ref = scipy_stats.permutation_test(
        (y, x),
        lambda a, b: np.mean(a - b),
        permutation_type="samples",
        alternative="two-sided",
        n_resamples=np.inf,
    ).pvalue
    assert ours == pytest.approx(ref)


def test_monte_carlo_p_value_agrees_with_scipy_permutation_test():
    base, adapted = _pair(80, shift=0.04, seed=5)
    ours = compare(base, adapted, n_perm=20000)["mrr@10"]["p_value"]
    x, y = base["mrr@10"], adapted["mrr@10"]
    ref = scipy_stats.permutation_test(
        (y, x), lambda a, b, axis: np.mean(a - b, axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=20000, alternative="two-sided", random_state=1,
    ).pvalue  # fmt: skip
    assert 0.005 < ref < 0.5  # a case where the p-value is neither 0 nor 1, so the comparison means something
    assert ours == pytest.approx(ref, abs=0.015)  # two Monte Carlo estimates, SE ~ 0.002 each


def test_bootstrap_ci_matches_normal_theory_and_scipy():
    base, adapted = _pair(1000, shift=0.05, seed=2)
    res = compare(base, adapted, n_boot=4000)["mrr@10"]
    d = adapted["mrr@10"] - base["mrr@10"]
    half_width = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    assert res["delta_ci"][1] - res["delta_ci"][0] == pytest.approx(2 * half_width, rel=0.1)
    ref = scipy_stats.bootstrap((d,), np.mean, method="percentile", n_resamples=4000, random_state=0)
    assert res["delta_ci"] == pytest.approx(
        [ref.confidence_interval.low, ref.confidence_interval.high], abs=0.003
    )


def test_ci_coverage_and_test_size_are_sane():
    # 200 synthetic experiments with a known true delta of 0.05: the 95% CI should cover it ~95% of the time.
    covered, rejected_under_null = 0, 0
    trials = 200
    for i in range(trials):
        rng = np.random.default_rng(1000 + i)
        base = rng.random(100)
        res = compare(
            {"m": base, "null": base},
            {"m": base + 0.05 + rng.normal(0, 0.3, 100), "null": base + rng.normal(0, 0.3, 100)},
            n_boot=400,
            n_perm=400,
            seed=i,
            wilcoxon=False,
        )
        lo, hi = res["m"]["delta_ci"]
        covered += lo <= 0.05 <= hi
        rejected_under_null += res["null"]["significant"]
    assert 0.88 <= covered / trials <= 0.99
    assert rejected_under_null / trials <= 0.10  # nominal 5%; loose bound for 200 trials


def test_deterministic_for_a_seed():
    base, adapted = _pair(150, shift=0.02, seed=9)
    assert compare(base, adapted, seed=4) == compare(base, adapted, seed=4)
    assert (
        compare(base, adapted, seed=4)["mrr@10"]["delta_ci"]
        != compare(base, adapted, seed=5)["mrr@10"]["delta_ci"]
    )


def test_output_is_json_serialisable_and_alpha_is_respected():
    base, adapted = _pair(50, shift=0.03, seed=1)
    out = compare(base, adapted, alpha=0.1)
    assert json.loads(json.dumps(out)) == out
    res = out["mrr@10"]
    assert res["alpha"] == 0.1 and res["significant"] == (res["p_value"] < 0.1)
    wide = compare(base, adapted, alpha=0.01)["mrr@10"]["delta_ci"]
    assert wide[0] < res["delta_ci"][0] and wide[1] > res["delta_ci"][1]  # 99% CI wider than 90%


def test_fast_enough_for_twenty_metrics_on_a_thousand_queries():
    rng = np.random.default_rng(0)
    base = {f"m{i}": rng.random(1000) for i in range(20)}
    adapted = {k: v + rng.normal(0.01, 0.1, 1000) for k, v in base.items()}
    compare(base, adapted, n_boot=10)  # warm up (scipy import)
    start = time.perf_counter()
    out = compare(base, adapted, n_boot=2000)
    assert time.perf_counter() - start < 2.0  # ~0.4 s on 2 cores; generous for busy CI machines
    assert list(out) == list(base)


@pytest.mark.parametrize(
    ("baseline", "adapted", "match"),
    [
        ({"a": np.ones(3)}, {"b": np.ones(3)}, "different metrics"),
        ({"a": np.ones(3)}, {"a": np.ones(4)}, "pair up"),
        ({"a": np.ones(3), "b": np.ones(2)}, {"a": np.ones(3), "b": np.ones(2)}, "differ in length"),
        ({"a": np.array([1.0, np.nan])}, {"a": np.ones(2)}, "NaN"),
        ({"a": np.ones((2, 2))}, {"a": np.ones((2, 2))}, "1-D"),
        ({"a": np.array([])}, {"a": np.array([])}, "no queries"),
    ],
)
def test_bad_input_is_a_user_error(baseline, adapted, match):
    with pytest.raises(QadapterError, match=match):
        compare(baseline, adapted)


def test_bad_alpha_is_a_user_error():
    with pytest.raises(QadapterError, match="alpha"):
        compare({"a": np.ones(3)}, {"a": np.ones(3)}, alpha=1.5)
