"""Ingest scale: chunking time and peak memory on 1, 4 and 16 MB of single-line text (issue 10 item 7).

Two synthetic inputs, both one line without a single line break (the shape that made chunking superlinear):

- ``prose``: random words from a 12-word vocabulary separated by spaces (no sentence ends);
- ``long-token``: one "word" of ``x`` characters, which the tokenizer counts as a single [UNK] token.

Each size runs in a fresh process (peak RSS is per process) with the shipped defaults: the bundled
all-MiniLM-L6-v2 tokenizer, 254-token chunks, 31 overlap, a 2,540-character cap. ``--baseline`` also times
``semantic-text-splitter`` alone (what chunking did before) on the smaller sizes given by ``--baseline-mb``.

Run from the repository root::

    python benchmarks/bench_ingest.py [--sizes-mb 1,4,16] [--baseline --baseline-mb 0.25,1]

Writes ``benchmarks/results/ingest.json`` and ``ingest.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import RESULTS, command_line, machine_line, machine_note, write_results  # noqa: E402

WORDS = [
    "the",
    "solar",
    "campus",
    "water",
    "energy",
    "recycled",
    "report",
    "environment",
    "carbon",
    "emissions",
]


def make_text(kind: str, n_chars: int) -> str:
    if kind == "long-token":
        return "x" * n_chars
    rng = random.Random(0)
    return " ".join(rng.choice(WORDS) for _ in range(n_chars // 6 + 1))[:n_chars]


def measure_one(kind: str, megabytes: float, method: str) -> dict[str, Any]:
    """Run in a child process: chunk the text once and report time, chunk sizes and peak memory."""
    from qadapter.ingest.chunking import Chunker

    chunker = Chunker()
    text = make_text(kind, int(megabytes * 1_000_000))
    started = time.perf_counter()
    if method == "qadapter":
        chunks = chunker.split(text)
    else:  # the splitter alone, as before
        chunks = [(o, c) for o, c in chunker._splitter(False).chunk_indices(text) if c.strip()]
    seconds = time.perf_counter() - started
    sample = chunks[:: max(1, len(chunks) // 200)]
    return {
        "kind": kind,
        "mb": megabytes,
        "method": method,
        "seconds": round(seconds, 2),
        "seconds_per_mb": round(seconds / megabytes, 2),
        "chunks": len(chunks),
        "max_chars": max(len(c) for _, c in chunks),
        "max_tokens_sampled": max(chunker.count_tokens(c) for _, c in sample) - 2,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_child(kind: str, megabytes: float, method: str) -> dict[str, Any]:
    args = [sys.executable, __file__, "--one", kind, str(megabytes), method]
    proc = subprocess.run(args, capture_output=True, text=True, check=True)
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(row), flush=True)
    return row


def to_markdown(rows: list[dict[str, Any]], machine: dict[str, Any]) -> list[str]:
    lines = [
        "# Ingest: chunking time on long single-line text",
        "",
        f"Command: `{command_line('bench_ingest.py')}`. Data: synthetic single-line text (see the script's "
        "docstring); shipped chunking defaults (bundled all-MiniLM-L6-v2 tokenizer, 254 tokens, overlap 31, "
        "cap 2,540 characters). One fresh process per row.",
        "",
        "| input | size (MB) | method | seconds | s/MB | chunks | max chars | max tokens (sampled) | peak RSS (MB) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['kind']} | {r['mb']} | {r['method']} | {r['seconds']} | {r['seconds_per_mb']} | {r['chunks']} | "
            f"{r['max_chars']} | {r['max_tokens_sampled']} | {r['peak_rss_mb']} |"
        )
    lines += ["", f"Machine: {machine_line(machine)}"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="1,4,16")
    parser.add_argument("--kinds", default="prose,long-token")
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--baseline-mb", default="0.25,1")
    parser.add_argument("--one", nargs=3, metavar=("KIND", "MB", "METHOD"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], float(args.one[1]), args.one[2])))
        return
    machine = machine_note()
    rows = []
    for kind in args.kinds.split(","):
        for mb in (float(x) for x in args.sizes_mb.split(",")):
            rows.append(run_child(kind, mb, "qadapter"))
        if args.baseline and kind == "prose":
            for mb in (float(x) for x in args.baseline_mb.split(",")):
                rows.append(run_child(kind, mb, "splitter-alone"))
    machine["load_average_end"] = machine_note()["load_average_start"]
    write_results(
        args.out,
        "ingest",
        {"rows": rows, "machine": machine, "command": command_line("bench_ingest.py")},
        to_markdown(rows, machine),
    )


if __name__ == "__main__":
    main()
