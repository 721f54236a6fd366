"""Markdown and plain-text tables of the report: metrics with their statistics, candidates, learning curve."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from qadapter.report.types import CurvePoint, Results, Selection


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


def format_p(p: float, *, prefix: bool = False) -> str:
    if p < 0.001:
        return "p<0.001" if prefix else "<0.001"
    return f"p={p:.3f}" if prefix else f"{p:.3f}"


def curve_table(curve: Sequence[CurvePoint]) -> list[str]:
    metric = curve[-1]["metric"]
    rows = [f"| training pairs | base {metric} | adapted {metric} |", "|---:|---:|---:|"]
    rows += [f"| {p['n_pairs']} | {p['baseline']:.3f} | {p['adapted']:.3f} |" for p in curve]
    return rows


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")
