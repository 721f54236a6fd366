"""Keep an evaluation with the adapter it scored: metrics in ``config.json``, the model card, and ``report/``.

Used by ``qadapter evaluate --adapter`` and by ``qadapter run``; it sits after evaluation and report writing, so
neither the CLI nor the pipeline has to reach into the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qadapter.adapters.artifact import CARD_FILE, CONFIG_FILE, read_adapter_config
from qadapter.data.atomic import atomic_open

#: result keys copied into the adapter config's ``metrics`` (what the model card reads)
RECORDED_KEYS = ("workspace", "split", "n_queries", "store", "baseline", "adapted", "offline_share", "caveat")


def record_evaluation(adapter_path: str | Path | None, results: dict[str, Any]) -> Path | None:
    """Store test metrics in the adapter's config and card, and write ``ADAPTER/report/`` (Markdown + charts)."""
    if adapter_path is None:
        return None
    path = Path(adapter_path)
    config = read_adapter_config(path)
    config["metrics"] = {key: results.get(key) for key in RECORDED_KEYS if key in results}
    with atomic_open(path / CONFIG_FILE) as handle:
        handle.write(json.dumps(config, indent=2) + "\n")
    _write_card(path, config)
    return _write_report(path, results, config.get("training") or {})


def _write_card(path: Path, config: dict[str, Any]) -> None:
    from qadapter.adapters import load_adapter
    from qadapter.adapters.card import model_card

    with atomic_open(path / CARD_FILE) as handle:
        handle.write(model_card(load_adapter(path), config))


def _write_report(path: Path, results: dict[str, Any], training: dict[str, Any]) -> Path:
    from qadapter.report import write_report

    metric = (training.get("config") or {}).get("val_metric", "mrr@10")
    history = training.get("history") or None
    if history and not history.get("val"):
        history = {k: v for k, v in history.items() if k != "val"}
    write_report(
        path / "report",
        {**results, "primary_metric": metric},  # type: ignore[typeddict-item]
        history=history,
        learning_curve=training.get("learning_curve") or None,
        selection=_selection(training, metric),  # type: ignore[arg-type]
    )
    return path / "report" / "report.md"


def _selection(training: dict[str, Any], metric: str) -> dict[str, Any] | None:
    if not training.get("candidates"):
        return None
    return {
        "chosen": training.get("selected", ""),
        "reason": training.get("reason", ""),
        "candidates": [
            {
                "name": c["name"],
                "params": c.get("params", {}),
                "val": {f"{metric} {part}": v for part, v in c.get("val", {}).items()},
                "chosen": c.get("chosen", False),
            }
            for c in training["candidates"]
        ],
    }
