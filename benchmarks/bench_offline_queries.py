"""Offline pseudo-queries vs an LLM's questions as training data, on appleqa's document split.

``generate(ws, offline=True)`` needs no model server: it cuts pseudo-queries (title/headings, a TF-IDF keyword
query, informative sentences) from the chunks. This trains the ``default`` recipe twice on the *training* chunks of
the document split, once on those offline queries and once on the notebook's gpt-4o-mini questions
(``train-docsplit``), and scores both, and the base model, on the LLM test questions about the held-out chunks
(``test-docsplit``). Offline queries are generated only for training chunks, so test chunks stay unseen.

Run from the repository root::

    python benchmarks/bench_offline_queries.py [--data ../shared/data] [--work DIR] [--per-chunk 20]

Writes ``benchmarks/results/offline_queries.json`` and ``offline_queries.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import (  # noqa: E402
    DEFAULT_DATA,
    METRICS,
    RESULTS,
    command_line,
    copy_workspace,
    format_metric,
    machine_line,
    machine_note,
    metric_rows,
    write_results,
)

OFFLINE_SPLIT = "offline"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temp dir)")
    parser.add_argument("--per-chunk", type=int, default=20, help="offline queries per training chunk")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from qadapter.data import Workspace
    from qadapter.evaluate import evaluate
    from qadapter.generate import generate
    from qadapter.train import train

    machine = machine_note()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        # A workspace of its own (generate() adds queries); reuse the embedding cache of bench_quality's copy.
        shutil.rmtree(work / "offline", ignore_errors=True)
        ws_path = copy_workspace(args.data, "appleqa", work / "offline")
        cached = work / "appleqa" / ".qadapter" / "embeddings"
        if cached.is_dir():
            (ws_path / ".qadapter").mkdir(exist_ok=True)
            shutil.copytree(cached, ws_path / ".qadapter" / "embeddings", dirs_exist_ok=True)
        ws = Workspace(ws_path)
        train_docs = sorted({d for docs in ws.qrels("train-docsplit").values() for d in docs})
        test_docs = {d for docs in ws.qrels("test-docsplit").values() for d in docs}
        summary = generate(
            ws,
            offline=True,
            per_chunk=args.per_chunk,
            documents=train_docs,
            split=OFFLINE_SPLIT,
            replace=True,
        )
        offline_qrels = ws.qrels(OFFLINE_SPLIT)
        leaked = {d for docs in offline_qrels.values() for d in docs} & test_docs
        if leaked:
            raise SystemExit(
                f"offline queries were generated for {len(leaked)} test chunks; refusing to report"
            )
        queries = ws.queries()
        examples = [queries[q].text for q in list(offline_qrels)[:3]]
        print(f"offline: {summary.queries_added} queries for {len(train_docs)} training chunks", flush=True)

        for label, split in (
            ("offline pseudo-queries", OFFLINE_SPLIT),
            ("LLM questions (notebook)", "train-docsplit"),
        ):
            result = train(ws, split, learning_curve=False)
            evaluation = evaluate(ws, "test-docsplit", adapter=result.adapter, metrics=METRICS)
            row = {
                "training_queries": label,
                "train_split": split,
                "n_train_queries": len(ws.qrels(split)),
                "chosen": result.chosen,
                "reason": result.reason,
                "train_s": round(result.seconds, 2),
                "n_test_queries": evaluation["n_queries"],
                "metrics": metric_rows(evaluation),
            }
            rows.append(row)
            print(f"{label}: chosen={row['chosen']} {row['metrics']}", flush=True)

    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {
        "benchmark": "offline pseudo-queries vs LLM questions as training data (appleqa document split)",
        "command": command_line("bench_offline_queries.py"),
        "machine": machine,
        "per_chunk": args.per_chunk,
        "training_chunks": len(train_docs),
        "offline_queries": summary.queries_added,
        "offline_examples": examples,
        "settings": rows,
    }
    write_results(args.out, "offline_queries", result, markdown(result))


def markdown(r: dict[str, Any]) -> list[str]:
    base = r["settings"][0]["metrics"]
    lines = [
        "# Offline pseudo-queries vs LLM questions (appleqa, document split)",
        "",
        f"Command (from the repository root): `{r['command']}`",
        "",
        machine_line(r["machine"]),
        "",
        f"Both adapters use the `default` recipe and only the {r['training_chunks']} training chunks of the document "
        f"split; both are scored on the same {r['settings'][0]['n_test_queries']} LLM test questions about the "
        "held-out chunks (`test-docsplit`), searching all 215 chunks. Offline: "
        f"`generate(ws, offline=True, per_chunk={r['per_chunk']}, documents=<training chunks>)` wrote "
        f"{r['offline_queries']} pseudo-queries (examples: {'; '.join(repr(e if len(e) <= 80 else e[:77] + '...') for e in r['offline_examples'])}).",
        "",
        "| training queries | n train | chosen | hit@10 | mrr@10 | ndcg@10 |",
        "|---|---:|---|---|---|---|",
        f"| none (base model) | 0 | — | {base['hit@10']['baseline']:.3f} | {base['mrr@10']['baseline']:.3f} | "
        f"{base['ndcg@10']['baseline']:.3f} |",
    ]
    for s in r["settings"]:
        m = s["metrics"]
        lines.append(
            f"| {s['training_queries']} | {s['n_train_queries']} | {s['chosen']} | {format_metric(m['hit@10'])} | "
            f"{format_metric(m['mrr@10'])} | {format_metric(m['ndcg@10'])} |"
        )
    lines += [
        "",
        "Cells: base → **adapted** (delta [95% paired-bootstrap CI], paired randomization-test p).",
        "",
        *[f"- {s['training_queries']}: {s['reason']}" for s in r["settings"]],
    ]
    return lines


if __name__ == "__main__":
    main()
