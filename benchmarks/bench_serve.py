"""Benchmark ``qadapter serve`` against calling the base model's ``encode`` in-process, in one run.

- the adapter's own share of query latency: ``adapter.transform`` of one query vector against the base model's
  ``encode`` of one query (target: under 2%);
- single queries and batches: in-process ``encode`` (with and without the adapter), ``qadapter serve`` as a real
  process over HTTP (httpx keep-alive, base64 vectors like the openai client's default) and through the real
  ``openai`` client, timed interleaved so that a shared machine's changing load hits every call type alike;
- single queries from many concurrent clients, where micro-batching matters, once per ``--wait-ms`` value.

Usage (from the repository root)::

    python benchmarks/bench_serve.py            # writes benchmarks/results/serve.json and serve.md

Texts are the AppleQA queries from ``../shared/data`` when present, otherwise generated sentences.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from qadapter.adapters import Adapter, load_adapter, save_adapter
from qadapter.encoders import get_encoder
from qadapter.version import __version__

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "appleqa" / "queries.jsonl"
RESULTS = ROOT / "benchmarks" / "results"


def load_texts(n: int) -> tuple[list[str], str]:
    if DATA.is_file():
        with DATA.open() as handle:
            texts = [json.loads(line)["text"] for line in handle if line.strip()]
        return texts[:n], "AppleQA queries (../shared/data/appleqa/queries.jsonl)"
    words = [
        "carbon",
        "energy",
        "recycled",
        "aluminium",
        "supplier",
        "emissions",
        "water",
        "packaging",
        "renewable",
        "product",
    ]
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, 10)) + "?" for _ in range(n)], "generated 10-word sentences"


def summarize(latencies_s: list[float], n_texts: int, wall_s: float) -> dict[str, float]:
    ms = np.asarray(latencies_s) * 1000
    return {
        "requests": len(latencies_s),
        "embeddings_per_s": round(n_texts / wall_s, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def timed_interleaved(
    calls: dict[str, Callable[[list[str]], object]], chunks: list[list[str]]
) -> dict[str, dict]:
    """Time every call on every chunk, interleaved (rotating the order), so that the ups and downs of a
    shared machine's load hit all of them alike; throughput is texts / time spent in that call."""
    names = list(calls)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    for i, chunk in enumerate(chunks):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0 = time.perf_counter()
            calls[name](chunk)
            latencies[name].append(time.perf_counter() - t0)
    n_texts = sum(map(len, chunks))
    return {name: summarize(latencies[name], n_texts, sum(latencies[name])) for name in names}


