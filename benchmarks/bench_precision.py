"""Reduced precision for encoding (``--precision``, issue 12): time, vector agreement, and retrieval equality.

AppleQA (215 chunks, the 860 questions of ``qrels/test.tsv``) is encoded with the bundled all-MiniLM-L6-v2 once per
precision, through the public ``get_encoder(..., precision=...)`` and ``embed()`` (the embed stage's batching, no cache,
so every text is computed). For each precision other than float32 it reports:

- time: loading the model, then encoding the chunks and the questions (after a short warm-up), against float32;
  the precisions take turns batch by batch, so a change in a shared machine's load hits them alike; and the
  model's weight memory;
- agreement: min and mean cosine between each text's vector and its float32 vector;
- retrieval: base-model hit@10 / MRR@10 on the test questions (exact cosine search over all chunks), the change
  against float32 and a two-sided paired randomization test p (``qadapter.evaluate.stats.compare``), plus how many
  questions changed their top-10 list. "Equal within noise" means a change far inside the noise that p measures.

Run from the repository root (``--device cuda`` on a GPU, where float16 and bfloat16 are meant to pay off)::

    python benchmarks/bench_precision.py [--device auto] [--precision float32 bfloat16 float16] [--data ../shared/data]

Writes ``benchmarks/results/precision.json`` and ``precision.md`` (``--name`` to keep a GPU run apart).
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

METRICS = ["hit@10", "mrr@10"]
K = 10
WARMUP = 16  # texts encoded once before timing (first-call allocations, kernel selection)
#: CPU features that decide whether half-precision matrix work has hardware support (else it is emulated)
CPU_FLAGS = ("avx2", "f16c", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16")


def cpu_features() -> dict[str, Any]:
    """The CPU's model name and which of :data:`CPU_FLAGS` it has (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": None, "flags": []}
    model = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), None
    )
    flags = set(
        next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    )
    return {"model": model, "flags": [f for f in CPU_FLAGS if f in flags]}


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def encode_interleaved(
    precisions: list[str], device: str, docs: list[str], queries: list[str], batch: int
) -> dict[str, dict[str, Any]]:
    """Load the model once per precision, then encode every chunk and question in rounds of one batch, each round
    with every precision in turn, so a change in the (shared) machine's load hits all precisions alike."""
    from qadapter.encoders import embed, get_encoder

    encoders: dict[str, Any] = {}
    runs: dict[str, dict[str, Any]] = {}
    for precision in precisions:
        started = time.perf_counter()
        encoder = get_encoder(device=device, precision=precision)
        model = encoder.model  # type: ignore[attr-defined]
        load_s = time.perf_counter() - started
        embed(encoder, docs[:WARMUP], kind="document", batch_size=batch)
        encoders[precision] = encoder
        runs[precision] = {
            "precision": precision,
            "device": encoder.device,  # type: ignore[attr-defined]
            "model_dtype": str(model.dtype).removeprefix("torch."),
            "model_mib": round(sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20, 1),
            "load_s": round(load_s, 2),
            "documents_s": 0.0,
            "queries_s": 0.0,
            "vectors": {"document": [], "query": []},
        }
    for kind, texts in (("document", docs), ("query", queries)):
        for start in range(0, len(texts), batch):
            for precision in precisions:
                run = runs[precision]
                started = time.perf_counter()
                vectors = embed(
                    encoders[precision], texts[start : start + batch], kind=kind, batch_size=batch
                )
                run["documents_s" if kind == "document" else "queries_s"] += time.perf_counter() - started
                run["vectors"][kind].append(vectors)
    for run in runs.values():
        documents, queries_ = (np.concatenate(run["vectors"][k]) for k in ("document", "query"))
        encode_s = run["documents_s"] + run["queries_s"]
        run.update(
            vector_dtype=str(documents.dtype),
            documents_s=round(run["documents_s"], 2),
            queries_s=round(run["queries_s"], 2),
            encode_s=round(encode_s, 2),
            texts_per_s=round((len(docs) + len(queries)) / encode_s, 1),
            vectors=(documents, queries_),
        )
    return runs


