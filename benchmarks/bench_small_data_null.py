"""What the lower bar for agreeing labels costs where nothing can be learned (issue 11).

Cross-fitting lowers the favoured candidates' bar when the training labels agree with the base model
(``SelectionRules.agreeing_min_z``). This is the case that bar can get wrong: the labels are real, but no map
generalises. Synthetic, per seed: ``--docs`` random unit documents in ``--dim`` dimensions; a query is its document
plus isotropic Gaussian noise (``--noise`` per coordinate), so the base model already ranks most labels first and
there is nothing systematic for a map to learn. One query for each of ``--train`` documents trains the default
selection (:func:`qadapter.train.select`); fresh queries then measure the shipped map: 3 for each trained document
("seen") and one for each other document ("new"). Reported: how many seeds shipped a map, the label agreement z and
the favoured rows' bar, and MRR@10 changes of the shipped maps on the fresh queries. Then ``--random-seeds`` sets
with random labels: the label check must keep the strict bars there.

Run from the repository root::

    python benchmarks/bench_small_data_null.py [--seeds 30] [--noise 0.25]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from bench_quality import RESULTS, command_line, machine_line, machine_note, write_results


def one_seed(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from qadapter.core.vectors import normalize
    from qadapter.train import select
    from qadapter.train.selection import SelectionRules
    from qadapter.train.validation import per_query

    rng = np.random.default_rng(500 + seed)
    docs = normalize(rng.normal(size=(args.docs, args.dim)))

    def queries_of(rows: np.ndarray) -> np.ndarray:
        return normalize(docs[rows] + args.noise * rng.normal(size=(len(rows), args.dim))).astype(np.float32)

    trained = rng.choice(args.docs, args.train, replace=False)
    result = select(
        queries_of(trained), docs, [{int(x): 1} for x in trained], rules=SelectionRules(seed=seed)
    )
    row: dict[str, Any] = {
        "seed": seed,
        "chosen": result.chosen,
        "agreement_z": result.validation.get("label_agreement_z"),
        "favoured_bar": result.validation.get("min_z"),
    }
    fresh = {"seen": np.repeat(trained, 3), "new": np.setdiff1d(np.arange(args.docs), trained)}
    for part, rows in fresh.items():
        Q, rels = queries_of(rows), [{int(x): 1} for x in rows]
        base = per_query(Q, docs, rels, ["mrr@10"])["mrr@10"]
        mapped = per_query(result.adapter.transform(Q), docs, rels, ["mrr@10"])["mrr@10"]
        row[f"base {part}"] = round(float(base.mean()), 4)
        row[f"gain {part}"] = round(float((mapped - base).mean()), 4)
    return row


def random_labels(seed: int) -> dict[str, Any]:
    """Random queries, documents and labels (``tests/test_crossfit.py``'s pure-noise set: 100 queries, 100
    documents, 32 dimensions): the label check must keep the strict bars."""
    from qadapter.core.vectors import normalize
    from qadapter.train import select
    from qadapter.train.selection import SelectionRules

    rng = np.random.default_rng(200 + seed)
    docs = normalize(rng.normal(size=(100, 32)))
    queries = normalize(rng.normal(size=(100, 32)))
    rels = [{int(rng.integers(100)): 1} for _ in range(100)]
    result = select(queries, docs, rels, rules=SelectionRules(seed=seed))
    return {
        "seed": seed,
        "chosen": result.chosen,
        "agreement_z": result.validation.get("label_agreement_z"),
        "favoured_bar": result.validation.get("min_z"),
    }


def markdown(result: dict[str, Any]) -> list[str]:
    rows, s = result["seeds"], result["summary"]
    lines = [
        "# Real labels, nothing to learn: what the agreeing-labels bar costs (synthetic)",
        "",
        f"Command: `{result['command']}`. Machine: {machine_line(result['machine'])}",
        "",
        f"{result['settings']['docs']} random documents in {result['settings']['dim']} dimensions; queries = their "
        f"document + Gaussian noise {result['settings']['noise']} per coordinate; {result['settings']['train']} "
        "training queries (one per document); fresh test queries: 3 per trained document (seen), 1 per other "
        "document (new). Gains are MRR@10 changes of the shipped map on the fresh queries (0 where the identity "
        "ships).",
        "",
        f"- seeds that shipped a map: **{s['shipped']} of {s['seeds']}**; label agreement z "
        f"{s['agreement_min']:.1f} to {s['agreement_max']:.1f} ({s['agreeing']} of {s['seeds']} at or above the "
        f"gate of {result['gate']:g}, where the lower bar applies)",
        f"- where a map shipped, mean MRR@10 change: seen {s['shipped_gain_seen']:+.4f}, new "
        f"{s['shipped_gain_new']:+.4f}; worst seen {s['worst_seen']:+.4f}, worst new {s['worst_new']:+.4f} "
        f"(base MRR@10 about {s['base_seen']:.2f})",
        f"- over all seeds (identity = 0): seen {s['mean_gain_seen']:+.4f}, new {s['mean_gain_new']:+.4f}",
        "",
        "| seed | chosen | agreement z | favoured bar | gain seen | gain new |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['chosen']} | {r['agreement_z']} | {r['favoured_bar']} | {r['gain seen']:+.4f} | "
            f"{r['gain new']:+.4f} |"
        )
    noise = result["random_labels"]
    if noise:
        agreement = [r["agreement_z"] for r in noise]
        shipped = [f"seed {r['seed']}: {r['chosen']}" for r in noise if r["chosen"] != "identity"]
        lines += [
            "",
            f"## Random labels ({len(noise)} seeds of the unit tests' pure-noise set)",
            "",
            f"- label agreement z {min(agreement):.1f} to {max(agreement):.1f} (mean {np.mean(agreement):+.2f}); "
            f"above the gate of {result['gate']:g}: {sum(a >= result['gate'] for a in agreement)}",
            f"- seeds that shipped a map (strict bars: one z = 2 test's rate, 2.3%): {len(shipped)}"
            + (f" ({'; '.join(shipped)})" if shipped else ""),
        ]
    return lines


def main() -> None:
    import torch

    from qadapter.train.selection import SelectionRules

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--train", type=int, default=120)
    parser.add_argument("--noise", type=float, default=0.25)
    parser.add_argument("--random-seeds", type=int, default=100, help="seeds of the random-label check")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    machine = machine_note()
    rows = []
    for seed in range(args.seeds):
        rows.append(one_seed(seed, args))
        print(rows[-1], flush=True)
    noise = [random_labels(seed) for seed in range(args.random_seeds)]
    shipped = [r for r in rows if r["chosen"] != "identity"]
    agreement = [r["agreement_z"] for r in rows]
    summary = {
        "seeds": len(rows),
        "shipped": len(shipped),
        "agreement_min": min(agreement),
        "agreement_max": max(agreement),
        "agreeing": sum(a >= SelectionRules().agreement_z for a in agreement),
        "shipped_gain_seen": round(float(np.mean([r["gain seen"] for r in shipped])), 4) if shipped else 0.0,
        "shipped_gain_new": round(float(np.mean([r["gain new"] for r in shipped])), 4) if shipped else 0.0,
        "worst_seen": min((r["gain seen"] for r in rows), default=0.0),
        "worst_new": min((r["gain new"] for r in rows), default=0.0),
        "mean_gain_seen": round(float(np.mean([r["gain seen"] for r in rows])), 4),
        "mean_gain_new": round(float(np.mean([r["gain new"] for r in rows])), 4),
        "base_seen": float(np.mean([r["base seen"] for r in rows])),
    }
    machine["load_average_end"] = machine_note()["load_average_start"]
    result = {
        "command": command_line("bench_small_data_null.py"),
        "machine": machine,
        "settings": {k: getattr(args, k) for k in ("docs", "dim", "train", "noise")},
        "seeds": rows,
        "summary": summary,
        "random_labels": noise,
        "gate": SelectionRules().agreement_z,
    }
    write_results(args.out, "small_data_null", result, markdown(result))


if __name__ == "__main__":
    main()
