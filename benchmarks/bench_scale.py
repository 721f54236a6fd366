"""Scale: time and peak memory per stage on planted synthetic workspaces of 10k, 100k and 1M documents.

A planted workspace is built as arrays (no model runs): ``n`` documents, 384-d Gaussian, normalised; one training
query per document, ``q = normalize(P d + noise)`` with a fixed random invertible map ``P`` (so the base model's
cosine ranks only partly right and an adapter that learns ``P``'s inverse recovers the rest); test queries made the
same way for random documents. Each stage runs in a fresh subprocess that rebuilds the arrays (not timed), so its
peak RSS is its own (it includes the arrays themselves, reported as ``data_rss``):

- ``cache_write`` / ``cache_read``: documents and test queries into/out of the SQLite embedding cache;
- ``train_default``: what ``qadapter train`` does once vectors are cached: :func:`qadapter.train.selection.select`
  with the default candidates (validation split, every candidate's full schedule, refit of the winner), the learning
  curve and the score scale;
- ``single_fit``: one :func:`qadapter.train.trainer.fit` with the default (contrastive) config;
- ``evaluate``: exact blockwise search of the test queries (base and adapted) + hit@10 and MRR@10.

Run from the repository root::

    python benchmarks/bench_scale.py --sizes 10000 100000 [--test-queries 2000] [--stages ...]
    python benchmarks/bench_scale.py --sizes 1000000 --test-queries 10000 --merge

Writes ``benchmarks/results/scale.json`` and ``scale.md`` (``--merge`` keeps the rows of other sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_quality import RESULTS, command_line, machine_line, machine_note, write_results  # noqa: E402

DIM = 384
STAGES = ("cache_write", "cache_read", "train_default", "single_fit", "evaluate")
#: planted rotation angle (degrees), query noise (norm relative to a unit document), documents per cluster and
#: their spread around its centre (per coordinate, relative to the centre's)
THETA = 80.0
NOISE = 0.3
CLUSTER = 20
SPREAD = 0.6


def planted_map(rng: np.random.Generator, theta: float) -> np.ndarray:
    """An exact rotation ``cos(theta) I + sin(theta) J`` with ``J`` a random orthogonal skew-symmetric matrix (so
    ``d . P d = cos(theta)`` for every document, and the inverse, ``P^T``, does not amplify noise)."""
    basis, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    block = np.kron(np.eye(DIM // 2), np.array([[0.0, -1.0], [1.0, 0.0]]))
    J = basis @ block @ basis.T
    return (np.cos(theta) * np.eye(DIM) + np.sin(theta) * J).astype(np.float32)


def planted(n: int, n_test: int, seed: int = 0) -> dict[str, Any]:
    """Documents (in clusters of CLUSTER, so that near neighbours compete), training queries (one per document),
    test queries and their documents, and the planted map."""
    from qadapter.core.vectors import normalize

    rng = np.random.default_rng(seed)
    P = planted_map(rng, np.deg2rad(THETA))
    centres = rng.normal(size=(-(-n // CLUSTER), DIM)).astype(np.float32)
    D = np.empty((n, DIM), dtype=np.float32)
    Q = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 65_536):
        rows = np.arange(start, min(start + 65_536, n))
        spread = rng.normal(size=(len(rows), DIM)).astype(np.float32) * SPREAD
        D[rows] = normalize(centres[rows // CLUSTER] + spread)
        Q[rows] = _query(D[rows], P, rng)
    test_docs = rng.choice(n, size=n_test, replace=False)
    T = _query(D[test_docs], P, rng)
    return {"D": D, "Q": Q, "T": T, "test_docs": test_docs, "P": P}


def _query(docs: np.ndarray, P: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from qadapter.core.vectors import normalize

    noise = rng.normal(size=docs.shape).astype(np.float32) * NOISE / np.sqrt(DIM)
    return normalize(docs @ P.T + noise)


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def hits(ranked: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    match = ranked[:, :10] == truth[:, None]
    first = np.argmax(match, axis=1)
    return {
        "hit@10": float(match.any(1).mean()),
        "mrr@10": float(np.where(match.any(1), 1.0 / (first + 1), 0.0).mean()),
    }


def stage_cache(data: dict[str, Any], work: Path, read: bool) -> dict[str, Any]:
    from qadapter.encoders import EmbeddingCache

    path = work / "embeddings"
    texts = [f"document {i}" for i in range(len(data["D"]))]
    if not read:
        shutil.rmtree(path, ignore_errors=True)
        with EmbeddingCache(path) as cache:
            for start in range(0, len(texts), 50_000):
                cache.put_many(
                    "planted", "document", texts[start : start + 50_000], data["D"][start : start + 50_000]
                )
        return {"cache_mib": round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)}
    with EmbeddingCache(path) as cache:
        got = 0
        for start in range(0, len(texts), 50_000):
            got += len(cache.get_many("planted", "document", texts[start : start + 50_000]))
    return {"vectors_read": got}


def _adapted_quality(adapter: Any, data: dict[str, Any]) -> dict[str, float]:
    """hit@10 and MRR@10 of the adapted test queries (exact search; its seconds are reported apart, since the stage's
    seconds include them)."""
    from qadapter.core.vectors import search

    start = time.perf_counter()
    idx, _ = search(adapter.transform(data["T"]), data["D"], k=10)
    return {**hits(idx, data["test_docs"]), "adapted_search_s": round(time.perf_counter() - start, 1)}


def stage_train_default(data: dict[str, Any]) -> dict[str, Any]:
    """What ``qadapter train`` does once the vectors are cached: the default search (validation split, candidates
    trained together, judged, the winner refitted), the learning curve and the score scale."""
    from qadapter.core.score_scale import score_mapping_for
    from qadapter.train.curve import learning_curve
    from qadapter.train.selection import SelectionRules, default_candidates, select

    rels = [{i: 1} for i in range(len(data["Q"]))]
    steps: dict[str, float] = {}
    start = time.perf_counter()
    candidates = default_candidates()
    result = select(data["Q"], data["D"], rels, candidates=candidates)
    steps["select_s"] = round(time.perf_counter() - start, 1)
    pick = next((c for c in candidates if c.name == result.chosen and c.method != "identity"), candidates[1])
    start = time.perf_counter()
    curve = learning_curve(pick, data["Q"], data["D"], rels, SelectionRules())
    steps["learning_curve_s"] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    rows = np.random.default_rng(0).choice(len(data["Q"]), size=min(2000, len(data["Q"])), replace=False)
    score_mapping_for(data["Q"][rows], result.adapter.transform(data["Q"][rows]), data["D"])
    steps["score_scale_s"] = round(time.perf_counter() - start, 1)
    return {
        "chosen": result.chosen,
        "validation": result.validation,
        "curve_points": len(curve),
        **steps,
        **_adapted_quality(result.adapter, data),
    }


def stage_single_fit(data: dict[str, Any]) -> dict[str, Any]:
    from qadapter.train.config import TrainConfig
    from qadapter.train.trainer import fit

    pairs = np.stack([np.arange(len(data["Q"])), np.arange(len(data["Q"]))], axis=1)
    result = fit(data["Q"], data["D"], pairs, TrainConfig())
    out = {"pairs": result.n_pairs, "pairs_per_epoch": result.pairs_per_epoch, "epochs": result.best_epoch}
    return {**out, **_adapted_quality(result.adapter, data)}


def stage_evaluate(data: dict[str, Any]) -> dict[str, Any]:
    from qadapter.core.vectors import search

    base, _ = search(data["T"], data["D"], k=10)
    ceiling, _ = search(data["T"] @ data["P"], data["D"], k=10)
    return {"base": hits(base, data["test_docs"]), "planted_ceiling": hits(ceiling, data["test_docs"])}


def ann_recall(data: dict[str, Any]) -> dict[str, Any]:
    """Recall@10 of the approximate index against exact search, on a sample of test queries as the base model sees
    them (rotated 80 degrees away from their documents: their exact neighbours are scattered) and as a good adapter
    sees them (the planted inverse applied: near their documents), at the two probe counts qadapter uses."""
    from qadapter.core.ann import MINE_NPROBE, NPROBE, AnnIndex, recall_at_k

    start = time.perf_counter()
    index = AnnIndex(data["D"])
    built = time.perf_counter() - start
    sample = data["T"][:500]
    out: dict[str, Any] = {"nlist": index.nlist, "build_s": round(built, 1)}
    for label, queries in (("base_queries", sample), ("adapted_queries", sample @ data["P"])):
        for nprobe in (MINE_NPROBE, NPROBE):
            index.nprobe = nprobe
            out[f"recall@10_{label}_nprobe{nprobe}"] = round(recall_at_k(index, queries, data["D"]), 4)
    return out


def run_stage(stage: str, n: int, n_test: int, work: Path) -> dict[str, Any]:
    data = planted(n, n_test)
    data_rss = _rss_gib()
    start = time.perf_counter()
    if stage in ("cache_write", "cache_read"):
        extra = stage_cache(data, work, stage == "cache_read")
    else:
        extra = {
            "train_default": stage_train_default,
            "single_fit": stage_single_fit,
            "evaluate": stage_evaluate,
            "ann_recall": ann_recall,
        }[stage](data)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        "peak_rss_gib": round(_rss_gib(), 2),
        "data_rss_gib": round(data_rss, 2),
        **extra,
    }


def child(args: argparse.Namespace) -> None:
    result = run_stage(args.child, args.sizes[0], args.test_queries, Path(args.work))
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--test-queries", type=int, default=2_000)
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=[*STAGES, "ann_recall"])
    parser.add_argument(
        "--merge", action="store_true", help="keep the results of sizes and stages not run now"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    machine = machine_note()
    previous = (
        json.loads((args.out / "scale.json").read_text())
        if args.merge and (args.out / "scale.json").is_file()
        else {}
    )
    rows: dict[str, Any] = previous.get("sizes", {})
    commands = previous.get("commands", [])
    commands.append(command_line("bench_scale.py"))
    for n in args.sizes:
        n_test = min(args.test_queries, n // 2)
        if rows.get(str(n), {}).get("test_queries") != n_test:
            rows[str(n)] = {
                "test_queries": n_test,
                "stages": {},
            }  # (--merge keeps other stages of the same setup)
        with tempfile.TemporaryDirectory(dir=args.work) as work:
            for stage in args.stages:
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    stage,
                    "--sizes",
                    str(n),
                    "--test-queries",
                    str(n_test),
                    "--work",
                    work,
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
                line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
                if line is None:
                    raise SystemExit(f"stage {stage} at {n} failed:\n{proc.stderr[-3000:]}")
                rows[str(n)]["stages"][stage] = json.loads(line[7:])
                print(n, stage, rows[str(n)]["stages"][stage], flush=True)
    planted_params = {"dim": DIM, "theta_deg": THETA, "noise": NOISE, "cluster": CLUSTER, "spread": SPREAD}
    result = {"machine": machine, "commands": commands, "planted": planted_params, "sizes": rows}
    write_results(args.out, "scale", result, markdown(result))


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "# Scale: planted synthetic workspaces, time and peak memory per stage",
        "",
        "Commands (from the repository root): " + "; ".join(f"`{c}`" for c in result["commands"]),
        "",
        machine_line(result["machine"]),
        "",
        f"Planted data ({json.dumps(result['planted'])}): normalised documents in clusters, one training query per "
        "document (`normalize(P d + noise)`, P a rotation by theta in random planes), test queries made the same "
        "way for random documents (the test split; planted ceiling = exact search with the true inverse map); "
        "arrays built directly (no model). Each stage runs in a "
        "fresh process: seconds exclude building the arrays; peak RSS includes them (data RSS in brackets). "
        "`train_default` and `single_fit` seconds include the exact search that scores the adapted test queries "
        "(`adapted_search_s`, an evaluation of its own); `train_default` is what `qadapter train` does after embedding: "
        "the default search (`select_s`), the learning curve and the score scale.",
        "",
        "| documents | test queries | stage | seconds | peak RSS GiB (data) | notes |",
        "|---:|---:|---|---:|---:|---|",
    ]
    for n, row in result["sizes"].items():
        for stage, s in row["stages"].items():
            notes = {k: v for k, v in s.items() if k not in ("seconds", "peak_rss_gib", "data_rss_gib")}
            lines.append(
                f"| {int(n):,} | {row['test_queries']:,} | {stage} | {s['seconds']} | {s['peak_rss_gib']} "
                f"({s['data_rss_gib']}) | {json.dumps(notes)} |"
            )
    lines += ["", "Targets on this machine: 1M documents train + evaluate < 20 min and < 8 GB; 100k < 3 min."]
    return lines


if __name__ == "__main__":
    main()
