"""The embedding cache at scale: version 1 (SQLite rows holding float32 blobs) against version 2 (flat vector files
read through a memory map, with a SQLite key index), float32 and float16.

Planted data: ``N`` texts ``"document i"`` with random unit 384-d vectors (no model runs). Each (layout, N, phase)
runs in a fresh child process, so its peak memory (``ru_maxrss``) is that phase's alone:

- write: put every vector in batches of ``--batch`` texts (one transaction each);
- read-all: what ``embed()`` does when every text is cached: look up all N texts and return one (N, 384) float32
  array (the array alone is N x 1.5 KB);
- stream (v2 only): read all N in blocks of 65,536 through ``EmbeddingCache.iter_vectors`` (memory stays a block).

float16 is also checked for retrieval: top-10 exact search of 2,000 planted queries (noisy copies of documents) over
100,000 documents with float32 vectors vs the same vectors stored as float16.

Run from the repository root::

    python benchmarks/bench_cache.py [--sizes 100000 1000000] [--batch 8192]

Writes ``benchmarks/results/cache.json`` and ``cache.md``. At 10M vectors only what scales is worth the hours
(reading all 10M into one float32 array is 14.3 GiB)::

    python benchmarks/bench_cache.py --sizes 10000000 --layouts v2-float16 --phases write stream --name cache_10m
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 384
MODEL = "bench-model"
LAYOUTS = ("v1-sqlite-blob", "v2-float32", "v2-float16")
PHASES = ("write", "read-all", "stream")


def texts_of(n: int) -> list[str]:
    return [f"document {i}" for i in range(n)]


def vectors_of(start: int, stop: int) -> np.ndarray:
    v = np.random.default_rng(start).normal(size=(stop - start, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class LegacyCache:
    """Version 1 exactly as it was: one SQLite row per text, key = sha256(model, kind, text), float32 blob."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, model TEXT, dim INTEGER, vector BLOB)"
        )

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(f"{MODEL}\x1fdocument\x1f{text}".encode()).hexdigest()

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        rows = [(self.key(t), MODEL, DIM, v.tobytes()) for t, v in zip(texts, vectors, strict=True)]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)

    def read_all(self, texts: list[str]) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        positions = {k: i for i, k in enumerate(keys)}
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, vector FROM embeddings WHERE key IN ({marks})"  # noqa: S608
            for key, blob in self.db.execute(query, chunk):
                out[positions[key]] = np.frombuffer(blob, dtype=np.float32)
        return out


