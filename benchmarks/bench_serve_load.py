"""Load test of ``qadapter serve`` under accident and attack, against a real local server (127.0.0.1 only).

Three scenarios, each with bounded request counts, against ``python -m qadapter serve`` with the bundled
all-MiniLM-L6-v2 and a random linear adapter recorded for it (robustness, not retrieval quality, is measured):

1. poisoned batch: 20 concurrent normal requests plus one carrying a lone surrogate (``"evil \\ud800"``); the
   poisoned one must fail alone (400), the 20 must succeed;
2. disconnects: while the encoder is busy with one large request, 6 clients send large requests and close the
   connection at once; the server's own counters (``/health``: texts sent to the encoder, dropped requests) must
   show that none of their texts was encoded;
3. flood: 8 clients send requests back to back (honouring Retry-After on a 503, as the openai client does)
   while a 1-text query is sent every 0.5 s; every query must be answered within the request timeout or
   refused with 503, never after minutes.

Usage (from the repository root)::

    python benchmarks/bench_serve_load.py          # writes benchmarks/results/serve_load.json and .md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from qadapter.adapters import Adapter, save_adapter
from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.version import __version__

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(adapter_dir: Path, timeout_s: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = ["serve", str(adapter_dir), "--port", str(port), "--request-timeout", str(timeout_s)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "qadapter", *args]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not answer /health within 120 s")


CLIENT = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=64))  # keep-alive, shared by threads


def post(url: str, body: dict | bytes) -> tuple[int, float]:
    return post_full(url, body)[:2]  # type: ignore[return-value]


def post_full(url: str, body: dict | bytes) -> tuple[int, float, str, str]:
    """(status, seconds, error code or "", Retry-After or "") of one request."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    started = time.monotonic()
    response = CLIENT.post(
        f"{url}/v1/embeddings", content=content, headers={"content-type": "application/json"}
    )
    elapsed = time.monotonic() - started
    code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
    return response.status_code, elapsed, code, response.headers.get("retry-after", "")


def run_threads(targets: list) -> None:  # type: ignore[type-arg]
    threads = [threading.Thread(target=t) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)


def post_retrying(url: str, body: dict | bytes, retries: int = 3) -> tuple[int, int, str]:
    """Like the openai client: retry a 503 after its Retry-After; returns (status, retries used, error code)."""
    for attempt in range(retries + 1):
        status, _, code, retry_after = post_full(url, body)
        if status != 503 or attempt == retries:
            return status, attempt, code
        time.sleep(min(float(retry_after or 1), 10.0))
    raise AssertionError("unreachable")


def poisoned_batch(url: str, rounds: int) -> dict:
    """20 normal requests and one with a lone surrogate, sent at once, ``rounds`` times (503s retried)."""
    good: list[tuple[int, int, str]] = []
    bad: list[tuple[int, int, str]] = []
    poison = json.dumps({"input": ["a normal question", "evil \ud800"]}).encode()  # ASCII JSON: \ud800 escape

    def normal(i: int) -> None:
        good.append(
            post_retrying(url, {"input": [f"question {i} about recycled aluminium", f"and energy {i}"]})
        )

    for _ in range(rounds):
        targets = [lambda i=i: normal(i) for i in range(20)]
        targets.insert(10, lambda: bad.append(post_retrying(url, poison)))
        run_threads(targets)
    statuses = [status for status, _, _ in good]
    return {
        "rounds": rounds,
        "normal_requests": len(good),
        "normal_ok": statuses.count(200),
        "normal_failed": len(statuses) - statuses.count(200),
        "normal_failure_codes": sorted({code for status, _, code in good if status != 200}),
        "normal_503_retries": sum(retries for _, retries, _ in good),
        "poisoned_requests": len(bad),
        "poisoned_status": sorted({status for status, _, _ in bad}),
    }


