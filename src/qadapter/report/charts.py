"""PNG charts for the report, drawn with matplotlib's object-oriented API on the Agg canvas.

We never import ``matplotlib.pyplot`` or call ``matplotlib.use``: building a ``Figure`` on a ``FigureCanvasAgg``
needs no display, leaves the caller's backend (e.g. a notebook's) alone and keeps no global figure state.
matplotlib is imported only inside these functions, so ``import qadapter`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qadapter.core.extras import require
from qadapter.data.atomic import atomic_open

if TYPE_CHECKING:
    from qadapter.report.types import CurvePoint, History, Results

BASE_COLOR = "#9aa5b1"
ADAPTED_COLOR = "#1f77b4"
LOSS_COLOR = "#d62728"
UP_COLOR = "#2ca02c"
DOWN_COLOR = "#d62728"
#: the two series of each score-distribution panel: (summary key, colour, label)
SCORE_SERIES = (
    ("relevant", ADAPTED_COLOR, "relevant"),
    ("non_relevant", LOSS_COLOR, "non-relevant in top {k}"),
)
DPI = 120


def metric_curves_chart(path: str | Path, results: Results) -> Path:
    """hit@k, recall@k and ndcg@k for k = 1..depth, base model vs adapter (one panel per metric).

    When hit@k equals recall@k for both systems (every query has one relevant document) one panel shows both.
    """
    curves = results.get("curves") or {}
    base, adapted = curves.get("baseline") or {}, curves.get("adapted") or {}
    panels = [m for m in ("hit", "recall", "ndcg") if base.get(m) and adapted.get(m)]
    same = (
        "hit" in panels
        and "recall" in panels
        and base["hit"] == base["recall"]
        and adapted["hit"] == adapted["recall"]
    )
    if same:
        panels.remove("recall")
    fig = _figure(width=4.0 * max(1, len(panels)), height=3.6)
    for i, metric in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), i)
        k = np.arange(1, len(base[metric]) + 1)
        ax.plot(k, base[metric], color=BASE_COLOR, linestyle="--", linewidth=2, label="base model")
        ax.plot(k, adapted[metric], color=ADAPTED_COLOR, linewidth=2, label="adapter")
        ax.set_xscale("log")
        ticks = [t for t in (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= k[-1]]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("k (results kept per query)")
        title = "hit@k = recall@k" if metric == "hit" and same else f"{metric}@k"
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if i == 1:
            ax.set_ylabel(f"mean over {results['n_queries']} {results['split']} queries")
            ax.legend(loc="lower right", frameon=False)
    return _save(fig, path)


def rank_change_chart(path: str | Path, changes: dict[str, Any]) -> Path:
    """Queries per rank-change bucket of their first relevant document (red: moved down, green: moved up)."""
    labels, counts = list(changes["buckets"]), list(changes["counts"])
    colors = [
        DOWN_COLOR if b.startswith("down") else UP_COLOR if b.startswith("up") else BASE_COLOR for b in labels
    ]
    fig = _figure(width=6.5, height=3.6)
    ax = fig.add_subplot()
    bars = ax.bar(np.arange(len(labels)), counts, color=colors)
    ax.bar_label(bars, fontsize=8)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel("queries")
    ax.set_ylim(0, max(1, max(counts)) * 1.15)
    ax.set_title(
        f"first relevant document: {changes['up']} queries up, {changes['down']} down, {changes['same']} same",
        fontsize=10,
    )
    ax.set_xlabel(f"change of rank (not in the top {changes['depth']} counts as rank {changes['depth'] + 1})")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def score_distribution_chart(
    path: str | Path, dist: dict[str, Any], scale: dict[str, Any] | None = None
) -> Path:
    """Histograms of relevant and returned non-relevant scores, base model (left) and adapter (right)."""
    edges = np.asarray(dist["bins"], dtype=float)
    lo, hi = _occupied_range(dist, edges)
    fig = _figure(width=9.0, height=4.0)
    panels = (("baseline", "base model", "threshold"), ("adapted", "adapter", "mapped_threshold"))
    for i, (name, title, cut) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, 2, i, sharey=fig.axes[0] if i > 1 else None)
        for kind, color, label in SCORE_SERIES:
            summary = dist[name][kind]
            counts = np.asarray(summary["counts"], dtype=float)
            ax.stairs(
                counts / max(1.0, counts.sum()),
                edges,
                color=color,
                linewidth=1.8,
                label=f"{label.format(k=dist.get('k', 'k'))}, median {_fmt(summary.get('median'))}",
            )
            if summary.get("median") is not None:
                ax.axvline(summary["median"], color=color, linestyle=":", linewidth=1)
        if scale:
            ax.axvline(scale[cut], color="black", linewidth=1, label=f"cut-off {scale[cut]:.2f}")
        ax.set_xlim(lo, hi)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("cosine score")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, frameon=False, fontsize=8)
        ax.grid(alpha=0.3)
    fig.axes[0].set_ylabel("share of scores")
    return _save(fig, path)


def training_chart(path: str | Path, history: History) -> Path:
    """Training loss and validation metric per epoch, side by side (each panel only if its series exists)."""
    return _save(training_figure(history), path)


def training_figure(history: History) -> Any:
    """The figure of :func:`training_chart`; epochs are labelled with whole numbers only."""
    require("matplotlib", purpose="the report's charts")
    from matplotlib.ticker import MaxNLocator

    loss, val = history.get("train_loss") or [], history.get("val") or []
    panels = [p for p in (("loss", loss), ("val", val)) if p[1]]
    fig = _figure(width=4.2 * max(1, len(panels)), height=3.4)
    for i, (kind, series) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), i)
        epochs = _epochs(history, len(series))
        if kind == "loss":
            ax.plot(epochs, series, marker="o", markersize=3, color=LOSS_COLOR)
            ax.set_title("training loss", fontsize=10)
        else:
            name = history.get("val_metric", "validation metric")
            ax.plot(epochs, series, marker="o", markersize=3, color=ADAPTED_COLOR)
            kept = history.get("best_epoch")
            at = epochs.index(kept) if kept in epochs else len(series) - 1
            ax.scatter([epochs[at]], [series[at]], s=60, facecolors="none", edgecolors="black", zorder=3)
            ax.set_title(f"validation {name} (circle: kept)", fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs, never 2.5
        ax.grid(alpha=0.3)
    return fig


def learning_curve_chart(path: str | Path, curve: Sequence[CurvePoint]) -> Path:
    """Test metric vs number of training pairs for the adapter, with the base model as a reference line."""
    points = sorted(curve, key=lambda p: p["n_pairs"])
    n = np.array([p["n_pairs"] for p in points], dtype=float)
    adapted = [p["adapted"] for p in points]
    baselines = np.array([p["baseline"] for p in points])
    metric = points[-1]["metric"]
    fig = _figure(width=5.5, height=3.8)
    ax = fig.add_subplot()
    if np.allclose(baselines, baselines[0]):
        ax.axhline(baselines[0], color=BASE_COLOR, linestyle="--", label=f"base model ({baselines[0]:.3f})")
    else:  # the base model's score only varies if each point was tested on different queries
        ax.plot(n, baselines, color=BASE_COLOR, linestyle="--", label="base model")
    ax.plot(n, adapted, marker="o", color=ADAPTED_COLOR, label="adapter")
    if len(n) > 1 and n.min() > 0 and n.max() / n.min() >= 8:
        ax.set_xscale("log")
        ax.set_xticks(n, [f"{int(v)}" for v in n])  # label the measured sizes, not powers of ten
        ax.minorticks_off()
    ax.set_xlabel("training pairs")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs amount of training data", fontsize=10)
    ax.legend(loc="best", frameon=False)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _occupied_range(dist: dict[str, Any], edges: np.ndarray) -> tuple[float, float]:
    """The score range holding any counts, with one bin of margin (the full bin range when empty)."""
    total = sum(np.asarray(dist[r][k]["counts"]) for r in ("baseline", "adapted") for k, _, _ in SCORE_SERIES)
    filled = np.flatnonzero(total)
    if not filled.size:
        return float(edges[0]), float(edges[-1])
    first, last = max(0, filled[0] - 1), min(len(edges) - 1, filled[-1] + 2)
    return float(edges[first]), float(edges[last])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _epochs(history: History, n: int) -> list[int]:
    epochs = list(history.get("epochs") or [])
    return epochs if len(epochs) == n else list(range(1, n + 1))


def _figure(*, width: float, height: float) -> Any:
    require("matplotlib", purpose="the report's charts")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")
    return path
