"""The ``report.md`` written next to every trained adapter, and the short before/after table for the terminal.

The report leads with one honest sentence (the change in the primary metric, its confidence interval, its p-value
and how many queries got better or worse), then the full metric table, what model selection tried and why it chose
what it chose, the training curves and the learning curve with a plain reading of it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

from qadapter.data.atomic import atomic_open
from qadapter.errors import QadapterError
from qadapter.evaluate.stats import MetricComparison

logger = logging.getLogger(__name__)

#: A last learning-curve step that gains more than this (absolute, on a 0..1 metric) counts as "still rising".
RISING_MIN_GAIN = 0.005
#: Metrics the headline prefers, in order, when neither the results nor the history name one.
PREFERRED_METRICS = ("mrr@10", "ndcg@10", "hit@10", "recall@10")


class Results(TypedDict):
    """Test-set evaluation of the base model and the adapter on the same queries."""

    split: str  # qrels split the numbers come from, e.g. "test"
    n_queries: int
    model: str  # base embedding model name
    store: Literal["exact", "chroma"]  # where retrieval ran
    baseline: dict[str, float]  # metric -> mean over queries
    adapted: dict[str, float]
    comparison: NotRequired[dict[str, MetricComparison]]  # output of qadapter.evaluate.stats.compare
    primary_metric: NotRequired[str]  # metric for the headline (else history's val_metric, else mrr@10, ...)


class History(TypedDict, total=False):
    """Per-epoch training history; any of the series may be missing."""

    epochs: list[int]
    train_loss: list[float]
    val: list[float]  # validation metric per epoch
    val_metric: str  # e.g. "mrr@10"
    best_epoch: int  # the epoch whose weights were kept (else the last)


class CurvePoint(TypedDict):
    """One learning-curve point: test scores after training on ``n_pairs`` (query, document) pairs."""

    n_pairs: int
    baseline: float
    adapted: float
    metric: str


class Candidate(TypedDict):
    name: str
    params: dict[str, Any]
    val: dict[str, float]  # validation metric -> score
    chosen: bool


class Selection(TypedDict):
    """What model selection tried on the validation split and what it kept."""

    candidates: list[Candidate]
    chosen: str
    reason: str


def write_report(
    folder: str | Path,
    results: Results,
    *,
    history: History | None = None,
    learning_curve: Sequence[CurvePoint] | None = None,
    selection: Selection | None = None,
) -> list[Path]:
    """Write ``report.md`` and its PNG charts into ``folder``; return the paths written (report first).

    Charts are drawn only for the data given: ``metrics.png`` always, ``training.png`` when ``history`` has a
    loss or validation series, ``learning_curve.png`` when ``learning_curve`` has points. Every file is written
    atomically, so an interrupted run never leaves a half-written report.
    """
    from qadapter.report import charts  # matplotlib loads only when a report is actually written

    _check_results(results)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images: dict[str, Path] = {}
    images["metrics"] = charts.metrics_chart(folder / "metrics.png", results)
    if history and (history.get("train_loss") or history.get("val")):
        images["training"] = charts.training_chart(folder / "training.png", history)
    curve = sorted(learning_curve or [], key=lambda p: p["n_pairs"])
    if curve:
        images["learning_curve"] = charts.learning_curve_chart(folder / "learning_curve.png", curve)

    text = render_markdown(results, history=history, learning_curve=curve, selection=selection, images=images)
    report = folder / "report.md"
    with atomic_open(report, "w") as handle:
        handle.write(text)
    logger.info("wrote %s and %d chart(s)", report, len(images))
    return [report, *images.values()]


def render_markdown(
    results: Results,
    *,
    history: History | None = None,
    learning_curve: Sequence[CurvePoint] | None = None,
    selection: Selection | None = None,
    images: Mapping[str, Path] | None = None,
) -> str:
    """The report as a Markdown string; ``images`` maps section keys to chart files (linked by file name)."""
    _check_results(results)
    images = images or {}
    metric = primary_metric(results, history)
    lines = ["# qadapter report", "", headline(results, selection=selection, metric=metric), ""]
    lines += [
        f"Base model `{results['model']}`, retrieval with the `{results['store']}` store, "
        f"evaluated on the `{results['split']}` split ({results['n_queries']} queries).",
        "",
        "## Test metrics",
        "",
        *metrics_table(results),
        "",
    ]
    if results.get("comparison"):
        level = round(100 * (1 - next(iter(results["comparison"].values()))["alpha"]))
        lines += [
            f"Confidence intervals are {level}% paired percentile-bootstrap intervals over queries (Efron & "
            "Tibshirani, 1993); p is a two-sided paired randomization test on the per-query differences (Smucker, "
            "Allan & Carterette, 2007). *better / worse / tied* count queries whose score went up, down or stayed.",
            "",
        ]
    if "metrics" in images:
        lines += [f"![Base model vs adapter per metric]({images['metrics'].name})", ""]
        if results.get("comparison"):
            lines += [
                "Error bars show each system's own uncertainty. Because both systems answer the same queries, "
                "the paired interval of the delta in the table is much narrower: overlapping bars do not mean "
                "there is no difference.",
                "",
            ]
    if selection and selection.get("candidates"):
        lines += ["## Model selection", "", *selection_table(selection), ""]
        lines += [f"**Chosen:** `{selection['chosen']}`. {selection.get('reason', '')}".rstrip(), ""]
    if history and "training" in images:
        lines += [
            "## Training",
            "",
            *_training_summary(history),
            f"![Training curves]({images['training'].name})",
            "",
        ]
    if learning_curve:
        lines += ["## Learning curve", "", learning_curve_reading(learning_curve), ""]
        lines += _curve_table(learning_curve)
        if "learning_curve" in images:
            lines += ["", f"![Learning curve]({images['learning_curve'].name})"]
        lines.append("")
    return "\n".join(lines)


def headline(results: Results, *, selection: Selection | None = None, metric: str | None = None) -> str:
    """One sentence a reader can act on: what changed, how sure we are, and on how many queries."""
    metric = metric or primary_metric(results)
    base, adapted = results["baseline"][metric], results["adapted"][metric]
    where = f"on {results['n_queries']} {results['split']} queries"
    if selection is not None and _chose_identity(selection):
        return (
            "No adapter beat the base model on validation; qadapter kept the base model (identity). "
            f"The base model scores {metric} {base:.3f} {where}."
        )
    comp = (results.get("comparison") or {}).get(metric)
    delta = adapted - base
    if comp is None:
        verb = "improves" if delta > 0 else "lowers" if delta < 0 else "does not change"
        return f"The adapter {verb} {metric} from {base:.3f} to {adapted:.3f} ({delta:+.3f}) {where}; no significance test was run."
    level = round(100 * (1 - comp["alpha"]))
    lo, hi = comp["delta_ci"]
    stats = f"{delta:+.3f}, {level}% CI [{lo:+.3f}, {hi:+.3f}], {format_p(comp['p_value'], prefix=True)}"
    counts = f"{comp['better']} queries better, {comp['worse']} worse"
    if not comp["significant"]:
        return (
            f"The adapter changes {metric} from {base:.3f} to {adapted:.3f} ({stats}) {where}; {counts}. "
            f"The difference is not statistically significant at the {100 - level}% level."
        )
    if delta > 0:
        return f"The adapter improves {metric} from {base:.3f} to {adapted:.3f} ({stats}) {where}; {counts}."
    return (
        f"The adapter lowers {metric} from {base:.3f} to {adapted:.3f} ({stats}) {where}; {counts}. "
        "It hurts retrieval here: keep the base model or retrain with more or better training data."
    )


def metrics_table(results: Results) -> list[str]:
    """Markdown table rows: base, adapted, delta and (when compared) CI, p and per-query counts per metric."""
    comparison = results.get("comparison") or {}
    if comparison:
        level = round(100 * (1 - next(iter(comparison.values()))["alpha"]))
        rows = [
            f"| metric | base | adapted | delta | {level}% CI of delta | p | better / worse / tied |",
            "|---|---:|---:|---:|---|---:|---|",
        ]
    else:
        rows = ["| metric | base | adapted | delta |", "|---|---:|---:|---:|"]
    for name in results["baseline"]:
        base, adapted = results["baseline"][name], results["adapted"].get(name, math.nan)
        row = f"| {name} | {base:.3f} | {adapted:.3f} | {adapted - base:+.3f} |"
        comp = comparison.get(name)
        if comp is not None:
            lo, hi = comp["delta_ci"]
            p = format_p(comp["p_value"])
            row += f" [{lo:+.3f}, {hi:+.3f}] | {'**' + p + '**' if comp['significant'] else p} |"
            row += f" {comp['better']} / {comp['worse']} / {comp['tied']} |"
        elif comparison:
            row += " | | |"
        rows.append(row)
    return rows


def selection_table(selection: Selection) -> list[str]:
    """Markdown table of the candidates model selection tried, their validation scores and the one it kept."""
    candidates = selection["candidates"]
    metrics: list[str] = []
    for cand in candidates:
        metrics += [m for m in cand.get("val", {}) if m not in metrics]
    rows = [
        "| candidate | parameters | " + " | ".join(f"val {m}" for m in metrics) + " | chosen |",
        "|---|---|" + "---:|" * len(metrics) + ":---:|",
    ]
    for cand in candidates:
        params = ", ".join(f"{k}={_short(v)}" for k, v in cand.get("params", {}).items()) or "-"
        scores = " | ".join(f"{cand['val'][m]:.3f}" if m in cand.get("val", {}) else "-" for m in metrics)
        mark = "yes" if cand.get("chosen") or cand["name"] == selection.get("chosen") else ""
        rows.append(f"| {_cell(cand['name'])} | {_cell(params)} | {scores} | {mark} |")
    return rows


def learning_curve_reading(curve: Sequence[CurvePoint]) -> str:
    """Whether more labelled queries would likely help, read off the last step of the learning curve."""
    points = sorted(curve, key=lambda p: p["n_pairs"])
    metric = points[-1]["metric"]
    if len(points) < 2:
        return f"Only one point ({points[0]['n_pairs']} pairs), so there is no trend to read yet."
    prev, last = points[-2], points[-1]
    gain = last["adapted"] - prev["adapted"]
    step = f"{metric} {gain:+.3f} from {prev['n_pairs']} to {last['n_pairs']} training pairs"
    if gain > RISING_MIN_GAIN:
        return (
            f"The curve is still rising at the right end ({step}): more labelled queries would likely help."
        )
    return (
        f"The curve is flat at the right end ({step}): more labelled queries of the same kind are unlikely "
        "to help much; a different adapter or better queries might."
    )


def format_table(results: Results) -> str:
    """A short plain-text before/after table for the terminal: metric, base, adapted, delta (and p if compared)."""
    comparison = results.get("comparison") or {}
    header = ["metric", "base", "adapted", "delta"] + (["p"] if comparison else [])
    rows = [header]
    for name in results["baseline"]:
        base, adapted = results["baseline"][name], results["adapted"].get(name, math.nan)
        row = [name, f"{base:.3f}", f"{adapted:.3f}", f"{adapted - base:+.3f}"]
        if comparison:
            row.append(format_p(comparison[name]["p_value"]) if name in comparison else "")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )


def primary_metric(results: Results, history: History | None = None) -> str:
    """The metric the headline talks about: the one named by results or history, else a common default."""
    available = list(results["baseline"])
    for name in (results.get("primary_metric"), (history or {}).get("val_metric"), *PREFERRED_METRICS):
        if name and name in results["baseline"] and name in results["adapted"]:
            return name
    return available[0]


def format_p(p: float, *, prefix: bool = False) -> str:
    if p < 0.001:
        return "p<0.001" if prefix else "<0.001"
    return f"p={p:.3f}" if prefix else f"{p:.3f}"


def _chose_identity(selection: Selection) -> bool:
    if selection.get("chosen") == "identity":
        return True
    chosen = [
        c for c in selection.get("candidates", []) if c.get("chosen") or c["name"] == selection.get("chosen")
    ]
    return bool(chosen) and chosen[0].get("params", {}).get("kind") == "identity"


def _training_summary(history: History) -> list[str]:
    val, name = history.get("val") or [], history.get("val_metric", "validation metric")
    if not val:
        return []
    epochs = history.get("epochs") or list(range(1, len(val) + 1))
    best = max(range(len(val)), key=lambda i: val[i])
    kept = epochs.index(history["best_epoch"]) if history.get("best_epoch") in epochs else len(val) - 1
    line = f"Validation {name} {val[kept]:.3f} at epoch {epochs[kept]} of {epochs[-1]} (the weights kept)"
    if best != kept:
        line += f"; its highest, {val[best]:.3f}, was at epoch {epochs[best]}"
    return [line + ".", ""]


def _curve_table(curve: Sequence[CurvePoint]) -> list[str]:
    metric = curve[-1]["metric"]
    rows = [f"| training pairs | base {metric} | adapted {metric} |", "|---:|---:|---:|"]
    rows += [f"| {p['n_pairs']} | {p['baseline']:.3f} | {p['adapted']:.3f} |" for p in curve]
    return rows


def _check_results(results: Mapping[str, Any]) -> None:
    missing = [k for k in ("split", "n_queries", "model", "store", "baseline", "adapted") if k not in results]
    if missing:
        raise QadapterError(
            f"report results lack the key(s) {', '.join(missing)}; see qadapter.report.Results"
        )
    if not results["baseline"]:
        raise QadapterError(
            "report results have no metrics; evaluate with at least one metric, e.g. 'mrr@10'"
        )


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")
