"""Mixed precision in training (``compute_dtype``, issue 12): does a reduced dtype change the adapter's quality?

AppleQA's query split (qrels/train.tsv to train, qrels/test.tsv to score), float32 vectors of the bundled
all-MiniLM-L6-v2 (embedded once). For every seed, qadapter's single contrastive fit (``fit`` with the shipped
``TrainConfig``, 15 epochs, no validation) is trained once per compute dtype, the dtypes taking turns, and scored on
the test questions (exact cosine search, hit@10 and MRR@10). Reported per dtype against float32 with the same seed:
the change, a two-sided paired randomization test p (``qadapter.evaluate.stats.compare``), the largest weight
difference, and the time ratio. The float32 fits of different seeds give the spread that seed alone makes: the
yardstick for "equal within noise".

Run from the repository root (``--device cuda`` on a GPU, where bfloat16/float16 are meant to pay off)::

    python benchmarks/bench_train_precision.py [--device cpu] [--seeds 0 1 2] [--data ../shared/data]
    python benchmarks/bench_train_precision.py --device cuda --prepared .gpu/appleqa   # without the model

Writes ``benchmarks/results/train_precision.json`` and ``train_precision.md`` (``--name`` to keep a GPU run apart).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_quality as common
import numpy as np
import prepared

METRICS = ["hit@10", "mrr@10"]


def rows_of(
    qrels: dict[str, dict[str, int]], query_ids: list[str], index: dict[str, int]
) -> list[dict[int, int]]:
    return [{index[d]: g for d, g in qrels[q].items() if d in index and g > 0} for q in query_ids]


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    from qadapter.core.device import resolve_device
    from qadapter.embedding import embed_workspace
    from qadapter.evaluate.stats import compare
    from qadapter.train.config import TrainConfig
    from qadapter.train.trainer import fit
    from qadapter.train.validation import per_query

    device = resolve_device(args.device)
    if args.prepared is not None:  # a machine without the model: the vectors it made, from the prepared cache
        ws, model = prepared.load(args.prepared)
    else:
        ws, model = common.copy_workspace(args.data, "appleqa", work), None
    corpus, splits = embed_workspace(ws, ["train", "test"], model=model, device=device)
    index = corpus.index()
    train, test = splits["train"], splits["test"]
    pairs = np.asarray(train.pairs(index), dtype=np.int64)
    D = corpus.embeddings.astype(np.float32)
    T = test.embeddings.astype(np.float32)
    rels = rows_of(test.qrels, test.query_ids, index)
    print(f"appleqa: {len(D)} chunks, {len(pairs)} training pairs, {len(T)} test questions", flush=True)
    base = per_query(T, D, rels, METRICS)
    dtypes = ["float32", *[d for d in args.dtypes if d != "float32"]]
    fits: dict[tuple[str, int], dict[str, Any]] = {}
    for seed in args.seeds:
        for dtype in dtypes:  # the dtypes take turns, so a change in a shared machine's load hits them alike
            config = TrainConfig(seed=seed, compute_dtype=dtype, device=device)
            started = time.perf_counter()
            result = fit(train.embeddings, D, pairs, config)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds = time.perf_counter() - started
            scores = per_query(result.adapter.transform(T), D, rels, METRICS)
            fits[(dtype, seed)] = {"seconds": seconds, "scores": scores, "tensors": result.adapter.tensors}
            print(
                f"seed {seed} {dtype}: {seconds:.1f}s "
                + ", ".join(f"{m} {scores[m].mean():.4f}" for m in METRICS),
                flush=True,
            )
    rows = []
    for dtype in dtypes:
        per_seed = []
        for seed in args.seeds:
            ref, run = fits[("float32", seed)], fits[(dtype, seed)]
            comparison = compare(ref["scores"], run["scores"], seed=0)
            per_seed.append(
                {
                    "seed": seed,
                    "seconds": round(run["seconds"], 2),
                    "time_vs_float32": round(run["seconds"] / ref["seconds"], 2),
                    "metrics": {m: round(float(run["scores"][m].mean()), 4) for m in METRICS},
                    "delta": {m: round(comparison[m]["delta"], 4) for m in METRICS},
                    "p_value": {m: comparison[m]["p_value"] for m in METRICS},
                    "max_weight_difference": float(
                        max(np.abs(run["tensors"][k] - ref["tensors"][k]).max() for k in ref["tensors"])
                    ),
                }
            )
        rows.append({"compute_dtype": dtype, "seeds": per_seed})
    f32 = [fits[("float32", s)]["scores"] for s in args.seeds]
    seed_spread = {
        m: round(float(max(s[m].mean() for s in f32) - min(s[m].mean() for s in f32)), 4) for m in METRICS
    }
    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None,
        "documents": len(D),
        "pairs": len(pairs),
        "test_queries": len(T),
        "base": {m: round(float(base[m].mean()), 4) for m in METRICS},
        "float32_seed_spread": seed_spread,
        "dtypes": rows,
    }


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "# Mixed precision in training (compute_dtype)",
        "",
        f"Command: `{result['command']}`",
        "",
        common.machine_line(result["machine"]),
        "",
        f"AppleQA query split: {result['pairs']} training pairs (qrels/train.tsv) over {result['documents']} chunks, "
        f"scored on the {result['test_queries']} questions of qrels/test.tsv; float32 vectors of the bundled "
        f"all-MiniLM-L6-v2; qadapter's single contrastive fit (shipped TrainConfig, 15 epochs) on "
        f"`{result['device']}`{' (' + result['gpu'] + ')' if result.get('gpu') else ''}, once per dtype and seed, the dtypes taking turns. Base model (no adapter): "
        + ", ".join(f"{m} {v:.4f}" for m, v in result["base"].items())
        + ". p: two-sided paired randomization test against the float32 fit of the same seed.",
        "",
        "| compute dtype | seed | seconds | time vs float32 | hit@10 | MRR@10 | Δ hit@10 (p) | Δ MRR@10 (p) "
        "| largest weight difference to float32 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["dtypes"]:
        for r in row["seeds"]:
            delta = {m: f"{r['delta'][m] + 0.0:+.4f} (p={r['p_value'][m]:.3g})" for m in METRICS}
            lines.append(
                f"| {row['compute_dtype']} | {r['seed']} | {r['seconds']} | {r['time_vs_float32']}x "
                f"| {r['metrics']['hit@10']:.4f} | {r['metrics']['mrr@10']:.4f} | {delta['hit@10']} "
                f"| {delta['mrr@10']} | {r['max_weight_difference']:.2e} |"
            )
    spread = result["float32_seed_spread"]
    lines += [
        "",
        f"Spread that the seed alone makes (float32, max - min over seeds {result['seeds']}): "
        + ", ".join(f"{m} {v:.4f}" for m, v in spread.items())
        + ". Parameters, optimiser state and validation stay float32 in every row; only the forward pass and the "
        "loss run under autocast (float16 with loss scaling). Timings come from a machine shared with other work; "
        "a CPU without half-precision matrix instructions emulates them, so there a reduced dtype is slower.",
    ]
    return lines


def main() -> None:
    from qadapter.core.device import PRECISIONS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=common.DEFAULT_DATA)
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--prepared",
        type=Path,
        default=None,
        help="read AppleQA and its vectors from a workspace made by benchmarks/prepared.py (no model needed)",
    )
    parser.add_argument("--dtypes", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=common.RESULTS)
    parser.add_argument("--name", default="train_precision", help="results file name (without extension)")
    args = parser.parse_args()

    machine = common.machine_note()
    with tempfile.TemporaryDirectory() as tmp:
        measured = measure(args, Path(tmp))
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {
        "benchmark": "mixed precision in training: quality and time of each compute dtype against float32",
        "command": common.command_line("bench_train_precision.py"),
        "machine": machine,
        "seeds": args.seeds,
        **measured,
    }
    common.write_results(args.out, args.name, result, markdown(result))


if __name__ == "__main__":
    main()
