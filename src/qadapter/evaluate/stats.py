"""Paired statistics for "did the adapter help?": bootstrap confidence intervals and a randomization test.

Both systems are scored on the *same* queries, so every comparison here is paired: it looks at the per-query
differences ``d_i = adapted_i - baseline_i`` rather than at two independent samples. This removes the (large)
query-difficulty variance and is what IR evaluation practice recommends.

- **Confidence intervals**: the percentile bootstrap (Efron & Tibshirani, *An Introduction to the Bootstrap*,
  1993, ch. 13). Queries are resampled with replacement ``n_boot`` times; the same resampled queries are used for
  the baseline mean, the adapted mean and the mean difference, so the delta interval is paired.
- **Significance**: the paired randomization (permutation) test, two-sided. Under the null hypothesis that the two
  systems are exchangeable, each query's difference is as likely to be ``+d_i`` as ``-d_i``; the p-value is the
  share of random sign flips whose mean difference is at least as extreme as the observed one. Smucker, Allan &
  Carterette (CIKM 2007, "A comparison of statistical significance tests for information retrieval evaluation")
  recommend it over the t-test, the Wilcoxon and the sign test for IR metrics. With at most ``EXACT_MAX_QUERIES``
  queries every sign pattern is enumerated (an exact test); otherwise ``n_perm`` random patterns are drawn and the
  p-value is ``(hits + 1) / (n_perm + 1)`` so it is never 0 (Phipson & Smyth, 2010).
- **Wilcoxon signed-rank** p-values (via scipy) are reported too, for readers who expect them.

Everything is vectorised: one resampling-count matrix and one matrix product cover every metric at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TypedDict

import numpy as np

from qadapter.errors import QadapterError

#: Up to this many queries the randomization test enumerates all 2**n sign patterns (exact p-value).
EXACT_MAX_QUERIES = 12
#: Differences smaller than this count as ties (metric values are sums of a few floats, so exact zero is fragile).
TIE_TOLERANCE = 1e-12
_CHUNK = 2048


class MetricComparison(TypedDict):
    """One metric's comparison; every value is a plain Python number so it serialises to JSON as-is."""

    n_queries: int
    baseline: float
    adapted: float
    delta: float
    baseline_ci: list[float]  # [low, high] percentile bootstrap interval of the baseline mean
    adapted_ci: list[float]  # same for the adapted mean
    delta_ci: list[float]  # paired bootstrap interval of the mean difference adapted - baseline
    p_value: float  # two-sided paired randomization test
    p_wilcoxon: float | None  # two-sided Wilcoxon signed-rank test (None when not requested)
    significant: bool  # p_value < alpha
    alpha: float
    better: int  # queries where adapted > baseline
    worse: int  # queries where adapted < baseline
    tied: int


def compare(
    baseline: Mapping[str, np.ndarray],
    adapted: Mapping[str, np.ndarray],
    *,
    n_boot: int = 2000,
    n_perm: int = 10000,
    seed: int = 0,
    alpha: float = 0.05,
    wilcoxon: bool = True,
) -> dict[str, MetricComparison]:
    """Compare two systems metric by metric on the same queries.

    ``baseline`` and ``adapted`` map metric names to per-query arrays in the same query order, as returned by
    :func:`qadapter.core.metrics.per_query_scores` for the same qrels. Results are deterministic for a
    given ``seed``. Returns ``{metric: MetricComparison}`` in ``baseline``'s metric order.
    """
    if set(baseline) != set(adapted):
        raise QadapterError(
            f"baseline and adapted scores cover different metrics: {sorted(baseline)} vs {sorted(adapted)}; "
            "score both runs with the same metric list"
        )
    if n_boot < 1 or n_perm < 1:
        raise QadapterError(f"n_boot and n_perm must be at least 1, got n_boot={n_boot}, n_perm={n_perm}")
    if not 0 < alpha < 1:
        raise QadapterError(f"alpha must be between 0 and 1, got {alpha}")
    names = list(baseline)
    if not names:
        return {}
    base = _stack(baseline, names, "baseline")
    adap = _stack(adapted, names, "adapted")
    if base.shape != adap.shape:
        raise QadapterError(
            f"baseline has {base.shape[1]} queries but adapted has {adap.shape[1]}; "
            "score both runs on the same qrels so the queries pair up"
        )
    n = base.shape[1]
    if n == 0:
        raise QadapterError("no queries to compare; the qrels have no query with a relevant document")

    rng = np.random.default_rng(seed)
    diff = adap - base
    # One bootstrap for all three quantities keeps them paired and costs a single matrix product.
    boot = bootstrap_means(np.vstack([base, adap, diff]), n_boot=n_boot, rng=rng)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    p_perm = randomization_test(diff, n_perm=n_perm, rng=rng)
    p_wil = _wilcoxon(diff) if wilcoxon else [None] * len(names)

    m = len(names)
    out: dict[str, MetricComparison] = {}
    for j, name in enumerate(names):
        d = diff[j]
        out[name] = MetricComparison(
            n_queries=int(n),
            baseline=float(base[j].mean()),
            adapted=float(adap[j].mean()),
            delta=float(d.mean()),
            baseline_ci=[float(lo[j]), float(hi[j])],
            adapted_ci=[float(lo[m + j]), float(hi[m + j])],
            delta_ci=[float(lo[2 * m + j]), float(hi[2 * m + j])],
            p_value=float(p_perm[j]),
            p_wilcoxon=p_wil[j],
            significant=bool(p_perm[j] < alpha),
            alpha=float(alpha),
            better=int((d > TIE_TOLERANCE).sum()),
            worse=int((d < -TIE_TOLERANCE).sum()),
            tied=int((np.abs(d) <= TIE_TOLERANCE).sum()),
        )
    return out


