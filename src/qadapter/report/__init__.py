"""The human-readable report written next to every trained adapter: ``report.md`` plus PNG charts.

Inputs are plain dicts (JSON-friendly), described by the TypedDicts in :mod:`qadapter.report.markdown`::

    results = {"split": "test", "n_queries": 860, "model": "all-MiniLM-L6-v2", "store": "exact" | "chroma",
               "baseline": {metric: float}, "adapted": {metric: float},
               "comparison": qadapter.evaluate.stats.compare(...),   # optional: CIs, p-values, better/worse
               "primary_metric": "mrr@10"}                          # optional: the headline metric
    history = {"epochs": [int], "train_loss": [float], "val": [float], "val_metric": "mrr@10"}
    learning_curve = [{"n_pairs": int, "baseline": float, "adapted": float, "metric": str}]
    selection = {"candidates": [{"name": str, "params": dict, "val": {metric: float}, "chosen": bool}],
                 "chosen": str, "reason": str}

``write_report(folder, results, history=..., learning_curve=..., selection=...)`` writes ``report.md``,
``metrics.png``, and when their data is given ``training.png`` and ``learning_curve.png``. ``format_table(results)``
is the short before/after table the CLI prints. matplotlib is imported only when a chart is drawn.
"""

from qadapter.report.markdown import (
    Candidate,
    CurvePoint,
    History,
    Results,
    Selection,
    format_table,
    headline,
    learning_curve_reading,
    render_markdown,
    write_report,
)

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