def retrieval(
    doc_ids: list[str], query_ids: list[str], docs: np.ndarray, queries: np.ndarray, qrels: Any
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Per-query hit@10 / MRR@10 of exact cosine search, and each query's top-10 document ids."""
    from qadapter.core.metrics import per_query_scores
    from qadapter.core.vectors import search_run

    run = search_run(query_ids, queries, doc_ids, docs, k=K)
    top = {q: sorted(run[q], key=lambda d, q=q: (-run[q][d], d)) for q in query_ids}
    return per_query_scores(qrels, run, METRICS), top


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from qadapter.data import Workspace
    from qadapter.evaluate.stats import compare

    ws = Workspace(common.copy_workspace(args.data, "appleqa", work))
    corpus, all_queries, qrels = ws.corpus(), ws.queries(), ws.qrels(args.split)
    doc_ids = list(corpus)
    query_ids = sorted(q for q in qrels if any(s > 0 for s in qrels[q].values()))
    doc_texts = [corpus[d].full_text for d in doc_ids]
    query_texts = [all_queries[q].text for q in query_ids]
    print(f"appleqa: {len(doc_ids)} chunks, {len(query_ids)} {args.split} questions", flush=True)

    import sentence_transformers  # noqa: F401 - imported before timing, so load_s is the model's load alone

    precisions = ["float32", *[p for p in args.precision if p != "float32"]]
    runs = encode_interleaved(precisions, args.device, doc_texts, query_texts, args.batch_size)
    for precision, run in runs.items():
        print(f"{precision}: { {k: v for k, v in run.items() if k != 'vectors'} }", flush=True)

    ref_docs, ref_queries = runs["float32"]["vectors"]
    ref_scores, ref_top = retrieval(doc_ids, query_ids, ref_docs, ref_queries, qrels)
    rows = []
    for precision in precisions:
        run = runs.pop(precision)
        docs, queries = run.pop("vectors")
        scores, top = retrieval(doc_ids, query_ids, docs, queries, qrels)
        comparison = compare(ref_scores, scores, seed=0)
        doc_cos, query_cos = cosines(ref_docs, docs), cosines(ref_queries, queries)
        reference = rows[0] if rows else None
        rows.append(
            {
                **run,
                "slowdown_vs_float32": round(run["encode_s"] / reference["encode_s"], 2)
                if reference
                else 1.0,
                "cosine_documents": {"min": float(doc_cos.min()), "mean": float(doc_cos.mean())},
                "cosine_queries": {"min": float(query_cos.min()), "mean": float(query_cos.mean())},
                "metrics": {m: round(comparison[m]["adapted"], 4) for m in METRICS},
                "delta": {m: comparison[m]["delta"] for m in METRICS},
                "p_value": {m: comparison[m]["p_value"] for m in METRICS},
                "queries_changed": {m: comparison[m]["better"] + comparison[m]["worse"] for m in METRICS},
                "top10_order_changed": sum(top[q] != ref_top[q] for q in query_ids),
                "top10_set_changed": sum(set(top[q]) != set(ref_top[q]) for q in query_ids),
                "top1_changed": sum(top[q][0] != ref_top[q][0] for q in query_ids),
            }
        )
    return {"documents": len(doc_ids), "queries": len(query_ids), "precisions": rows}


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "# Reduced precision for encoding (--precision)",
        "",
        f"Command: `{result['command']}`",
        "",
        common.machine_line(result["machine"]),
        "",
        f"AppleQA: {result['documents']} chunks and the {result['queries']} questions of qrels/{result['split']}.tsv, "
        f"encoded with the bundled all-MiniLM-L6-v2 on `{result['device']}` (batch {result['batch_size']}, no cache, "
        f"after a warm-up of {WARMUP} chunks; the precisions take turns batch by batch). Retrieval: exact cosine search over all chunks with the base model's vectors "
        "(no adapter). p: two-sided paired randomization test against float32 over the same questions.",
        "",
        "| precision | device | weights MiB | load s | encode s (chunks + questions) | texts/s | time vs float32 "
        "| cosine to float32, chunks (min / mean) | questions (min / mean) | hit@10 | MRR@10 "
        "| Δ hit@10 (p) | Δ MRR@10 (p) | questions whose top-10 order / top-10 set / top-1 changed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["precisions"]:
        d, q = r["cosine_documents"], r["cosine_queries"]
        delta = {m: f"{round(r['delta'][m], 4) + 0.0:+.4f} (p={r['p_value'][m]:.3g})" for m in METRICS}
        lines.append(
            f"| {r['precision']} | {r['device']} | {r['model_mib']} | {r['load_s']} | {r['encode_s']} ({r['documents_s']} + "
            f"{r['queries_s']}) | {r['texts_per_s']} | {r['slowdown_vs_float32']}x "
            f"| {d['min']:.6f} / {d['mean']:.6f} | {q['min']:.6f} / {q['mean']:.6f} "
            f"| {r['metrics']['hit@10']:.4f} | {r['metrics']['mrr@10']:.4f} | {delta['hit@10']} | {delta['mrr@10']} "
            f"| {r['top10_order_changed']} / {r['top10_set_changed']} / {r['top1_changed']} |"
        )
    cpu = result.get("cpu") or {}
    lines += [
        "",
        f"CPU: {cpu.get('model')}; of {', '.join(CPU_FLAGS)} it has: {', '.join(cpu.get('flags', [])) or 'none'} "
        "(without avx512_bf16/amx_bf16 or avx512_fp16/amx_fp16, a CPU has no half-precision matrix instructions).",
        "",
        "The model computes in the precision given; vectors are returned (and cached) as float32, under a cache "
        "identity of their own. A p of 1 with a non-zero delta means very few questions changed (the test cannot "
        "tell one or two flips from noise). Timings come from a machine shared with other work: read them as rough.",
    ]
    return lines


def main() -> None:
    from qadapter.core.device import PRECISIONS

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=common.DEFAULT_DATA)
    parser.add_argument(
        "--work", type=Path, default=None, help="folder for the workspace copy (default: temporary)"
    )
    parser.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (as --device of the CLI)"
    )
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=PRECISIONS,
        default=list(PRECISIONS),
        help="precisions to measure; float32 is always measured first as the reference",
    )
    parser.add_argument("--split", default="test", help="qrels split whose questions are encoded and scored")
    parser.add_argument(
        "--batch-size", type=int, default=64, help="texts per model batch (the embed stage's 64)"
    )
    parser.add_argument("--out", type=Path, default=common.RESULTS)
    parser.add_argument("--name", default="precision", help="results file name (without extension)")
    args = parser.parse_args()

    machine = common.machine_note()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        measured = measure(args, work)
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {
        "benchmark": "reduced precision for encoding: time, cosine to float32, retrieval against float32",
        "command": common.command_line("bench_precision.py"),
        "machine": machine,
        "split": args.split,
        "device": measured["precisions"][0]["device"],
        "cpu": cpu_features(),
        "batch_size": args.batch_size,
        **measured,
    }
    common.write_results(args.out, args.name, result, markdown(result))


if __name__ == "__main__":
    main()
