"""The ``report.md`` written next to every trained adapter.

The report leads with one honest sentence (the change in the primary metric, its confidence interval, its p-value
and how many queries got better or worse, and, when the test queries are offline pseudo-queries, that they do not
predict real questions), then the full metric table, the metric at every k, how far queries moved, the score scale,
what model selection tried and why, the training curves and the learning curve with a plain reading of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qadapter.data.atomic import atomic_open
from qadapter.errors import QadapterError
from qadapter.evaluate.caveats import pseudo_query_caveat
from qadapter.report.tables import curve_table, format_p, metrics_table, selection_table
from qadapter.report.types import CurvePoint, History, Results, Selection

logger = logging.getLogger(__name__)

#: A last learning-curve step that gains more than this (absolute, on a 0..1 metric) counts as "still rising".
RISING_MIN_GAIN = 0.005
#: Metrics the headline prefers, in order, when neither the results nor the history name one.
PREFERRED_METRICS = ("mrr@10", "ndcg@10", "hit@10", "recall@10")


def write_report(
    folder: str | Path,
    results: Results,
    *,
    history: History | None = None,
    learning_curve: Sequence[CurvePoint] | None = None,
    selection: Selection | None = None,
) -> list[Path]:
    """Write ``report.md`` and its PNG charts into ``folder``; return the paths written (report first).

    Charts are drawn only for the data given: ``metric_curves.png`` (results with ``curves``), ``rank_changes.png``
    (``rank_changes``), ``score_distribution.png`` (``score_distribution``), ``training.png`` when ``history`` has a
    loss or validation series, ``learning_curve.png`` when ``learning_curve`` has points. Every file is written
    atomically, so an interrupted run never leaves a half-written report.
    """
    _check_results(results)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    curve = sorted(learning_curve or [], key=lambda p: p["n_pairs"])
    images = draw_charts(folder, results, history=history, learning_curve=curve)
    text = render_markdown(results, history=history, learning_curve=curve, selection=selection, images=images)
    report = folder / "report.md"
    with atomic_open(report, "w") as handle:
        handle.write(text)
    logger.info("wrote %s and %d chart(s)", report, len(images))
    return [report, *images.values()]


def draw_charts(
    folder: Path, results: Results, *, history: History | None, learning_curve: Sequence[CurvePoint]
) -> dict[str, Path]:
    """Draw every chart whose data is present; returns section key -> PNG path."""
    from qadapter.report import charts  # matplotlib loads only when a report is actually written

    images: dict[str, Path] = {}
    if results.get("curves"):
        images["curves"] = charts.metric_curves_chart(folder / "metric_curves.png", results)
    if results.get("rank_changes"):
        images["rank_changes"] = charts.rank_change_chart(
            folder / "rank_changes.png", results["rank_changes"]
        )
    if results.get("score_distribution"):
        images["scores"] = charts.score_distribution_chart(
            folder / "score_distribution.png", results["score_distribution"], results.get("score_scale")
        )
    if history and (history.get("train_loss") or history.get("val")):
        images["training"] = charts.training_chart(folder / "training.png", history)
    if learning_curve:
        images["learning_curve"] = charts.learning_curve_chart(folder / "learning_curve.png", learning_curve)
    return images


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
    ]
    lines += _metrics_section(results, images)
    lines += _rank_section(results, images)
    lines += _score_section(results, images)
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
        lines += [
            "## Learning curve",
            "",
            learning_curve_reading(learning_curve),
            "",
            *curve_table(learning_curve),
        ]
        if "learning_curve" in images:
            lines += ["", f"![Learning curve]({images['learning_curve'].name})"]
        lines.append("")
    return "\n".join(lines)


def _metrics_section(results: Results, images: Mapping[str, Path]) -> list[str]:
    lines = ["## Test metrics", "", *metrics_table(results), ""]
    if results.get("comparison"):
        level = round(100 * (1 - next(iter(results["comparison"].values()))["alpha"]))
        lines += [
            f"Confidence intervals are {level}% paired percentile-bootstrap intervals over queries (Efron & "
            "Tibshirani, 1993); p is a two-sided paired randomization test on the per-query differences (Smucker, "
            "Allan & Carterette, 2007). *better / worse / tied* count queries whose score went up, down or stayed.",
            "",
        ]
    if "curves" in images:
        lines += [
            f"![Base model vs adapter at every k]({images['curves'].name})",
            "",
            "The metric at every cut-off k: how much the adapter helps depends on how many results the "
            "application keeps.",
            "",
        ]
    return lines


def _rank_section(results: Results, images: Mapping[str, Path]) -> list[str]:
    changes = results.get("rank_changes")
    if not changes:
        return []
    lines = [
        "## How far queries moved",
        "",
        f"The first relevant document of {changes['up']} queries moved up, of {changes['down']} down, and of "
        f"{changes['same']} stayed at the same rank; {changes['found']} queries found a relevant document in the "
        f"top {changes['depth']} that the base model missed, {changes['lost']} lost one.",
        "",
    ]
    if "rank_changes" in images:
        lines += [f"![Rank changes per query]({images['rank_changes'].name})", ""]
    return lines


def _score_section(results: Results, images: Mapping[str, Path]) -> list[str]:
    dist = results.get("score_distribution")
    if not dist or dist["baseline"]["relevant"].get("median") is None:
        return []
    base, adapted = dist["baseline"]["relevant"], dist["adapted"]["relevant"]
    lines = [
        "## Score scale",
        "",
        f"The median cosine between a query and its relevant document is {base['median']:.3f} with the base model and "
        f"{adapted['median']:.3f} with the adapter. A similarity cut-off tuned for the base model "
        '("keep chunks with score > 0.4") keeps a different share of results with the adapter.',
        "",
    ]
    scale = results.get("score_scale")
    if scale:
        lines += [
            f"The threshold mapping recorded at training time (adapter config `score_scale`, fitted without test "
            f"data) maps a base cut-off of {scale['threshold']} to {scale['mapped_threshold']:.3f}: of the top-"
            f"{scale['k']} results here it keeps {100 * scale['adapted_share']:.1f}% against the base model's "
            f"{100 * scale['base_share']:.1f}% (the unchanged cut-off would keep "
            f"{100 * scale['adapted_share_unmapped']:.1f}%).",
            "",
        ]
    if "scores" in images:
        lines += [f"![Score distributions]({images['scores'].name})", ""]
    return lines


def headline(results: Results, *, selection: Selection | None = None, metric: str | None = None) -> str:
    """One sentence a reader can act on: what changed, how sure we are, and on how many queries.

    When any test query is an offline pseudo-query, the sentence saying so follows the number, in bold.
    """
    metric = metric or primary_metric(results)
    text = _verdict(results, selection, metric)
    caveat = results.get("caveat") or pseudo_query_caveat(results.get("offline_share"))
    return f"{text} **{caveat}**" if caveat else text


def _verdict(results: Results, selection: Selection | None, metric: str) -> str:
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


def primary_metric(results: Results, history: History | None = None) -> str:
    """The metric the headline talks about: the one named by results or history, else a common default."""
    available = list(results["baseline"])
    for name in (results.get("primary_metric"), (history or {}).get("val_metric"), *PREFERRED_METRICS):
        if name and name in results["baseline"] and name in results["adapted"]:
            return name
    return available[0]


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
