"""Recipe development on splits carved from the TRAINING data only (never the test split).

The default recipe's settings were chosen here, not on test questions. From appleqa's training splits this builds:

- ``dev-train`` / ``dev-val``: questions 1-12 vs 13-16 of every chunk (the query split's shape: new questions
  about chunks that had training questions);
- ``dev-train-docsplit`` / ``dev-val-docsplit``: every fifth training chunk of the document split held out with
  all its questions (chunks that had no training questions).

and compares single contrastive fits (pseudo-query augmentation on/off, batch 64 vs 256) and the full default
recipe (with and without augmentation, over three seeds of its validation split, at temperatures 0.02/0.03/0.05,
and with the guarded ``balanced`` objective), on the dev validation questions.

Run from the repository root::

    python benchmarks/bench_recipe_dev.py [--data ../shared/data] [--work DIR]

Writes ``benchmarks/results/recipe_dev.json`` and ``recipe_dev.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import (  # noqa: E402
    DEFAULT_DATA,
    RESULTS,
    command_line,
    copy_workspace,
    machine_line,
    machine_note,
    write_results,
)

METRICS = ["hit@10", "mrr@10"]


def make_dev_splits(ws: Any) -> None:
    train = ws.qrels("train")
    ws.write_qrels("dev-train", {q: d for q, d in train.items() if int(q.split("_")[1]) <= 12})
    ws.write_qrels("dev-val", {q: d for q, d in train.items() if int(q.split("_")[1]) >= 13})
    doc_train = ws.qrels("train-docsplit")
    docs = sorted({d for rel in doc_train.values() for d in rel}, key=lambda d: int(d.split("_")[1]))
    held = set(docs[2::5])
    ws.write_qrels("dev-train-docsplit", {q: r for q, r in doc_train.items() if not set(r) & held})
    ws.write_qrels("dev-val-docsplit", {q: r for q, r in doc_train.items() if set(r) & held})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from qadapter.data import Workspace
    from qadapter.evaluate import evaluate
    from qadapter.train import train

    machine = machine_note()
    rows: list[dict[str, Any]] = []
    settings: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            "single fit, batch 64, lr 1e-3, no pseudo-queries",
            "dev-train",
            "dev-val",
            {"recipe": "contrastive", "pseudo_queries": 0, "batch_size": 64, "lr": 1e-3},
        ),
        (
            "single fit, batch 64, lr 1e-3, + pseudo-queries",
            "dev-train",
            "dev-val",
            {"recipe": "contrastive", "pseudo_queries": 10, "batch_size": 64, "lr": 1e-3},
        ),
        (
            "single fit, batch 256, lr 2e-3, + pseudo-queries",
            "dev-train",
            "dev-val",
            {"recipe": "contrastive", "pseudo_queries": 10},
        ),
        ("default recipe, no pseudo-queries", "dev-train", "dev-val", {"pseudo_queries": 0}),
        ("default recipe", "dev-train", "dev-val", {}),
        ("default recipe, seed 1", "dev-train", "dev-val", {"seed": 1}),
        ("default recipe, seed 2", "dev-train", "dev-val", {"seed": 2}),
        ("default recipe, temperature 0.05", "dev-train", "dev-val", {"temperature": 0.05}),
        ("default recipe, temperature 0.02", "dev-train", "dev-val", {"temperature": 0.02}),
        (
            "default recipe, --objective balanced (refuses harm to new documents)",
            "dev-train",
            "dev-val",
            {"objective": "balanced"},
        ),
        (
            "default recipe, no pseudo-queries",
            "dev-train-docsplit",
            "dev-val-docsplit",
            {"pseudo_queries": 0},
        ),
        ("default recipe", "dev-train-docsplit", "dev-val-docsplit", {}),
        ("default recipe, seed 1", "dev-train-docsplit", "dev-val-docsplit", {"seed": 1}),
        ("default recipe, seed 2", "dev-train-docsplit", "dev-val-docsplit", {"seed": 2}),
        (
            "default recipe, temperature 0.05",
            "dev-train-docsplit",
            "dev-val-docsplit",
            {"temperature": 0.05},
        ),
        (
            "default recipe, temperature 0.02",
            "dev-train-docsplit",
            "dev-val-docsplit",
            {"temperature": 0.02},
        ),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ws = Workspace(copy_workspace(args.data, "appleqa", work))
        make_dev_splits(ws)
        for label, train_split, val_split, options in settings:
            start = time.perf_counter()
            result = train(ws, train_split, learning_curve=False, **options)
            seconds = time.perf_counter() - start
            evaluation = evaluate(ws, val_split, adapter=result.adapter, metrics=METRICS, n_boot=200)
            row = {
                "setting": label,
                "train": train_split,
                "validate": val_split,
                "options": options,
                "chosen": result.chosen,
                "seconds": round(seconds, 2),
                "n_queries": evaluation["n_queries"],
                "baseline": evaluation["baseline"],
                "adapted": evaluation["adapted"],
            }
            rows.append(row)
            print(
                label,
                train_split,
                result.chosen,
                {m: round(evaluation["adapted"][m], 4) for m in METRICS},
                flush=True,
            )

    md = [
        "# Recipe development on splits carved from the training data",
        "",
        f"Command (from the repository root): `{command_line('bench_recipe_dev.py')}`",
        "",
        machine_line(machine),
        "",
        "No test question is used here. `dev-val` = questions 13-16 of every chunk (trained on 1-12); "
        "`dev-val-docsplit` = every fifth training chunk of the document split with all its questions.",
        "",
        "| setting | train -> validate | chosen | hit@10 | mrr@10 | train s |",
        "|---|---|---|---|---|---:|",
    ]
    for r in rows:
        cells = [f"{r['baseline'][m]:.3f} -> **{r['adapted'][m]:.3f}**" for m in METRICS]
        md.append(
            f"| {r['setting']} | {r['train']} -> {r['validate']} ({r['n_queries']}) | {r['chosen']} | "
            f"{cells[0]} | {cells[1]} | {r['seconds']} |"
        )
    write_results(args.out, "recipe_dev", {"machine": machine, "rows": rows}, md)


if __name__ == "__main__":
    main()
