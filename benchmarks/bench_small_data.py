"""Small training sets (issue 11): 120 AppleQA training questions, one for each of 120 chunks, per draw.

For each draw (seed), 120 chunks are drawn with that seed and one of each chunk's training questions
(``qrels/train.tsv``) is drawn with it; that is the training split (written as ``qrels/small-s<seed>.tsv`` into a
copy of the workspace). Three query maps are scored on ``qrels/test.tsv`` (all 860 test questions):

- ``base``: the base model;
- ``plain``: the issue's plain fit (``bench_small_data_dev.plain_fit``: identity-init linear, softmax over the
  training documents, temperature 0.05, AdamW weight decay 0.01 toward the identity, batch 256, 30 epochs, no
  validation, no pseudo-queries);
- ``default``: what ``qadapter train`` does (``qadapter.train.train`` with its defaults, which for 120 queries
  judges candidates by cross-fitting; the learning curve is skipped, as in bench_quality.py).

Per draw: hit@10 and MRR@10 of each, the default's choice, and two-sided paired randomization tests (10,000 sign
patterns over the 860 test questions, from ``qadapter.evaluate``) of plain vs base and default vs base. Then the mean
gains over the draws and the ratio default / plain against the issue's 80% target. ``--timing`` also times the
default search on each draw with the held-out split forced (the selection before cross-fitting) for a cost ratio.

``--dev`` runs the same protocol on a development split carved from the training questions only (questions 1-12 of
each chunk to draw from, questions 13-16 of every chunk as the test; draw seeds offset by 100), which is what
design choices were made on; the test split is for reporting only.

Run from the repository root::

    python benchmarks/bench_small_data.py [--data ../shared/data] [--work .work/small] [--draws 5] [--dev]
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_quality import (
    DEFAULT_DATA,
    RESULTS,
    command_line,
    copy_workspace,
    machine_line,
    machine_note,
    write_results,
)
from bench_small_data_dev import plain_fit

METRICS = ["hit@10", "mrr@10"]
N_CHUNKS = 120
TARGET = 0.8


def questions_by_chunk(ws: Any, split: str) -> dict[str, list[tuple[int, str]]]:
    """Chunk id -> [(question number, query id)] of ``split`` (AppleQA ids are ``q<chunk>_<number>``)."""
    qrels = ws.qrels(split)
    out: dict[str, list[tuple[int, str]]] = {}
    for qid, docs in qrels.items():
        (doc,) = [d for d, g in docs.items() if g > 0]
        out.setdefault(doc, []).append((int(qid.rsplit("_", 1)[1]), qid))
    return {d: sorted(v) for d, v in sorted(out.items())}


def write_split(ws: Any, name: str, rows: list[tuple[str, str]]) -> None:
    path = ws.path / "qrels" / f"{name}.tsv"
    lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t1" for q, d in rows)]
    path.write_text("\n".join(lines) + "\n")


def draw_split(ws: Any, seed: int, dev: bool) -> tuple[str, str]:
    """Write this draw's training split (and, with ``dev``, the development test split): their names."""
    chunks = questions_by_chunk(ws, "train")
    rng = np.random.default_rng(100 + seed if dev else seed)
    docs = sorted(chunks)
    picked = [docs[i] for i in sorted(rng.choice(len(docs), size=N_CHUNKS, replace=False))]
    rows = []
    for doc in picked:
        options = [q for n, q in chunks[doc] if not dev or n <= 12]
        rows.append((options[int(rng.integers(len(options)))], doc))
    name = f"{'dev-' if dev else ''}small-s{seed}"
    write_split(ws, name, rows)
    if not dev:
        return name, "test"
    write_split(ws, "dev-test", [(q, d) for d, qs in chunks.items() for n, q in qs if n >= 13])
    return name, "dev-test"


def default_fit(ws: Any, split: str, holdout: bool = False) -> Any:
    """``qadapter.train.train`` as the CLI runs it; ``holdout`` forces the held-out split (the earlier selection)."""
    from qadapter.train import stage
    from qadapter.train.selection import SelectionRules

    if not holdout:
        return stage.train(ws, split, learning_curve=False)
    original = stage.SelectionRules
    stage.SelectionRules = functools.partial(SelectionRules, crossfit_below=0)  # type: ignore[misc]
    try:
        return stage.train(ws, split, learning_curve=False)
    finally:
        stage.SelectionRules = original  # type: ignore[misc]


def set_crossfit_epochs(epochs: int | None) -> None:
    """Make ``qadapter.train.train`` cross-fit with ``epochs`` (None: the candidates' own) in this process."""
    from qadapter.train import stage
    from qadapter.train.selection import SelectionRules

    stage.SelectionRules = functools.partial(SelectionRules, crossfit_epochs=epochs)  # type: ignore[misc]


def scores(ws: Any, test: str, adapter: Any) -> dict[str, Any]:
    from qadapter.evaluate import evaluate

    comparison = evaluate(ws, test, adapter=adapter, metrics=METRICS, n_boot=1000)["comparison"]
    return {
        m: {k: round(float(comparison[m][k]), 4) for k in ("baseline", "adapted", "delta", "p_value")}
        for m in METRICS
    }


