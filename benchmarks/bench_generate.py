"""Throughput of ``qadapter generate`` against a local chat server with a fixed latency per call, and what it
pays per chunk when re-runs differ in endpoint spelling, come after a kill -9, or race a second run.

With latency L per call and C requests in flight, the best possible rate is C / L calls per second. This measures
chunks per minute at several concurrencies through the whole path (the real ``openai`` client over HTTP, the rate
limiter, parsing, an fsynced journal line per answer, the final merge into the workspace) and reports the ratio to
that ideal. The never-pay-twice part counts the requests the server got per chunk (0 or 1 is right; more is money
paid twice). Run from the repository root::

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


def _cli(ws: str, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "qadapter", "generate", ws, "--model", "bench", "--llm-base-url", url,
            "--per-chunk", "5", "--no-dedup", "--no-progress", *extra]  # fmt: skip


def _wait_for(condition, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 120
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def never_pay_twice(chunks: int = 40) -> dict:
    """Requests per chunk over: 4 spellings of the endpoint plus OPENAI_BASE_URL; a kill -9 mid-run and a resume
    under another spelling; a second run started while the first is running."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_llm_server import FakeLLMServer

    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp, FakeLLMServer(latency=0.02) as server:
        port = server.url.split(":")[2].split("/")[0]
        spellings = [
            server.url,
            server.url + "/",
            f"http://localhost:{port}/v1",
            f"HTTP://LOCALHOST:{port}/v1/",
        ]
        ws = _bench_workspace(Path(tmp) / "spellings", chunks)
        for i, url in enumerate(spellings, start=1):
            generate(
                ws, model="bench", llm_base_url=url, limit=chunks * i // 5, dedup_threshold=None, per_chunk=5
            )
        os.environ["OPENAI_BASE_URL"] = spellings[2]
        try:
            generate(ws, model="bench", concurrency=3, dedup_threshold=None, per_chunk=5)
        finally:
            del os.environ["OPENAI_BASE_URL"]
        out["5 runs: 4 URL spellings, then OPENAI_BASE_URL"] = _paid(server, chunks, 0)

        server.reset_records()
        ws = _bench_workspace(Path(tmp) / "kill", chunks)
        server.script(f"d{chunks // 2}", ["hang"])
        server.script(f"d{chunks // 2 + 1}", ["hang"])
        proc = subprocess.Popen(
            _cli(str(ws.path), server.url, "--concurrency", "2"), stderr=subprocess.DEVNULL
        )
        _wait_for(
            lambda: server.in_flight == 2 and len(server.completed_ok()) == chunks // 2, "the hanging chunks"
        )
        proc.kill()
        proc.wait()
        server.release()
        subprocess.run(_cli(str(ws.path), spellings[3]), check=True, capture_output=True)
        out["kill -9 with 2 in flight, resume under another spelling"] = _paid(server, chunks, 2)

        server.reset_records()
        ws = _bench_workspace(Path(tmp) / "race", chunks)
        server.script("d0", ["hang"])
        first = subprocess.Popen(
            _cli(str(ws.path), server.url, "--concurrency", "1"), stderr=subprocess.DEVNULL
        )
        _wait_for(lambda: server.in_flight == 1, "the first run")
        second = subprocess.run(_cli(str(ws.path), spellings[1]), capture_output=True, text=True)
        server.release()
        first.wait(timeout=120)
        row = _paid(server, chunks, 0)
        row["second run"] = f"exit {second.returncode}: {second.stderr.strip()[:90]}..."
        out["a second run while the first runs"] = row
    return out


def _bench_workspace(path: Path, chunks: int) -> Workspace:
    ws = Workspace(path)
    ws.write_corpus(
        Document(f"d{i}", f"CHUNK-d{i} Paragraph {i} describes how part {i} of the machine is serviced.")
        for i in range(chunks)
    )
    return ws


def _paid(server, chunks: int, in_flight: int) -> dict:  # noqa: ANN001
    counts = server.requested()
    twice = sum(1 for n in counts.values() if n > 1)
    return {"chunks": chunks, "requests": sum(counts.values()), "chunks asked twice": twice,
            "allowed (in flight at a kill)": in_flight, "chunks never asked": chunks - len(counts)}  # fmt: skip


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

    paid = never_pay_twice()
    print(json.dumps(paid, indent=1), flush=True)
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
            "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        },
        "command": " ".join(["python benchmarks/bench_generate.py", *sys.argv[1:]]),
        "results": rows,
        "never_pay_twice": paid,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generate.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# generate: throughput against a local server",
        "",
        f"Fixed latency {args.latency * 1000:.0f} ms per call; ideal rate = concurrency / latency. "
        f"Server in its own process. Ratio: the whole `generate()` call (HTTP via the openai client, durable "
        f"journal, final merge); steady state: between the first and the last answer. "
        f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at the end: a shared machine), "
        f"Python {platform.python_version()}, openai {openai.__version__}.",
        "",
        "| concurrency | chunks | wall (s) | chunks/min | ideal | ratio | steady-state ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['concurrency']} | {r['chunks']} | {r['wall_s']} | {r['chunks_per_min']} | "
            f"{r['ideal_chunks_per_min']} | {r['ratio']} | {r['steady_ratio']} |"
        )
    lines += [
        "",
        "## Never pay twice",
        "",
        "Requests the local server got per chunk (40 chunks, 5 questions each). A chunk asked twice is money "
        "paid twice; only the requests in flight at a kill -9 may be asked again.",
        "",
        "| scenario | requests | chunks asked twice | allowed | never asked | second run |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in paid.items():
        lines.append(
            f"| {name} | {r['requests']} | {r['chunks asked twice']} | {r['allowed (in flight at a kill)']} | "
            f"{r['chunks never asked']} | {r.get('second run', '')} |"
        )
    lines += ["", f"Command: `{result['command']}`", ""]
    (args.out / "generate.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