def bootstrap_means(values: np.ndarray, *, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``values`` (rows = series, columns = queries) over ``n_boot`` resamples of the columns.

    Each resample draws ``n`` query indices with replacement; it is stored as a count per query, so the means of
    every row are one ``(n_boot, n) @ (n, rows)`` product. Returns an array of shape ``(n_boot, rows)``.
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    n = values.shape[1]
    out = np.empty((n_boot, values.shape[0]))
    for start in range(0, n_boot, _CHUNK):
        b = min(_CHUNK, n_boot - start)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        out[start : start + b] = counts @ values.T / n
    return out


def randomization_test(diff: np.ndarray, *, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """Two-sided paired randomization test of mean(diff) == 0 for each row of ``diff`` (rows = metrics).

    Sign flips are shared across rows (the same random relabelling of queries for every metric). Returns one
    p-value per row; a row of all-zero differences gets p = 1.
    """
    diff = np.atleast_2d(np.asarray(diff, dtype=np.float64))
    n = diff.shape[1]
    observed = np.abs(diff.mean(axis=1))
    threshold = observed - 1e-12 * np.maximum(1.0, observed)  # count float-equal statistics as "as extreme"
    if n <= EXACT_MAX_QUERIES:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        stats = np.abs(signs @ diff.T / n)
        return (stats >= threshold).mean(axis=0)
    hits = np.zeros(diff.shape[0])
    for start in range(0, n_perm, _CHUNK):
        b = min(_CHUNK, n_perm - start)
        signs = rng.integers(0, 2, size=(b, n), dtype=np.int8) * 2.0 - 1.0
        hits += (np.abs(signs @ diff.T / n) >= threshold).sum(axis=0)
    return (hits + 1) / (n_perm + 1)


def _wilcoxon(diff: np.ndarray) -> list[float | None]:
    from scipy.stats import wilcoxon

    out: list[float | None] = []
    for d in diff:
        if np.all(np.abs(d) <= TIE_TOLERANCE):
            # identical systems: scipy would raise; the honest answer is "no evidence of a difference"
            out.append(1.0)
            continue
        d = np.where(np.abs(d) <= TIE_TOLERANCE, 0.0, d)
        out.append(float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue))
    return out


def _stack(scores: Mapping[str, np.ndarray], names: list[str], label: str) -> np.ndarray:
    rows = []
    for name in names:
        row = np.asarray(scores[name], dtype=np.float64)
        if row.ndim != 1:
            raise QadapterError(
                f"{label} scores for '{name}' must be a 1-D per-query array, got shape {row.shape}"
            )
        rows.append(row)
    if len({len(r) for r in rows}) > 1:
        raise QadapterError(
            f"{label} per-query arrays differ in length across metrics; use one per_query_scores call"
        )
    if not np.isfinite(np.concatenate(rows)).all():
        raise QadapterError(f"{label} scores contain NaN or infinite values")
    return np.vstack(rows)
