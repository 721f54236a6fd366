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

from qadapter.data.atomic import atomic_open

if TYPE_CHECKING:
    from qadapter.report.markdown import CurvePoint, History, Results

BASE_COLOR = "#9aa5b1"
ADAPTED_COLOR = "#1f77b4"
LOSS_COLOR = "#d62728"
DPI = 120


def metrics_chart(path: str | Path, results: Results) -> Path:
    """Grouped bars, base model vs adapter, one group per metric, with bootstrap CI error bars when available."""
    names = list(results["baseline"])
    base = np.array([results["baseline"][m] for m in names])
    adapted = np.array([results["adapted"].get(m, np.nan) for m in names])
    comparison = results.get("comparison") or {}
    fig = _figure(width=max(5.0, 0.55 * len(names) + 2.0), height=4.0)
    ax = fig.add_subplot()
    x = np.arange(len(names))
    width = 0.38
    base_ci = [comparison[m]["baseline_ci"] if m in comparison else None for m in names]
    adapted_ci = [comparison[m]["adapted_ci"] if m in comparison else None for m in names]
    for offset, values, intervals, label, color in (
        (-width / 2, base, base_ci, "base model", BASE_COLOR),
        (width / 2, adapted, adapted_ci, "adapter", ADAPTED_COLOR),
    ):
        yerr = _error_bars(values, intervals)
        ax.bar(x + offset, values, width, yerr=yerr, capsize=2, label=label, color=color, ecolor="#333333")
    ax.set_xticks(x, names, rotation=45 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center")
    top = max(1e-3, float(np.nanmax(np.concatenate([base, adapted]))))
    ax.set_ylim(0, top * 1.25)  # headroom for the legend above the bars
    ax.set_ylabel("score (mean over queries)")
    title = f"{results['split']} split, {results['n_queries']} queries"
    if comparison:
        level = round(100 * (1 - next(iter(comparison.values()))["alpha"]))
        title += f" (error bars: {level}% bootstrap CI)"
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", ncols=2, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def training_chart(path: str | Path, history: History) -> Path:
    """Training loss and validation metric per epoch, side by side (each panel only if its series exists)."""
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
        ax.grid(alpha=0.3)
    return _save(fig, path)


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


def _error_bars(values: np.ndarray, intervals: Sequence[Any]) -> np.ndarray | None:
    if not any(intervals):
        return None
    err = np.zeros((2, len(values)))
    for i, interval in enumerate(intervals):
        if interval:
            lo, hi = interval
            err[:, i] = [max(0.0, values[i] - lo), max(0.0, hi - values[i])]
    return err


def _epochs(history: History, n: int) -> list[int]:
    epochs = list(history.get("epochs") or [])
    return epochs if len(epochs) == n else list(range(1, n + 1))


def _figure(*, width: float, height: float) -> Any:
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