def timed_concurrent(
    make_call: Callable[[], Callable[[list[str]], object]], chunks: list[list[str]], clients: int
) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    parts = [chunks[i::clients] for i in range(clients)]

    def worker(part: list[list[str]]) -> None:
        call = make_call()
        for chunk in part:
            t0 = time.perf_counter()
            call(chunk)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=worker, args=(part,)) for part in parts]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summarize(latencies, sum(map(len, chunks)), time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(adapter_dir: Path, wait_ms: float, max_batch: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "qadapter", "serve", str(adapter_dir), "--port", str(port)]
    command += ["--batch-wait-ms", str(wait_ms), "--max-batch", str(max_batch)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("QADAPTER_API_KEY", None)
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("server did not start within 120 s")


def http_caller(url: str) -> Callable[[list[str]], object]:
    client = httpx.Client(base_url=url, timeout=60)

    def call(texts: list[str]) -> object:
        response = client.post(
            "/v1/embeddings", json={"input": texts, "model": "q", "encoding_format": "base64"}
        )
        response.raise_for_status()
        return response.content

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--adapter", type=Path, help="adapter folder (default: a random 384x384 linear adapter)"
    )
    parser.add_argument("--single", type=int, default=200, help="single-query requests per scenario")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients sending single queries")
    parser.add_argument(
        "--wait-ms",
        type=float,
        nargs="+",
        default=[0.0, 2.0],
        help="server --batch-wait-ms values (first: all runs)",
    )
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for the in-process encoder and the server alike (0: torch's default, one per core); "
        "1 keeps timings stable on a shared machine, where torch's spinning threads collapse under load",
    )
    args = parser.parse_args()
    if args.threads > 0:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # read by the server processes' torch at start
            os.environ[var] = str(args.threads)

    import openai
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    texts, source = load_texts(max(args.single * 2, args.batch_size * args.batches))
    singles = [[t] for t in texts[: args.single]]
    batches = [texts[i * args.batch_size : (i + 1) * args.batch_size] for i in range(args.batches)]
    concurrent = [[t] for t in texts[: args.single * 2]]
    batch_key = f"batch_of_{args.batch_size}"
    concurrent_key = f"{args.clients}_concurrent_clients_single_queries"

    with tempfile.TemporaryDirectory() as tmp:
        if args.adapter:
            adapter_dir = args.adapter
            adapter = load_adapter(adapter_dir)
        else:
            rng = np.random.default_rng(0)
            weight = np.eye(384) + 0.05 * rng.standard_normal((384, 384))
            config = {"base_model": {"name": "all-MiniLM-L6-v2", "dim": 384}}
            adapter = Adapter("linear", 384, {"weight": weight, "bias": np.zeros(384)}, config)
            adapter_dir = save_adapter(adapter, Path(tmp) / "bench-adapter")

        encoder = get_encoder(adapter.base_model or "all-MiniLM-L6-v2")
        encoder.encode(texts[:64])  # warm-up
        results: dict = {
            "environment": {
                "qadapter": __version__,
                "python": platform.python_version(),
                "torch": torch.__version__,
                "torch_threads": torch.get_num_threads(),
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            },
            "setup": {
                "texts": source,
                "model": encoder.name,
                "adapter": f"{adapter.kind} ({adapter.n_parameters} parameters)",
                "server": "python -m qadapter serve (uvicorn, 1 process), httpx keep-alive client, base64 vectors",
                "batch_size": args.batch_size,
                "clients": args.clients,
                "max_batch": args.max_batch,
            },
        }

        # the adapter's own cost per query, against the base model's encode of one query
        vectors = encoder.encode([t for [t] in singles])
        transform_s = []
        for row in vectors:
            t0 = time.perf_counter()
            adapter.transform(row[None, :])
            transform_s.append(time.perf_counter() - t0)
        transform_p50_ms = statistics.median(transform_s) * 1000

        servers = []
        try:
            for wait_ms in args.wait_ms:
                servers.append(start_server(adapter_dir, wait_ms, args.max_batch))
            (_, url), extra = servers[0], servers[1:]
            call = http_caller(url)
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
            for chunk in singles[:20]:  # warm the connection and the server
                call(chunk)
                client.embeddings.create(model="q", input=chunk)
            wait0 = f"serve (batch_wait_ms={args.wait_ms[0]:g})"
            single = timed_interleaved(
                {
                    "in-process encode": lambda chunk: encoder.encode(chunk),
                    "in-process encode + adapter": lambda chunk: adapter.transform(encoder.encode(chunk)),
                    wait0: call,
                    f"{wait0}, openai client": lambda chunk: client.embeddings.create(model="q", input=chunk),
                },
                singles,
            )
            batch = timed_interleaved(
                {
                    "in-process encode": lambda chunk: encoder.encode(chunk, batch_size=args.batch_size),
                    wait0: call,
                },
                batches,
            )
            concurrency, stats = {}, {}
            for wait_ms, (_, server_url) in zip(args.wait_ms, [(None, url)] + extra, strict=True):
                name = f"serve (batch_wait_ms={wait_ms:g})"
                before = httpx.get(f"{server_url}/health").json()
                concurrency[name] = timed_concurrent(
                    lambda u=server_url: http_caller(u), concurrent, args.clients
                )
                after = httpx.get(f"{server_url}/health").json()
                stats[name] = {k: after[k] - before[k] for k in ("batches", "requests", "texts")}
        finally:
            for server, _ in servers:
                server.terminate()
                server.wait(timeout=30)

        base_p50 = single["in-process encode"]["p50_ms"]
        results["adapter_share"] = {
            "transform_p50_ms": round(transform_p50_ms, 4),
            "encode_p50_ms": base_p50,
            "share_of_query_latency_pct": round(100 * transform_p50_ms / (base_p50 + transform_p50_ms), 3),
            "target_pct": 2.0,
        }
        results["serve_overhead_single_query_p50_ms"] = round(single[wait0]["p50_ms"] - base_p50, 3)
        results["single_query"] = single
        results[batch_key] = batch
        results[concurrent_key] = concurrency
        results["concurrent_encoder_calls"] = stats

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "serve.md").write_text(
        render_markdown(
            results,
            [
                ("single_query", "single query"),
                (batch_key, f"batch of {args.batch_size}"),
                (concurrent_key, f"{args.clients} concurrent clients, single queries"),
            ],
        )
    )
    sys.stdout.write((RESULTS / "serve.md").read_text())


def render_markdown(results: dict, sections: list[tuple[str, str]]) -> str:
    env, setup, share = results["environment"], results["setup"], results["adapter_share"]
    lines = [
        "# qadapter serve benchmark",
        "",
        "Command: `python benchmarks/bench_serve.py` (from the repository root).",
        "",
        f"{env['date']}; qadapter {env['qadapter']}, Python {env['python']}, torch {env['torch']} "
        f"({env['torch_threads']} threads), {env['cpus']} CPUs ({env['machine']}), load average at start "
        f"{env['load_average_at_start']}. Client and server share the same CPUs.",
        f"Model {setup['model']}, adapter {setup['adapter']}, texts: {setup['texts']}. Server: {setup['server']}.",
        "Single queries and batches are timed interleaved (each call type in turn on the same text), so the",
        "comparison holds even when the machine's load varies; embeddings/s = texts / time spent in that call type.",
        "",
        f"**Adapter's own share of query latency: {share['share_of_query_latency_pct']}%** "
        f"(transform p50 {share['transform_p50_ms']} ms vs base encode p50 {share['encode_p50_ms']} ms; target < 2%). "
        f"Server overhead per single query (p50, HTTP + JSON + batching): "
        f"{results['serve_overhead_single_query_p50_ms']} ms.",
        "",
        "| scenario | call | embeddings/s | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for key, title in sections:
        for name, r in results[key].items():
            lines.append(f"| {title} | {name} | {r['embeddings_per_s']} | {r['p50_ms']} | {r['p99_ms']} |")
    lines.append("")
    one_at_a_time = results["single_query"]["in-process encode"]["embeddings_per_s"]
    lines.append(
        "Micro-batching under concurrent load (throughput against in-process `encode` one query at a time, "
        f"{one_at_a_time}/s; encoder calls the server made for that scenario):"
    )
    key = sections[-1][0]
    for name, b in results["concurrent_encoder_calls"].items():
        lines.append(
            f"- {name}: {b['requests']} requests in {b['batches']} encoder calls "
            f"({b['requests'] / max(b['batches'], 1):.1f} requests per call), "
            f"{results[key][name]['embeddings_per_s'] / one_at_a_time:.2f}x the throughput."
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