def run_draw(ws: Any, seed: int, dev: bool, timing: bool) -> dict[str, Any]:
    from qadapter.encoders import get_encoder
    from qadapter.train.data import load_training_data

    split, test = draw_split(ws, seed, dev)
    data = load_training_data(ws, [split], get_encoder(), False)
    start = time.perf_counter()
    plain = plain_fit(data.Q, data.pairs, data.D, seed=seed)
    plain_s = time.perf_counter() - start
    result = default_fit(ws, split)
    row: dict[str, Any] = {
        "draw": seed,
        "train_split": split,
        "test_split": test,
        "n_train": len(data.rels),
        "chosen": result.chosen,
        "reason": result.reason,
        "validation": result.selection.validation if result.selection else {},
        "default_s": round(result.seconds, 2),
        "plain_s": round(plain_s, 2),
        "plain": scores(ws, test, plain),
        "default": scores(ws, test, result.adapter),
        "table": [
            {k: r[k] for k in ("name", "gain", "z_part", "mean_gain", "z")}
            for r in (result.selection.candidates if result.selection else [])
        ],
    }
    if timing:
        row["holdout_s"] = round(default_fit(ws, split, holdout=True).seconds, 2)
    print(
        seed,
        row["chosen"],
        {f"{k} {m}": row[k][m]["delta"] for k in ("plain", "default") for m in METRICS},
        flush=True,
    )
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in METRICS:
        plain = float(np.mean([r["plain"][m]["delta"] for r in rows]))
        default = float(np.mean([r["default"][m]["delta"] for r in rows]))
        ratio = default / plain if plain > 0 else float("nan")
        out[m] = {
            "base": round(float(np.mean([r["plain"][m]["baseline"] for r in rows])), 4),
            "plain_gain": round(plain, 4),
            "default_gain": round(default, 4),
            "ratio": round(ratio, 3),
            "target_met": bool(ratio >= TARGET),
        }
    return out


def timing_lines(result: dict[str, Any]) -> list[str]:
    rows = [r for r in result["rows"] if "holdout_s" in r]
    lines = []
    if rows:
        cross = sum(r["default_s"] for r in rows)
        held = sum(r["holdout_s"] for r in rows)
        lines.append(
            f"- Cost, AppleQA-120: the whole default `train()` took {cross:.1f} s over {len(rows)} draws with "
            f"cross-fitting against {held:.1f} s with the held-out split forced (ratio {cross / held:.2f}, same run)."
        )
    if "query_split" in result:
        q = result["query_split"]
        lines.append(
            f"- AppleQA query split ({q['n_train']} training questions): validation record {q['validation']} "
            f"(the held-out path: it has at least `crossfit_below` = {q['crossfit_below']} queries); `train()` "
            f"{q['seconds']} s in this run."
        )
    return lines


def markdown(result: dict[str, Any]) -> list[str]:
    split = "development split (training questions only)" if result["dev"] else "test split (qrels/test.tsv)"
    lines = [
        f"# Small training sets: AppleQA, {N_CHUNKS} training questions, one per chunk ({split})",
        "",
        f"Command: `{result['command']}`. Machine: {machine_line(result['machine'])}",
        "",
        "Each draw: 120 chunks and one training question of each, drawn with the draw's seed. `plain`: the issue's "
        "plain fit; `default`: `qadapter.train.train` with its defaults. Cells: score (gain over base, two-sided "
        "paired randomization-test p over the test questions).",
        "",
        "| draw | base hit@10 | plain hit@10 | default hit@10 | base MRR@10 | plain MRR@10 | default MRR@10 | chosen |",
        "|---:|---:|---|---|---:|---|---|---|",
    ]
    for r in result["rows"]:
        cells = [r["draw"]]
        for m in METRICS:
            cells.append(f"{r['plain'][m]['baseline']:.3f}")
            for k in ("plain", "default"):
                v = r[k][m]
                cells.append(f"{v['adapted']:.3f} ({v['delta']:+.3f}, p={v['p_value']:.3g})")
        cells.append(r["chosen"])
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "| metric | base (mean) | plain gain | default gain | default / plain | target 80% |"]
    lines.append("|---|---:|---:|---:|---:|---|")
    for m, s in result["summary"].items():
        lines.append(
            f"| {m} | {s['base']:.4f} | {s['plain_gain']:+.4f} | {s['default_gain']:+.4f} | {s['ratio']:.2f} | "
            f"{'met' if s['target_met'] else 'NOT met'} |"
        )
    lines += ["", *timing_lines(result), "", "## Why the default chose what it chose", ""]
    lines += [f"- draw {r['draw']}: {r['reason']}" for r in result["rows"]]
    return lines + ["", *table_lines(result["rows"]), "", *quality_lines(result.get("quality", []))]


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The default's selection table per draw: out-of-fold MRR@10 gains and z on the training queries."""
    lines = [
        "## The default's candidates per draw (cross-fitted on the 120 training questions)",
        "",
        "| draw | candidate | gain new (z) | gain seen (z) | z |",
        "|---:|---|---|---|---:|",
    ]
    for r in rows:
        for t in r["table"]:
            cells = [
                f"{t['gain'][p]:+.4f} ({t['z_part'][p]:+.2f})" if p in t["gain"] else "-"
                for p in ("new-documents", "seen-documents")
            ]
            lines.append(f"| {r['draw']} | {t['name']} | {cells[0]} | {cells[1]} | {t['z']:+.2f} |")
    return lines


