"""The human-readable report written next to every trained adapter: ``report.md`` plus PNG charts.

Inputs are plain dicts (JSON-friendly), described by the TypedDicts in :mod:`qadapter.report.types`::

    results = qadapter.evaluate.evaluate(...)   # split, n_queries, model, store, baseline, adapted, comparison,
                                                # caveat, curves, rank_changes, score_distribution (score_scale)
    history = {"epochs": [int], "train_loss": [float], "val": [float], "val_metric": "mrr@10"}
    learning_curve = [{"n_pairs": int, "baseline": float, "adapted": float, "metric": str}]
    selection = {"candidates": [{"name": str, "params": dict, "val": {metric: float}, "chosen": bool}],
                 "chosen": str, "reason": str}

``write_report(folder, results, history=..., learning_curve=..., selection=...)`` writes ``report.md`` and a PNG
chart for each part whose data is given. ``format_table(results)`` is the short before/after table the CLI prints.
matplotlib is imported only when a chart is drawn.
"""

from qadapter.report.markdown import headline, learning_curve_reading, render_markdown, write_report
from qadapter.report.tables import format_table
from qadapter.report.types import Candidate, CurvePoint, History, Results, Selection

__all__ = [
    "Candidate",
    "CurvePoint",
    "History",
    "Results",
    "Selection",
    "format_table",
    "headline",
    "learning_curve_reading",
    "render_markdown",
    "write_report",
]
