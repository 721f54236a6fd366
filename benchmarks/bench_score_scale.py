"""The score scale: does a threshold mapping fitted on training queries keep a base cut-off's share on test queries?

On AppleQA (query split) the default adapter is trained on ``qrels/train.tsv`` (or loaded with ``--adapter``). The
mapping (:func:`qadapter.core.score_scale.score_mapping_for`) is fitted on the top-10 scores of the *training*
queries only, under the base model and under the adapter. On ``qrels/test.tsv`` we then compare, over the top-10
results of every test query, the share with a base score above ``t`` and the share with an adapted score above the
mapped threshold ``map_threshold(mapping, t)``. The target: within +-5 points at ``t = 0.5``.

Also reported: the median cosine between a test query and its relevant document(s), base and adapted, and the
median top-10 score of non-relevant results, which is the scale change an app with a cut-off meets.

Run from the repository root::

    python benchmarks/bench_score_scale.py [--data ../shared/data] [--work DIR] [--adapter FOLDER]

Writes ``benchmarks/results/score_scale.json`` and ``score_scale.md``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

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

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)
TARGET = 0.5
TOLERANCE = 0.05
K = 10


def relevant_scores(queries: Any, corpus: Any, vectors: np.ndarray) -> np.ndarray:
    """Cosine of each (query, relevant document) pair of the split (no queries x documents matrix)."""
    from qadapter.core.vectors import normalize

    index = {d: i for i, d in enumerate(corpus.doc_ids)}
    q = normalize(vectors)
    d = normalize(corpus.embeddings)
    pairs = [
        (row, index[doc])
        for row, qid in enumerate(queries.query_ids)
        for doc, g in queries.qrels[qid].items()
        if g > 0 and doc in index
    ]
    rows, cols = np.array(pairs).T
    return np.einsum("ij,ij->i", q[rows], d[cols])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=None, help="keep workspaces and the adapter here")
    parser.add_argument(
        "--adapter", type=Path, default=None, help="use this saved adapter instead of training"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from qadapter.adapters import load_adapter
    from qadapter.core.score_scale import map_threshold, score_mapping_for, share_above
    from qadapter.core.vectors import search
    from qadapter.embedding import embed_workspace
    from qadapter.train import train

    machine = machine_note()
    machine["load_average_start"] = [round(x, 2) for x in os.getloadavg()]
    work = args.work or Path(tempfile.mkdtemp(prefix="qadapter-score-scale-"))
    ws = copy_workspace(args.data, "appleqa", work)
    started = time.perf_counter()
    if args.adapter is not None:
        adapter, how = load_adapter(args.adapter), f"loaded {args.adapter}"
    else:
        result = train(ws, "train", output=work / "adapter-default", recipe="default", overwrite=True)
        adapter, how = result.adapter, "trained with the default recipe on qrels/train.tsv"
    train_s = time.perf_counter() - started
    corpus, splits = embed_workspace(ws, ["train", "test"])
    train_q, test_q = splits["train"], splits["test"]

    started = time.perf_counter()
    mapping = score_mapping_for(
        train_q.embeddings, adapter.transform(train_q.embeddings), corpus.embeddings, k=K
    )
    fit_s = time.perf_counter() - started
    _, base_top = search(test_q.embeddings, corpus.embeddings, k=K)
    _, adapted_top = search(adapter.transform(test_q.embeddings), corpus.embeddings, k=K)
    rows = []
    for t in THRESHOLDS:
        mapped = map_threshold(mapping, t)
        base_share, adapted_share = share_above(base_top, t), share_above(adapted_top, mapped)
        unmapped = share_above(adapted_top, t)
        rows.append(
            {
                "threshold": t,
                "mapped_threshold": round(mapped, 4),
                "base_share": round(base_share, 4),
                "adapted_share_mapped": round(adapted_share, 4),
                "adapted_share_unmapped": round(unmapped, 4),
                "gap_points": round(100 * (adapted_share - base_share), 2),
            }
        )
    target = next(r for r in rows if r["threshold"] == TARGET)
    rel_base = relevant_scores(test_q, corpus, test_q.embeddings)
    rel_adapted = relevant_scores(test_q, corpus, adapter.transform(test_q.embeddings))
    result_json = {
        "command": command_line("bench_score_scale.py"),
        "data": "appleqa (BEIR folder), query split: mapping fitted on qrels/train.tsv, measured on qrels/test.tsv",
        "adapter": how,
        "k": K,
        "n_train_queries": len(train_q.query_ids),
        "n_test_queries": len(test_q.query_ids),
        "rows": rows,
        "target": {
            "threshold": TARGET,
            "tolerance_points": 100 * TOLERANCE,
            "gap_points": target["gap_points"],
            "passed": abs(target["gap_points"]) <= 100 * TOLERANCE,
        },
        "median_relevant_cosine": {
            "base": round(float(np.median(rel_base)), 4),
            "adapted": round(float(np.median(rel_adapted)), 4),
        },
        "median_top10_score": {
            "base": round(float(np.median(base_top)), 4),
            "adapted": round(float(np.median(adapted_top)), 4),
        },
        "seconds": {"train_or_load": round(train_s, 1), "fit_mapping": round(fit_s, 3)},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": machine,
    }
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    write_results(args.out, "score_scale", result_json, markdown(result_json))


def markdown(r: dict[str, Any]) -> list[str]:
    target = r["target"]
    lines = [
        "# Score scale: base-threshold mapping fitted without test data",
        "",
        f"Command: `{r['command']}`. Data: {r['data']}. Adapter: {r['adapter']}.",
        "",
        f"The mapping is fitted on the top-{r['k']} scores of the {r['n_train_queries']} training queries "
        "(base model vs adapter). On the "
        f"{r['n_test_queries']} test queries, *base share* is the share of top-{r['k']} results with a base score "
        "above the threshold; *adapted share (mapped)* the share with an adapted score above the mapped threshold; "
        "*unmapped* keeps the base threshold unchanged (what an app does today).",
        "",
        "| base threshold | mapped threshold | base share | adapted share (mapped) | gap (points) | adapted share (unmapped) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['threshold']:.2f} | {row['mapped_threshold']:.3f} | {row['base_share']:.3f} | "
            f"{row['adapted_share_mapped']:.3f} | {row['gap_points']:+.1f} | {row['adapted_share_unmapped']:.3f} |"
        )
    verdict = "passes" if target["passed"] else "FAILS"
    lines += [
        "",
        f"Target: at base threshold {target['threshold']}, the gap is {target['gap_points']:+.1f} points "
        f"(allowed +-{target['tolerance_points']:.0f}): {verdict}.",
        "",
        f"Median cosine between a test query and its relevant document: base {r['median_relevant_cosine']['base']:.3f}, "
        f"adapted {r['median_relevant_cosine']['adapted']:.3f}. Median top-{r['k']} score: base "
        f"{r['median_top10_score']['base']:.3f}, adapted {r['median_top10_score']['adapted']:.3f}.",
        "",
        f"Time: train/load {r['seconds']['train_or_load']} s, fitting the mapping {r['seconds']['fit_mapping']} s; "
        f"peak RSS {r['peak_rss_mib']} MiB.",
        "",
        f"Machine: {machine_line(r['machine'])}",
    ]
    return lines


if __name__ == "__main__":
    main()