def query_split(ws: Any) -> dict[str, Any]:
    from qadapter.train.selection import CROSSFIT_BELOW

    result = default_fit(ws, "train")
    return {
        "n_train": len(ws.qrels("train")),
        "validation": result.selection.validation if result.selection else {},
        "crossfit_below": CROSSFIT_BELOW,
        "chosen": result.chosen,
        "seconds": round(result.seconds, 2),
    }


QUALITY = ("appleqa-query-default", "appleqa-docsplit-default", "cranfield-default")


def quality(data: Path, work: Path) -> list[dict[str, Any]]:
    """bench_quality.py's settings for the issue's other targets, on this code (same helpers, same targets)."""
    from bench_quality import SETTINGS, run_setting

    adapters: dict[str, Any] = {}
    rows = []
    for setting in (s for s in SETTINGS if s.name in QUALITY):
        row = run_setting(setting, data, work, adapters)
        print(row["setting"], row["chosen"], {m: v["adapted"] for m, v in row["metrics"].items()}, flush=True)
        rows.append(row)
    return rows


def quality_lines(rows: list[dict[str, Any]]) -> list[str]:
    from bench_quality import format_metric

    if not rows:
        return []
    lines = [
        "## The other targets on the same code (bench_quality.py settings)",
        "",
        "| setting | train → test | chosen | train s | hit@10 | mrr@10 | targets |",
        "|---|---|---|---:|---|---|---|",
    ]
    for r in rows:
        targets = "; ".join(f"{t['target']}: {'PASS' if t['pass'] else 'FAIL'}" for t in r["targets"])
        lines.append(
            f"| {r['setting']} | {r['train_split']} → {r['test_split']} | {r['chosen']} | {r['train_s']} | "
            f"{format_metric(r['metrics']['hit@10'])} | {format_metric(r['metrics']['mrr@10'])} | {targets} |"
        )
    issue = {
        "appleqa-query-default": "issue 11: hit@10 >= 0.80 and MRR@10 >= 0.48",
        "appleqa-docsplit-default": "issue 11: hit@10 >= base + 0.05",
        "cranfield-default": "issue 11: not below base",
    }
    lines.append("")
    for r in rows:
        m = r["metrics"]
        lines.append(
            f"- {r['setting']} ({issue[r['setting']]}): hit@10 {m['hit@10']['baseline']:.3f} → "
            f"{m['hit@10']['adapted']:.3f}, MRR@10 {m['mrr@10']['baseline']:.3f} → {m['mrr@10']['adapted']:.3f}, "
            f"NDCG@10 {m['ndcg@10']['baseline']:.3f} → {m['ndcg@10']['adapted']:.3f}; {r.get('reason', '')}"
        )
    return lines


def main() -> None:
    import torch

    from qadapter.data.workspace import Workspace
    from qadapter.embedding import embed_workspace

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path(".work/small"))
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument(
        "--dev", action="store_true", help="development split carved from the training questions"
    )
    parser.add_argument("--timing", action="store_true", help="also time the held-out selection on each draw")
    parser.add_argument("--query-split", action="store_true", help="also time the default on the query split")
    parser.add_argument(
        "--quality", action="store_true", help="also run bench_quality.py's issue-11 settings"
    )
    parser.add_argument(
        "--crossfit-epochs",
        type=int,
        default=None,
        help="epochs of cross-fitted fits (0: the candidates' own); results go to a file named after it",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.crossfit_epochs is not None:
        set_crossfit_epochs(args.crossfit_epochs or None)
    torch.set_num_threads(1)
    machine = machine_note()
    ws = Workspace(copy_workspace(args.data, "appleqa", args.work))
    embed_workspace(ws, ["train", "test"])
    rows = [run_draw(ws, seed, args.dev, args.timing) for seed in range(args.draws)]
    result: dict[str, Any] = {"command": command_line("bench_small_data.py"), "dev": args.dev, "rows": rows}
    result["summary"] = summary(rows)
    if args.query_split:
        result["query_split"] = query_split(ws)
    result["quality"] = quality(args.data, args.work) if args.quality else []
    machine["load_average_end"] = machine_note()["load_average_start"]
    result["machine"] = machine
    name = "small_data_dev_select" if args.dev else "small_data"
    if args.crossfit_epochs is not None:
        name += f"_crossfit_epochs_{args.crossfit_epochs or 'own'}"
    write_results(args.out, name, result, markdown(result))
    print(result["summary"])


if __name__ == "__main__":
    main()
