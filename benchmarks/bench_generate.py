"""Throughput of ``qadapter generate`` against a local chat server with a fixed latency per call.

With latency L per call and C requests in flight, the best possible rate is C / L calls per second. This measures
chunks per minute at several concurrencies through the whole path (the real ``openai`` client over HTTP, the rate
limiter, parsing, an fsynced journal line per answer, the final merge into the workspace) and reports the ratio to
that ideal. Run from the repository root::

    python benchmarks/bench_generate.py [--latency 0.3] [--concurrency 1 8 32]

Writes ``benchmarks/results/generate.json`` and ``generate.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from qadapter.data import Document, Workspace  # noqa: E402
from qadapter.generate import generate  # noqa: E402
from qadapter.generate.journal import Journal  # noqa: E402


def bench_one(url: str, latency: float, concurrency: int, chunks: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(tmp)
        ws.write_corpus(
            Document(f"d{i}", f"CHUNK-d{i} Paragraph {i} describes how part {i} of the machine is serviced.")
            for i in range(chunks)
        )
        start = time.perf_counter()
        summary = generate(
            ws, model="bench", llm_base_url=url, concurrency=concurrency, per_chunk=5, dedup_threshold=None
        )
        wall = time.perf_counter() - start
        if summary.answered != chunks or summary.requests != chunks:
            raise RuntimeError(f"expected {chunks} answers in {chunks} requests, got {summary}")
        times = sorted(r["time"] for r in Journal(summary.journal).records)
    ideal = concurrency / latency * 60.0
    per_minute = chunks / wall * 60.0
    # steady state: answers per minute between the first and the last answer, without start-up and merge
    steady = (
        (chunks - concurrency) / (times[-1] - times[concurrency - 1]) * 60.0 if chunks > concurrency else None
    )
    return {
        "concurrency": concurrency,
        "chunks": chunks,
        "wall_s": round(wall, 3),
        "chunks_per_min": round(per_minute, 1),
        "ideal_chunks_per_min": round(ideal, 1),
        "ratio": round(per_minute / ideal, 3),
        "steady_ratio": round(steady / ideal, 3) if steady else None,
        "retries": summary.retries,
    }


@contextlib.contextmanager
def server_process(latency: float) -> Iterator[str]:
    """The fake server in its own process, as a real model server would be."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_llm_server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--calls-per-worker", type=int, default=15, help="chunks = concurrency x this")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    import openai

    rows = []
    with server_process(args.latency) as url:
        bench_one(url, args.latency, 2, 4)  # warm-up: imports, first connections
        for c in args.concurrency:
            row = bench_one(url, args.latency, c, c * args.calls_per_worker)
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "benchmark": "generate throughput against a local chat-completions server",
        "latency_s": args.latency,
        "calls_per_worker": args.calls_per_worker,
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "openai": openai.__version__,
        },
        "command": " ".join(["python benchmarks/bench_generate.py", *sys.argv[1:]]),
        "results": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generate.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# generate: throughput against a local server",
        "",
        f"Fixed latency {args.latency * 1000:.0f} ms per call; ideal rate = concurrency / latency. "
        f"Server in its own process. Ratio: the whole `generate()` call (HTTP via the openai client, durable "
        f"journal, final merge); steady state: between the first and the last answer. "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, openai {openai.__version__}.",
        "",
        "| concurrency | chunks | wall (s) | chunks/min | ideal | ratio | steady-state ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['concurrency']} | {r['chunks']} | {r['wall_s']} | {r['chunks_per_min']} | "
            f"{r['ideal_chunks_per_min']} | {r['ratio']} | {r['steady_ratio']} |"
        )
    lines += ["", f"Command: `{result['command']}`", ""]
    (args.out / "generate.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