def measure_speed(url: str) -> float:
    """Texts per second of the server as it is now (the machine may be shared): best of two 32-text requests."""
    texts = [f"speed probe text {i} about carbon neutral products" for i in range(32)]
    best = min(post(url, {"input": texts})[1] for _ in range(2))
    return len(texts) / best


def health(url: str) -> dict:
    return CLIENT.get(f"{url}/health").json()


def disconnects(url: str, n_texts: int, n_clients: int = 6) -> dict:
    """Clients that send a request and close at once, while the encoder is busy with an ``n_texts`` request.

    Each leaving client sends ``n_texts // 12`` texts, so all of them fit within the queue's time bound: they are
    queued (not refused), and must be dropped unencoded when their clients leave.
    """
    port = int(url.rsplit(":", 1)[1])
    before = health(url)
    busy_texts = [f"a busy request's text number {i} about water and packaging" for i in range(n_texts)]
    busy_status: list[int] = []
    holder = threading.Thread(target=lambda: busy_status.append(post(url, {"input": busy_texts})[0]))
    holder.start()
    time.sleep(0.3)  # the big request is now inside the encoder
    n_gone = max(1, n_texts // 12)
    gone_body = json.dumps({"input": [f"text from a client that leaves {i}" for i in range(n_gone)]}).encode()
    head = f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(gone_body)}\r\n\r\n"
    for _ in range(n_clients):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(head.encode() + gone_body)
        time.sleep(0.2)  # long enough for the server to queue the request
        sock.close()
    holder.join(timeout=300)
    time.sleep(0.5)
    after = health(url)
    return {
        "busy_request_texts": len(busy_texts),
        "busy_request_status": busy_status[0] if busy_status else None,
        "clients_that_left": n_clients,
        "their_texts": n_clients * n_gone,
        "texts_encoded_meanwhile": after["texts"] - before["texts"],
        "requests_dropped_unencoded": after["dropped"] - before["dropped"],
        "encoder_calls_meanwhile": after["encoder_calls"] - before["encoder_calls"],
    }


def flood(url: str, timeout_s: float, seconds: float, n_texts: int, n_flooders: int = 8) -> dict:
    """Flooders send ``n_texts``-text requests back to back; a 1-text query every 0.5 s measures its fate."""
    stop = time.monotonic() + seconds
    flood_status: list[int] = []
    queries: list[tuple[int, float, str, str]] = []
    body = {
        "input": [f"flood text {i} about supplier emissions and renewable energy" for i in range(n_texts)]
    }

    def flooder() -> None:
        while time.monotonic() < stop:
            status, _, _, retry_after = post_full(url, body)
            flood_status.append(status)
            if status == 503:  # like the openai client: wait as long as Retry-After says
                time.sleep(min(float(retry_after or 1), 10.0))

    def prober() -> None:
        while time.monotonic() < stop:
            queries.append(post_full(url, {"input": "How much did Apple cut its emissions?"}))
            time.sleep(0.5)

    overloaded_seen = []

    def watcher() -> None:
        while time.monotonic() < stop:
            overloaded_seen.append(CLIENT.get(f"{url}/health").status_code == 503)
            time.sleep(0.5)

    run_threads([flooder] * n_flooders + [prober, watcher])
    latencies = np.array([q[1] for q in queries])
    statuses = [q[0] for q in queries]
    return {
        "seconds": seconds,
        "flooders": n_flooders,
        "flood_request_texts": n_texts,
        "flood_requests": len(flood_status),
        "flood_ok": flood_status.count(200),
        "flood_503": flood_status.count(503),
        "queries": len(queries),
        "queries_ok": statuses.count(200),
        "queries_503": statuses.count(503),
        "queries_other": len(statuses) - statuses.count(200) - statuses.count(503),
        "queries_503_codes": sorted({q[2] for q in queries if q[0] == 503}),
        "queries_over_timeout": int(np.sum(latencies > timeout_s)),
        "query_p50_s": round(float(np.percentile(latencies, 50)), 3),
        "query_max_s": round(float(latencies.max()), 3),
        "request_timeout_s": timeout_s,
        "health_overloaded_share": round(float(np.mean(overloaded_seen)), 2) if overloaded_seen else None,
    }


