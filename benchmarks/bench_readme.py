"""Every number in the README's "What you get" table, produced by the README's own commands.

Each row runs the ``qadapter`` CLI exactly as a reader would paste it (the commands are written into the results),
on the data in ``../shared/data``:

- AppleQA query split: the data folder's fixed ``qrels/train.tsv`` -> ``qrels/test.tsv`` (questions 17-20 of every
  chunk are test);
- AppleQA document split: the data folder's fixed ``train-docsplit`` -> ``test-docsplit`` (every fifth chunk held out);
- AppleQA random document splits: ``qadapter split --by document --seed S`` for S = 0..4 on the notebook JSON, as the
  README tells users to split; mean and range over the seeds;
- Cranfield: ``train`` (150 human queries) -> ``test`` (75).

Run from the repository root::

    python benchmarks/bench_readme.py [--data ../shared/data] [--work .work/readme] [--seeds 0 1 2 3 4]

Writes ``benchmarks/results/readme.json`` and ``readme.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_quality import DEFAULT_DATA, RESULTS, command_line, machine_line, machine_note, write_results

METRICS = ("hit@10", "mrr@10", "ndcg@10")


def qadapter(*args: str, log: list[str]) -> str:
    """Run one ``qadapter`` command as the README writes it; returns its stdout."""
    log.append("qadapter " + " ".join(shlex.quote(a) for a in args))
    print("$", log[-1], flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "qadapter", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {log[-1]}\n{done.stderr[-3000:]}")
    return done.stdout


def train_and_evaluate(
    ws: Path, train_split: str, test_split: str, out: Path, log: list[str]
) -> dict[str, Any]:
    adapter = out / f"adapter-{train_split}"
    start = time.perf_counter()
    qadapter(
        "train", str(ws), "--split", train_split, "-o", str(adapter), "--overwrite", "--no-progress", log=log
    )
    seconds = time.perf_counter() - start
    result = json.loads(
        qadapter("evaluate", str(ws), "--split", test_split, "--adapter", str(adapter), "--json", log=log)
    )
    config = json.loads((adapter / "adapter_config.json").read_text())
    row: dict[str, Any] = {
        "train_split": train_split,
        "test_split": test_split,
        "n_test_queries": result.get("n_queries"),
        "selected": config["training"]["selected"],
        "train_seconds": round(seconds, 1),
    }
    for m in METRICS:
        c = result["comparison"][m]
        row[m] = {"base": round(c["baseline"], 4), "adapted": round(c["adapted"], 4), "p_value": c["p_value"]}
    return row


def spread(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in METRICS:
        for side in ("base", "adapted"):
            values = [r[m][side] for r in rows]
            out[f"{m}/{side}"] = {
                "mean": round(statistics.fmean(values), 4),
                "min": round(min(values), 4),
                "max": round(max(values), 4),
            }
    return out


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "# README numbers, from the README's commands",
        "",
        f"Command: `{result['command']}`. Machine: {machine_line(result['machine'])}",
        "",
        "| data and split | test queries | hit@10 base → adapted | MRR@10 base → adapted | nDCG@10 base → adapted | kept |",
        "|---|---:|---|---|---|---|",
    ]
    for name, row in result["rows"].items():
        cells = [f"{row[m]['base']:.3f} → {row[m]['adapted']:.3f}" for m in METRICS]
        lines.append(f"| {name} | {row['n_test_queries']} | {' | '.join(cells)} | {row['selected']} |")
    seeds = result.get("random_document_splits")
    if seeds:
        lines += [
            "",
            f"Random document splits (`qadapter split --by document --seed S`, S = {seeds['seeds']}):",
            "",
        ]
        lines.append("| metric | base mean [min, max] | adapted mean [min, max] |")
        lines.append("|---|---|---|")
        for m in METRICS:
            b, a = seeds["spread"][f"{m}/base"], seeds["spread"][f"{m}/adapted"]
            lines.append(
                f"| {m} | {b['mean']:.3f} [{b['min']:.3f}, {b['max']:.3f}] | "
                f"{a['mean']:.3f} [{a['min']:.3f}, {a['max']:.3f}] |"
            )
        lines += ["", "Per seed:", ""]
        for row in seeds["rows"]:
            cells = ", ".join(f"{m} {row[m]['base']:.3f} → {row[m]['adapted']:.3f}" for m in METRICS)
            lines.append(f"- seed {row['seed']}: {cells} (kept {row['selected']})")
    lines += ["", "Commands, in order:", "", "```bash", *result["commands"], "```"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path(".work/readme"))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    log: list[str] = []
    machine = machine_note()
    rows: dict[str, Any] = {}
    beir = args.work / "appleqa"
    if not (beir / "corpus.jsonl").is_file():
        qadapter("import", str(args.data / "appleqa"), "-o", str(beir), log=log)
    rows["AppleQA query split (fixed: qrels/test.tsv)"] = train_and_evaluate(
        beir, "train", "test", args.work, log
    )
    rows["AppleQA document split (fixed: qrels/test-docsplit.tsv)"] = train_and_evaluate(
        beir, "train-docsplit", "test-docsplit", args.work, log
    )
    cranfield = args.work / "cranfield"
    if not (cranfield / "corpus.jsonl").is_file():
        qadapter("import", str(args.data / "cranfield"), "-o", str(cranfield), log=log)
    rows["Cranfield (qrels/test.tsv)"] = train_and_evaluate(cranfield, "train", "test", args.work, log)

    notebook = args.work / "notebook"
    if not (notebook / "corpus.jsonl").is_file():
        qadapter("import", str(args.data / "seed" / "apple_QA_dataset.json"), "-o", str(notebook), log=log)
    seed_rows = []
    for seed in args.seeds:
        names = f"train-doc{seed},test-doc{seed}"
        qadapter(
            "split",
            str(notebook),
            "--by",
            "document",
            "--seed",
            str(seed),
            "--names",
            names,
            "--overwrite",
            log=log,
        )
        row = train_and_evaluate(notebook, f"train-doc{seed}", f"test-doc{seed}", args.work, log)
        seed_rows.append({"seed": seed, **row})
    result = {
        "command": command_line("bench_readme.py"),
        "machine": {**machine, "load_average_end": None},
        "rows": rows,
        "random_document_splits": {"seeds": args.seeds, "rows": seed_rows, "spread": spread(seed_rows)}
        if seed_rows
        else None,
        "commands": log,
    }
    import os

    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    write_results(args.out, "readme", result, markdown(result))


if __name__ == "__main__":
    main()
