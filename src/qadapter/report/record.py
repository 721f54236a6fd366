"""Record an evaluation where the adapter lives: metrics in its config and model card, and ``ADAPTER/report/``.

Used by ``qadapter evaluate --adapter`` and by ``qadapter run``; it sits after evaluation and report writing, so
neither the CLI nor the pipeline has to reach into the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qadapter.adapters.artifact import CARD_FILE, CONFIG_FILE, read_adapter_config
from qadapter.data.atomic import atomic_open


def record_evaluation(adapter_path: str | Path | None, results: dict[str, Any]) -> Path | None:
    """Store test metrics in the adapter's config and card, and write ``ADAPTER/report/`` (Markdown + charts)."""
    if adapter_path is None:
        return None
    from qadapter.adapters import load_adapter
    from qadapter.adapters.card import model_card
    from qadapter.report import write_report

    path = Path(adapter_path)
    config = read_adapter_config(path)
    config["metrics"] = {
        "workspace": results.get("workspace"),
        "split": results["split"],
        "n_queries": results["n_queries"],
        "store": results["store"],
        "baseline": results["baseline"],
        "adapted": results["adapted"],
    }
    with atomic_open(path / CONFIG_FILE) as handle:
        handle.write(json.dumps(config, indent=2) + "\n")
    adapter = load_adapter(path)
    with atomic_open(path / CARD_FILE) as handle:
        handle.write(model_card(adapter, config))
    training = config.get("training") or {}
    metric = (training.get("config") or {}).get("val_metric", "mrr@10")
    selection = None
    if training.get("candidates"):
        selection = {
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
    history = training.get("history") or None
    if history and not history.get("val"):
        history = {k: v for k, v in history.items() if k != "val"}
    write_report(
        path / "report",
        {**results, "primary_metric": metric},  # type: ignore[typeddict-item]
        history=history,
        learning_curve=training.get("learning_curve") or None,
        selection=selection,  # type: ignore[arg-type]
    )
    return path / "report" / "report.md"
