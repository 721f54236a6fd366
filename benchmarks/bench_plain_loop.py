"""Per-epoch overhead: qadapter's single contrastive fit against a plain loop, on AppleQA's cached vectors.

The plain loop (issue 12): a linear adapter ``Linear(384, 384)`` initialised to the identity, AdamW, batch 256,
softmax cross-entropy over all training documents (cosine / temperature), 30 epochs, no validation, one torch thread.
qadapter's fit runs the same 30 epochs on the same pairs with the shipped contrastive defaults (label smoothing,
false-negative masks, warm-up schedule, gradient clipping). Both are timed in the same process, alternating, and
the ratio of medians is reported (timings on a shared machine are noisy; ratios within one run less so).

Run from the repository root::

    python benchmarks/bench_plain_loop.py [--data ../shared/data] [--repeats 3]

Writes ``benchmarks/results/plain_loop.json`` and ``plain_loop.md``.
"""

from __future__ import annotations

import argparse
import statistics
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

EPOCHS = 30


def plain_loop(Q: np.ndarray, D: np.ndarray, pairs: np.ndarray) -> float:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    start = time.perf_counter()
    cols, target = np.unique(pairs[:, 1], return_inverse=True)
    q_all, docs = torch.from_numpy(Q), F.normalize(torch.from_numpy(D[cols]), dim=-1)
    y_all = torch.from_numpy(target.reshape(-1).astype(np.int64))
    rows = torch.from_numpy(pairs[:, 0])
    layer = torch.nn.Linear(Q.shape[1], Q.shape[1])
    torch.nn.init.eye_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.AdamW(layer.parameters(), lr=2e-3)
    for _ in range(EPOCHS):
        order = torch.randperm(len(pairs))
        for s in range(0, len(order), 256):
            b = order[s : s + 256]
            logits = F.normalize(layer(q_all[rows[b]]), dim=-1) @ docs.T / 0.03
            loss = F.cross_entropy(logits, y_all[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def qadapter_fit(Q: np.ndarray, D: np.ndarray, pairs: np.ndarray) -> float:
    from qadapter.train.config import TrainConfig
    from qadapter.train.trainer import fit

    start = time.perf_counter()
    fit(Q, D, pairs, TrainConfig(epochs=EPOCHS, device="cpu"))
    return time.perf_counter() - start


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from qadapter.embedding import embed_workspace

    machine = machine_note()
    with tempfile.TemporaryDirectory() as work:
        ws = copy_workspace(args.data, "appleqa", Path(work))
        corpus, splits = embed_workspace(ws, ["train"])
    train = splits["train"]
    pairs = np.asarray(train.pairs(corpus.index()), dtype=np.int64)
    Q, D = train.embeddings.astype(np.float32), corpus.embeddings.astype(np.float32)
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {"plain": [], "qadapter": []}
    for _ in range(args.repeats):
        times["plain"].append(round(plain_loop(Q, D, pairs), 3))
        times["qadapter"].append(round(qadapter_fit(Q, D, pairs), 3))
        print(times, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["qadapter"] / med["plain"]
    result: dict[str, Any] = {
        "machine": machine,
        "command": command_line("bench_plain_loop.py"),
        "pairs": len(pairs),
        "documents": len(D),
        "epochs": EPOCHS,
        "seconds": times,
        "ratio_of_medians": round(ratio, 2),
    }
    lines = [
        "# Per-epoch overhead: qadapter's single contrastive fit against a plain loop",
        "",
        f"Command (from the repository root): `{result['command']}`",
        "",
        machine_line(machine),
        "",
        f"AppleQA train split ({len(pairs)} pairs, {len(D)} documents), bundled all-MiniLM-L6-v2 vectors, {EPOCHS} "
        "epochs, CPU, one torch thread, alternating runs.",
        "",
        "| | seconds (all runs) | median |",
        "|---|---|---:|",
        f"| plain loop | {times['plain']} | {med['plain']:.2f} |",
        f"| qadapter fit | {times['qadapter']} | {med['qadapter']:.2f} |",
        "",
        f"Ratio qadapter / plain: **{ratio:.2f}x** (target: within 3x).",
    ]
    write_results(args.out, "plain_loop", result, lines)


if __name__ == "__main__":
    main()