def write(results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serve_load.json").write_text(json.dumps(results, indent=2) + "\n")
    p, d, f = results["poisoned_batch"], results["disconnects"], results["flood"]
    speed = results["server_texts_per_s"]
    lines = [
        "# qadapter serve under load",
        "",
        f"Command: `{results['command']}`. Server: `{results['server']}`; {results['machine']}.",
        "Data: generated English sentences (no dataset split involved); the adapter is random (robustness only).",
        f"Request sizes are scaled to the server's measured speed at the time ({speed} texts/s, best of two "
        "32-text requests).",
        "",
        "| scenario | result |",
        "|---|---|",
        f"| poisoned batch ({p['rounds']} rounds of 20 normal + 1 lone-surrogate request, concurrent) | "
        f"{p['normal_ok']}/{p['normal_requests']} normal requests OK, {p['normal_failed']} failed "
        f"{p['normal_failure_codes']} ({p['normal_503_retries']} retries after a 503); poisoned got HTTP "
        f"{p['poisoned_status']} |",
        f"| {d['clients_that_left']} clients send {d['their_texts']} texts and disconnect while the encoder is busy | "
        f"texts encoded meanwhile: {d['texts_encoded_meanwhile']} (the busy request's {d['busy_request_texts']}); "
        f"requests dropped unencoded: {d['requests_dropped_unencoded']} |",
        f"| flood: {f['flooders']} clients x {f['flood_request_texts']}-text requests for {f['seconds']} s, "
        f"a 1-text query every 0.5 s, request timeout {f['request_timeout_s']} s | "
        f"queries: {f['queries_ok']} answered, {f['queries_503']} refused with 503, {f['queries_other']} other; "
        f"p50 {f['query_p50_s']} s, max {f['query_max_s']} s, {f['queries_over_timeout']} over the timeout; "
        f"flood requests {f['flood_ok']} OK / "
        f"{f['flood_503']} 503; /health said overloaded in {f['health_overloaded_share']} of checks |",
        "",
    ]
    (RESULTS / "serve_load.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="the server's --request-timeout (seconds)"
    )
    parser.add_argument("--flood-seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    dim = 384
    tensors = {"weight": np.eye(dim) + 0.05 * rng.standard_normal((dim, dim)), "bias": np.zeros(dim)}
    adapter = Adapter("linear", dim, tensors, {"base_model": {"name": DEFAULT_MODEL, "dim": dim}})
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_adapter(adapter, Path(tmp) / "adapter")
        server, url = start_server(folder, args.timeout)
        try:
            results = {
                "command": f"python benchmarks/bench_serve_load.py --timeout {args.timeout:g} "
                f"--flood-seconds {args.flood_seconds:g} --rounds {args.rounds}",
                "server": f"python -m qadapter serve ADAPTER --request-timeout {args.timeout:g} "
                f"(model {DEFAULT_MODEL}, CPU)",
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), qadapter {__version__}",
                "poisoned_batch": poisoned_batch(url, args.rounds),
            }
            speed = measure_speed(url)
            # sizes scaled to this machine's speed now: the busy request takes about a third of the deadline,
            # each flood request a quarter (8 flooders queue about two deadlines of work)
            results["server_texts_per_s"] = round(speed, 1)
            results["disconnects"] = disconnects(url, n_texts=int(np.clip(speed * args.timeout / 3, 12, 512)))
            n_flood = int(np.clip(speed * args.timeout / 4, 2, 256))
            results["flood"] = flood(url, args.timeout, args.flood_seconds, n_texts=n_flood)
        finally:
            server.terminate()
            server.wait(timeout=30)
    write(results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
