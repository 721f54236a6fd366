"""Many questions on a small share of the corpus, on development splits only (issue 11's second shape of data).

The issue's held-out human sets include ~800 training queries whose documents are a small share of the corpus.
The nearest shape AppleQA allows, from its *training* questions only (``qrels/test.tsv`` is never read): per draw,
``--chunks`` chunks drawn at random give all their questions 1-12 as training data (600 queries for 50 chunks,
about a quarter of the corpus); questions 13-16 of every chunk are the development test. The default
(``qadapter.train.train``) against the issue's plain fit (``bench_small_data_dev.plain_fit``), per draw.

Run from the repository root::

    python benchmarks/bench_sparse_dev.py [--draws 5] [--chunks 50] [--work .work/small]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import bench_quality as common
import numpy as np
from bench_small_data import questions_by_chunk, write_split
from bench_small_data_dev import plain_fit

METRICS = ["hit@10", "mrr@10"]


def one_draw(ws: Any, chunks: dict[str, Any], seed: int, n_chunks: int) -> dict[str, Any]:
    from qadapter.encoders import get_encoder
    from qadapter.train import stage
    from qadapter.train.validation import per_query

    rng = np.random.default_rng(300 + seed)
    docs = sorted(chunks)
    picked = [docs[i] for i in sorted(rng.choice(len(docs), size=n_chunks, replace=False))]
    split = f"sparse-s{seed}"
    write_split(ws, split, [(q, d) for d in picked for n, q in chunks[d] if n <= 12])
    write_split(ws, "dev-test", [(q, d) for d, qs in chunks.items() for n, q in qs if n >= 13])
    result = stage.train(ws, split, learning_curve=False)
    encoder = get_encoder()
    data = stage.training_data.load_training_data(ws, [split], encoder, False)
    test = stage.training_data.load_training_data(ws, ["dev-test"], encoder, False)
    plain = plain_fit(data.Q, [(i, d) for i, r in enumerate(data.rels) for d in r], data.D)
    base = per_query(test.Q, data.D, test.rels, METRICS)
    row: dict[str, Any] = {"draw": seed, "train_queries": len(data.rels), "chosen": result.chosen}
    for name, adapter in (("plain", plain), ("default", result.adapter)):
        scores = per_query(adapter.transform(test.Q), data.D, test.rels, METRICS)
        for m in METRICS:
            row[f"{name} {m}"] = round(float((scores[m] - base[m]).mean()), 4)
    for m in METRICS:
        row[f"base {m}"] = round(float(base[m].mean()), 4)
    return row


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "# Many questions on a small share of the corpus (development splits only)",
        "",
        f"Command: `{result['command']}`. Machine: {common.machine_line(result['machine'])}",
        "",
        f"AppleQA training questions: per draw, {result['chunks']} random chunks give their questions 1-12 as "
        "training data; the development test is questions 13-16 of every chunk. Cells: gain over the base model.",
        "",
        "| draw | training queries | chosen | base hit@10 | plain | default | base MRR@10 | plain | default |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["draws"]:
        lines.append(
            f"| {r['draw']} | {r['train_queries']} | {r['chosen']} | {r['base hit@10']:.3f} | "
            f"{r['plain hit@10']:+.4f} | {r['default hit@10']:+.4f} | {r['base mrr@10']:.3f} | "
            f"{r['plain mrr@10']:+.4f} | {r['default mrr@10']:+.4f} |"
        )
    for m in METRICS:
        plain = np.mean([r[f"plain {m}"] for r in result["draws"]])
        default = np.mean([r[f"default {m}"] for r in result["draws"]])
        lines.append(f"\n- {m}: mean gain plain {plain:+.4f}, default {default:+.4f}")
    return lines


def main() -> None:
    import torch

    from qadapter.data.workspace import Workspace

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=common.DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path(".work/small"))
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--out", type=Path, default=common.RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    machine = common.machine_note()
    ws = Workspace(common.copy_workspace(args.data, "appleqa", args.work))
    chunks = questions_by_chunk(ws, "train")
    draws = []
    for seed in range(args.draws):
        draws.append(one_draw(ws, chunks, seed, args.chunks))
        print(draws[-1], flush=True)
    machine["load_average_end"] = common.machine_note()["load_average_start"]
    result = {
        "command": common.command_line("bench_sparse_dev.py"),
        "machine": machine,
        "chunks": args.chunks,
        "draws": draws,
    }
    common.write_results(args.out, "sparse_dev", result, markdown(result))


if __name__ == "__main__":
    main()