def run_phase(layout: str, n: int, phase: str, folder: Path, batch: int) -> dict[str, Any]:
    """One phase in this process; returns seconds and peak RSS."""
    from qadapter.encoders import EmbeddingCache

    texts = texts_of(n)
    start = time.perf_counter()
    if layout == "v1-sqlite-blob":
        legacy = LegacyCache(folder / "embeddings.sqlite")
        if phase == "write":
            for s in range(0, n, batch):
                legacy.put(texts[s : s + batch], vectors_of(s, min(n, s + batch)))
        else:
            out = legacy.read_all(texts)
    else:
        with EmbeddingCache(folder / "embeddings", dtype=layout.split("-")[1]) as cache:
            if phase == "write":
                for s in range(0, n, batch):
                    cache.put_many(MODEL, "document", texts[s : s + batch], vectors_of(s, min(n, s + batch)))
            elif phase == "read-all":
                out = cache.read(MODEL, "document", cache.rows(MODEL, "document", texts))
            else:
                total = 0.0
                for block in cache.iter_vectors(MODEL, "document", texts):
                    total += float(block[:, 0].sum())
    seconds = time.perf_counter() - start
    if phase == "read-all":  # the read is right: spot-check rows against the planted vectors
        for s in (0, n // 2, n - 1):
            np.testing.assert_allclose(
                out[s], vectors_of(s - s % batch, s - s % batch + batch)[s % batch], atol=2e-3
            )
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def size_mib(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 1)


def child(layout: str, n: int, phase: str, folder: Path, batch: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", layout, str(n), phase, str(folder), str(batch)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def float16_retrieval(n_docs: int = 100_000, n_queries: int = 2_000) -> dict[str, Any]:
    from qadapter.core.vectors import search

    rng = np.random.default_rng(7)
    docs = vectors_of(0, n_docs)
    targets = rng.integers(0, n_docs, size=n_queries)
    queries = docs[targets] + 0.08 * rng.normal(size=(n_queries, DIM)).astype(np.float32)
    ids32, _ = search(queries, docs, k=10)
    half = docs.astype(np.float16).astype(np.float32)
    ids16, _ = search(queries.astype(np.float16).astype(np.float32), half, k=10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids32, ids16, strict=True)])
    hit32 = float(np.mean([t in row for t, row in zip(targets, ids32, strict=True)]))
    hit16 = float(np.mean([t in row for t, row in zip(targets, ids16, strict=True)]))
    return {
        "data": f"planted: {n_docs} random unit 384-d documents, {n_queries} queries = document + N(0, 0.08^2) noise",
        "top10_overlap": round(float(overlap), 4),
        "hit@10_float32": hit32,
        "hit@10_float16": hit16,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES), help="write always runs")
    parser.add_argument("--name", default="cache", help="results file name (without extension)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        layout, n, phase, folder, batch = args.child
        print(json.dumps(run_phase(layout, int(n), phase, Path(folder), int(batch))))
        return
    rows = []
    for n in args.sizes:
        for layout in args.layouts:
            with tempfile.TemporaryDirectory(dir=RESULTS.parent.parent / ".work") as tmp:
                folder = Path(tmp)
                row: dict[str, Any] = {"layout": layout, "n": n}
                for phase in PHASES:
                    if phase != "write" and phase not in args.phases:
                        continue
                    if phase == "stream" and layout == "v1-sqlite-blob":
                        continue
                    row[phase] = child(layout, n, phase, folder, args.batch)
                row["size_mib"] = size_mib(folder)
                print(json.dumps(row), flush=True)
                rows.append(row)
    quality = float16_retrieval()
    print(json.dumps(quality), flush=True)
    command = "python benchmarks/bench_cache.py " + " ".join(sys.argv[1:])
    write(rows, quality, command, args.batch, args.name)


def projection(rows: list[dict[str, Any]]) -> list[str]:
    """10M vectors, projected linearly from the largest measured size (not measured: 10M float32 read into one
    array is 15 GB, over this machine's budget)."""
    largest = max(r["n"] for r in rows)
    out = [
        "",
        f"Projected to 10,000,000 vectors (x{10_000_000 // largest} the {largest:,} row; not measured):",
        "",
    ]
    for r in (r for r in rows if r["n"] == largest):
        f = 10_000_000 / largest
        stream = (
            f", streaming read ~{r['stream']['seconds'] * f / 60:.0f} min at ~{r['stream']['peak_rss_mib']} MiB"
            if "stream" in r
            else ""
        )
        out.append(
            f"- {r['layout']}: write ~{r['write']['seconds'] * f / 60:.0f} min, size ~{r['size_mib'] * f / 1024:.1f} GiB, "
            f"read-all into one array needs ~{DIM * 4 * 10_000_000 / 2**30:.1f} GiB for the array alone{stream}"
        )
    return out


def write(rows: list[dict[str, Any]], quality: dict[str, Any], command: str, batch: int, name: str) -> None:
    import os
    import platform

    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"command": command, "machine": machine, "rows": rows, "float16": quality}, indent=2)
        + "\n"
    )
    lines = [
        "# Embedding cache at scale",
        "",
        f"Command: `{command}` (planted 384-d vectors, texts `document i`, writes in batches of {batch}; each phase",
        f"in its own process, peak RSS of that process, which counts memory-mapped file pages too). Machine: "
        f"{machine['cpus']} CPUs shared by several jobs (load average at the end: "
        f"{', '.join(f'{x:.1f}' for x in machine['load_average'])}): compare rows as ratios, not absolute times.",
        "",
        "| layout | vectors | write s | write peak MiB | read-all s | read-all peak MiB | stream s | stream peak MiB | size MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    blank = {"seconds": "", "peak_rss_mib": ""}
    for r in rows:
        stream, read = r.get("stream", blank), r.get("read-all", blank)
        lines.append(
            f"| {r['layout']} | {r['n']:,} | {r['write']['seconds']} | {r['write']['peak_rss_mib']} | "
            f"{read['seconds']} | {read['peak_rss_mib']} | {stream['seconds']} | "
            f"{stream['peak_rss_mib']} | {r['size_mib']} |"
        )
    if max(r["n"] for r in rows) < 10_000_000:
        lines += projection(rows)
    lines += [
        "",
        f"float16 storage vs float32 ({quality['data']}): top-10 overlap {quality['top10_overlap']}, "
        f"hit@10 {quality['hit@10_float32']} (float32) vs {quality['hit@10_float16']} (float16).",
        "",
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
