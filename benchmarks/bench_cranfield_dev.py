"""Cranfield on development splits: does the default stay at or above the base model where a plain fit may harm?

Cranfield's 150 training queries (``qrels/train.tsv``, human-written, graded, several relevant abstracts each) are
cut into 5 folds by query with ``--seed``; for each fold the default (``qadapter.train.train``) and the issue's plain
fit (``bench_small_data_dev.plain_fit``) are trained on the other 4 (120 queries, cross-fitted by the default) and
scored on that fold's 30 queries. ``qrels/test.tsv`` is never read. Reported per fold and pooled over the 150
development queries (each scored once): nDCG@10 and MRR@10 of base, plain and default, with two-sided paired
randomization-test p-values of the pooled gains.

Run from the repository root::

    python benchmarks/bench_cranfield_dev.py [--data ../shared/data] [--work .work/cranfield-dev] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from bench_quality import (
    DEFAULT_DATA,
    RESULTS,
    command_line,
    copy_workspace,
    machine_line,
    machine_note,
    write_results,
)
from bench_small_data_dev import plain_fit

METRICS = ("ndcg@10", "mrr@10")
FOLDS = 5


def per_query(ws: Any, split: str, adapter: Any) -> dict[str, np.ndarray]:
    """Per-query metric values of ``split``'s queries under ``adapter`` (None: the base model)."""
    from qadapter.encoders import get_encoder
    from qadapter.train.data import load_training_data
    from qadapter.train.validation import per_query as scores

    data = load_training_data(ws, [split], get_encoder(), False)
    Q = data.Q if adapter is None else adapter.transform(data.Q)
    return scores(Q, data.D, data.rels, list(METRICS))


def paired_p(diff: np.ndarray) -> float:
    """Two-sided paired randomization test (10,000 sign patterns), as ``qadapter evaluate`` reports it."""
    from qadapter.evaluate.stats import randomization_test

    return float(randomization_test(diff, n_perm=10_000, rng=np.random.default_rng(0))[0])


def main() -> None:
    import torch

    from qadapter.data.workspace import Workspace
    from qadapter.embedding import embed_workspace
    from qadapter.encoders import get_encoder
    from qadapter.train import stage
    from qadapter.train.data import load_training_data

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path(".work/cranfield-dev"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    machine = machine_note()
    ws = Workspace(copy_workspace(args.data, "cranfield", args.work))
    embed_workspace(ws, ["train"])
    qrels = ws.qrels("train")
    ids = sorted(qrels)
    fold = np.random.default_rng(args.seed).permutation(len(ids)) % FOLDS
    pooled: dict[str, dict[str, list[float]]] = {
        k: {m: [] for m in METRICS} for k in ("base", "plain", "default")
    }
    rows = []
    for f in range(FOLDS):
        train = [(q, d, g) for i, q in enumerate(ids) if fold[i] != f for d, g in qrels[q].items()]
        test = [(q, d, g) for i, q in enumerate(ids) if fold[i] == f for d, g in qrels[q].items()]
        write_graded(ws, f"dev-train-{f}", train)
        write_graded(ws, f"dev-test-{f}", test)
        data = load_training_data(ws, [f"dev-train-{f}"], get_encoder(), False)
        result = stage.train(ws, f"dev-train-{f}", learning_curve=False)
        maps = {
            "base": None,
            "plain": plain_fit(data.Q, data.pairs, data.D, seed=f),
            "default": result.adapter,
        }
        row: dict[str, Any] = {"fold": f, "n_train": len(data.rels), "chosen": result.chosen}
        for name, adapter in maps.items():
            values = per_query(ws, f"dev-test-{f}", adapter)
            row[name] = {m: round(float(values[m].mean()), 4) for m in METRICS}
            for m in METRICS:
                pooled[name][m] += values[m].tolist()
        rows.append(row)
        print(f, result.chosen, {k: row[k] for k in ("base", "plain", "default")}, flush=True)
    summary = {}
    for m in METRICS:
        base = np.array(pooled["base"][m])
        summary[m] = {"base": round(float(base.mean()), 4)}
        for name in ("plain", "default"):
            diff = np.array(pooled[name][m]) - base
            summary[m][name] = {"gain": round(float(diff.mean()), 4), "p": round(paired_p(diff), 4)}
    machine["load_average_end"] = machine_note()["load_average_start"]
    result_all = {"command": command_line("bench_cranfield_dev.py"), "machine": machine, "rows": rows}
    result_all["summary"] = summary
    write_results(args.out, "cranfield_dev", result_all, markdown(result_all))


def write_graded(ws: Any, name: str, rows: list[tuple[str, str, int]]) -> None:
    path = ws.path / "qrels" / f"{name}.tsv"
    path.write_text("\n".join(["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t{g}" for q, d, g in rows)]) + "\n")


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "# Cranfield on development splits (training queries only)",
        "",
        f"Command: `{result['command']}`. Machine: {machine_line(result['machine'])}",
        "",
        f"Cranfield's 150 training queries in {FOLDS} folds by query; each fold's 30 queries scored by maps trained "
        "on the other 120. `plain`: the issue's plain fit; `default`: `qadapter train` (cross-fitted).",
        "",
        "| fold | default chose | base nDCG@10 | plain | default | base MRR@10 | plain | default |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['fold']} | {r['chosen']} | {r['base']['ndcg@10']:.4f} | {r['plain']['ndcg@10']:.4f} | "
            f"{r['default']['ndcg@10']:.4f} | {r['base']['mrr@10']:.4f} | {r['plain']['mrr@10']:.4f} | "
            f"{r['default']['mrr@10']:.4f} |"
        )
    lines += [
        "",
        "Pooled over the 150 development queries (gain over base, two-sided paired randomization p):",
        "",
    ]
    for m, s in result["summary"].items():
        lines.append(
            f"- {m}: base {s['base']:.4f}; plain {s['plain']['gain']:+.4f} (p={s['plain']['p']}); "
            f"default {s['default']['gain']:+.4f} (p={s['default']['p']})"
        )
    return lines


if __name__ == "__main__":
    main()
