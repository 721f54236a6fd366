"""The README model card written next to every adapter."""

from __future__ import annotations

from typing import Any

from qadapter.adapters.adapter import Adapter


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _metrics_table(metrics: dict[str, Any]) -> str:
    baseline = _section(metrics, "baseline")
    adapted = _section(metrics, "adapted")
    keys = [k for k in ("hit@10", "mrr@10", "ndcg@10", "recall@10", "map") if k in baseline]
    if not keys:
        return ""
    lines = ["| metric | base model | with adapter | change |", "|---|---:|---:|---:|"]
    for key in keys:
        b, a = _number(baseline[key]), _number(adapted.get(key))
        lines.append(f"| {key} | {b:.4f} | {a:.4f} | {a - b:+.4f} |")
    return "\n".join(lines)


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    """``config[key]`` when it is a table, else empty: the card never fails on an odd config value."""
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def _precision(base: dict[str, Any]) -> str:
    """ ", computed in bfloat16" when the base model ran in a reduced precision (``--precision``), else nothing."""
    precision = base.get("precision")
    return f", computed in {precision}" if isinstance(precision, str) and precision != "float32" else ""


def model_card(adapter: Adapter, config: dict[str, Any]) -> str:
    base = _section(config, "base_model")
    training = _section(config, "training")
    data = _section(config, "data")
    metrics = _section(config, "metrics")
    parts = [
        "# qadapter query adapter",
        "",
        f"A query-side **{adapter.kind}** adapter for the embedding model `{base.get('name', 'unknown')}` "
        f"(dimension {adapter.dim}{_precision(base)}, {adapter.n_parameters:,} parameters).",
        "Apply it to query embeddings only; documents keep their base-model vectors, so the knowledge base is not re-embedded.",
        "",
        "```python",
        "import qadapter",
        f'adapter = qadapter.load_adapter("{config.get("name", "path/to/adapter")}")',
        "query_vectors = adapter.transform(base_model_query_vectors)  # numpy only",
        "```",
        "",
    ]
    if adapter.is_identity():
        parts += [
            "**This adapter is the identity.** On held-out validation data no trained adapter beat the base model, "
            "so qadapter ships the unchanged base model rather than a map that could hurt retrieval.",
            "",
        ]
    if training:
        parts += ["## Training", ""]
        for key in ("recipe", "loss", "epochs", "selected", "reason"):
            if key in training:
                parts.append(f"- {key}: {training[key]}")
        fitted = training.get("config")
        dtype = fitted.get("compute_dtype") if isinstance(fitted, dict) else None
        if isinstance(dtype, str) and dtype != "float32":  # --compute-dtype: autocast in training
            parts.append(f"- compute dtype: {dtype} (autocast; weights float32)")
        parts.append("")
    if data:
        parts += ["## Data", ""] + [f"- {k}: {v}" for k, v in data.items()] + [""]
    table = _metrics_table(metrics)
    if table:
        split = metrics.get("split", "test")
        parts += [f"## Evaluation ({split} split, {metrics.get('n_queries', '?')} queries)", "", table, ""]
        if metrics.get("caveat"):  # the sentence qadapter.evaluate wrote when test queries are pseudo-queries
            parts += [f"**{metrics['caveat']}**", ""]
    parts += [f"Saved by qadapter {config.get('qadapter_version', '')}.", ""]
    return "\n".join(parts)
