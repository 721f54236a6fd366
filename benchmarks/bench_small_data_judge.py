"""How cross-fitting should judge 120 training questions (issue 11), on development splits only.

With one question for each of 120 chunks, every cross-fitted judgement is about a chunk its fit never saw, and the
real gains of a shrunk map there are small (+0.01 to +0.03 MRR@10): MRR@10's own z rarely clears the family-wise
bar. This study asks which per-query score and which set of table rows give a selection the power to ship such a
map while still shipping nothing on pure-noise labels. Everything is carved from AppleQA's *training* questions
(``bench_small_data.py --dev``: 120 chunks get one of their questions 1-12, questions 13-16 of every chunk are the
development test; draw seeds offset by 100); ``qrels/test.tsv`` is never read.

Per draw, every row of the default search (all candidates, linear maps also shrunk by 0.25 and 0.5) is cross-fitted
as :mod:`qadapter.train.crossfit` does (4 folds, the same fits and epochs), and each held-out question gets several
per-query scores of its mapped vector:

- ``mrr@10``: the metric; ``rr``: reciprocal rank without a cutoff;
- ``log-rank``: ``-log(rank)`` of the relevant chunk among all chunks (:func:`qadapter.train.validation.log_ranks`);
- ``likelihood``: the log softmax probability of the relevant chunk at temperature 0.05.

A rule = a score and a set of rows: a row qualifies when that score's z clears the max-T bar of
:func:`qadapter.train.crossfit.family_z` over the set (min z 2) and its MRR@10 gain is positive with no harm
(z >= -1); the qualifying row with the largest MRR@10 gain ships. Split bars
(:func:`qadapter.train.crossfit.family_bars`): the trained linear rows share 80% or 90% of one test's false-ship
rate, the MLP and ridge the rest. The shipped rule adds the label check: where the labels agree with the base model
(:func:`qadapter.train.crossfit.label_agreement`), the trained linear rows' bar is the max-T bar of one test at
``SelectionRules.agreeing_min_z``. Per rule: how many draws ship, the mean MRR@10 and hit@10 gain on the development
test (0 where the identity ships), and how many ``--noise`` draws (the same questions with every label replaced by a
random chunk) ship anything; per row, its development gains on chunks with and without a training question.

Run from the repository root::

    python benchmarks/bench_small_data_judge.py [--draws 30] [--noise 20] [--work .work/small]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
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
from bench_small_data import draw_split

SCORES = ("mrr@10", "rr", "log-rank", "likelihood")
TEMPERATURE = 0.05
LINEAR = [
    "linear-reg1",
    "linear-reg1@0.25",
    "linear-reg1@0.5",
    "linear-reg3",
    "linear-reg3@0.25",
    "linear-reg3@0.5",
]
#: shares of the false-ship rate given to the trained linear rows (the shipped rule: 0.9, SelectionRules)
SHARES = (0.8, 0.9)
ROW_SETS = {
    "all rows (before)": [*LINEAR, "mlp-512", "ridge", "ridge@0.25", "ridge@0.5"],
    "no shrunk ridge": [*LINEAR, "mlp-512", "ridge"],
    "no MLP, no shrunk ridge": [*LINEAR, "ridge"],  # the shipped rows (the shipped bars: split, SHARES)
    "trained linear only": LINEAR,
}


def per_query_scores(Qm: np.ndarray, D: np.ndarray, rels: list[dict[int, int]]) -> dict[str, np.ndarray]:
    """Every score of the study per query; the ranks are the shipped rule's (:func:`log_ranks`)."""
    from qadapter.core.vectors import normalize
    from qadapter.train.validation import log_ranks

    log_rank = log_ranks(Qm, D, rels)
    rank = np.rint(np.exp(-log_rank))
    logits = normalize(Qm) @ normalize(D).T / TEMPERATURE
    top = logits.max(1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(1)) + top[:, 0]
    rel_mass = np.array(
        [np.log(np.exp(logits[i, list(r)] - top[i]).sum()) + top[i, 0] for i, r in enumerate(rels)]
    )
    return {
        "mrr@10": np.where(rank <= 10, 1.0 / rank, 0.0),
        "hit@10": (rank <= 10).astype(float),
        "rr": 1.0 / rank,
        "log-rank": log_rank,
        "likelihood": rel_mass - lse,
    }


def cross_fitted(ws: Any, split: str, noise_seed: int | None) -> dict[str, Any]:
    """Out-of-fold scores of every default row on ``split`` (labels randomised with ``noise_seed``), with the base
    model's scores, the training data, its pseudo-queries and the candidates."""
    from qadapter.encoders import get_encoder
    from qadapter.train import stage
    from qadapter.train.candidates import _fit_candidates, default_candidates, training_set
    from qadapter.train.crossfit import label_agreement, make_folds, small_schedule
    from qadapter.train.judging import SelectionRules
    from qadapter.train.options import TrainOptions
    from qadapter.train.recipes import recipe_config

    encoder = get_encoder()
    data = stage.training_data.load_training_data(ws, [split], encoder, False)
    extras = stage.prepare_extras(ws, data, TrainOptions.create(split=split), encoder, False)
    rels = data.rels
    if noise_seed is not None:
        rels, extras = noise_labels(len(rels), len(data.doc_ids), noise_seed), None
    # every default candidate but the unregularised linear map, with cross-fitting's epochs and ridge lam: the shipped
    # small space and the MLP, which left it (studied here still, in the row sets that name it)
    everything = [c for c in default_candidates(recipe_config("default", seed=0)) if c.name != "linear"]
    candidates = small_schedule(everything, SelectionRules())
    folds = make_folds(rels, 4, 0)
    moved: dict[str, np.ndarray] = {}
    for f in range(folds.k):
        held = np.flatnonzero(folds.fold == f)
        Q_fit, pairs = training_set(data.Q, np.flatnonzero(folds.fold != f).tolist(), rels, extras)
        fitted = _fit_candidates(candidates, Q_fit, data.D, pairs, None, None, False)
        for name, adapter in rows_of(candidates, fitted).items():
            moved.setdefault(name, np.zeros_like(data.Q))[held] = adapter.transform(data.Q[held])
    base = per_query_scores(data.Q, data.D, rels)
    return {
        "oof": {name: per_query_scores(Qm, data.D, rels) for name, Qm in moved.items()},
        "base": base,
        "agreement": label_agreement(data.Q, data.D, rels, 0)[1],
        "data": data,
        "extras": extras,
        "candidates": candidates,
    }


def rows_of(candidates: list[Any], fitted: dict[str, Any]) -> dict[str, Any]:
    from qadapter.train.crossfit import shrink

    out = {}
    for cand in candidates:
        if cand.method == "identity":
            continue
        adapter = fitted[cand.name][0]
        out[cand.name] = adapter
        if cand.kind == "linear":
            for a in (0.25, 0.5):
                out[f"{cand.name}@{a:g}"] = shrink(adapter, a)
    return out


def dev_gains(
    ws: Any, test: str, data: Any, extras: Any, candidates: list[Any]
) -> dict[str, dict[str, float]]:
    """MRR@10 and hit@10 gains on the development test of every row, refitted on all 120 questions."""
    from qadapter.encoders import get_encoder
    from qadapter.train import stage
    from qadapter.train.candidates import _fit_candidates, training_set

    test_data = stage.training_data.load_training_data(ws, [test], get_encoder(), False)
    Q_all, pairs = training_set(data.Q, range(len(data.rels)), data.rels, extras)
    fitted = _fit_candidates(candidates, Q_all, data.D, pairs, None, None, False)
    base = per_query_scores(test_data.Q, data.D, test_data.rels)
    trained = {d for r in data.rels for d in r}
    seen = np.array([bool(set(r) & trained) for r in test_data.rels])
    out = {}
    for name, adapter in rows_of(candidates, fitted).items():
        s = per_query_scores(adapter.transform(test_data.Q), data.D, test_data.rels)
        out[name] = {m: round(float((s[m] - base[m]).mean()), 4) for m in ("mrr@10", "hit@10")}
        out[name]["mrr@10 seen"] = round(float((s["mrr@10"] - base["mrr@10"])[seen].mean()), 4)
        out[name]["mrr@10 new"] = round(float((s["mrr@10"] - base["mrr@10"])[~seen].mean()), 4)
    return out


def decide(base: dict[str, np.ndarray], oof: dict[str, Any], rows: list[str], score: str) -> str | None:
    """One max-T bar over ``rows`` for ``score``."""
    from qadapter.train.crossfit import family_z

    n = len(base["mrr@10"])
    bar = family_z([oof[r][score] - base[score] for r in rows], {"new": np.arange(n)}, {"new": 1.0}, 2.0, 0)
    return qualifying(base, oof, rows, score, lambda _: bar)


def qualifying(
    base: dict[str, np.ndarray],
    oof: dict[str, Any],
    rows: list[str],
    score: str,
    bar_of: Callable[[str], float],
) -> str | None:
    """The row that ships: ``score``'s z clears the row's bar, MRR@10 gains with no harm (z >= -1); the largest
    MRR@10 gain among those."""
    ok = []
    for r in rows:
        m = oof[r]["mrr@10"] - base["mrr@10"]
        if zscore(oof[r][score] - base[score]) >= bar_of(r) and m.mean() > 0 and zscore(m) >= -1:
            ok.append((float(m.mean()), r))
    return max(ok)[1] if ok else None


def main() -> None:
    import torch

    from qadapter.data.workspace import Workspace
    from qadapter.embedding import embed_workspace
    from qadapter.train.judging import SelectionRules

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path(".work/small"))
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--noise", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    machine = machine_note()
    ws = Workspace(copy_workspace(args.data, "appleqa", args.work))
    embed_workspace(ws, ["train"])
    draws, noise = [], []
    for seed in range(args.draws):
        split, test = draw_split(ws, seed, dev=True)
        fit = cross_fitted(ws, split, None)
        gains = dev_gains(ws, test, fit["data"], fit["extras"], fit["candidates"])
        picks = rule_picks(fit)
        draws.append(
            {"draw": seed, "agreement_z": round(fit["agreement"], 1), "picks": picks, "dev_gains": gains}
        )
        print("draw", seed, {k: v for k, v in picks.items() if k.startswith("log-rank")}, flush=True)
    for seed in range(args.noise):
        split, _ = draw_split(ws, seed, dev=True)
        fit = cross_fitted(ws, split, seed)
        picks = rule_picks(fit)
        noise.append({"seed": seed, "agreement_z": round(fit["agreement"], 1), "picks": picks})
        print("noise", seed, [k for k, v in picks.items() if v], flush=True)
    machine["load_average_end"] = machine_note()["load_average_start"]
    result = {
        "command": command_line("bench_small_data_judge.py"),
        "machine": machine,
        "draws": draws,
        "noise": noise,
        "summary": summary(draws, noise),
        "agreement_gate": SelectionRules().agreement_z,
    }
    write_results(args.out, "small_data_judge", result, markdown(result))


def decide_split(
    base: dict[str, np.ndarray], oof: dict[str, Any], share: float, agreeing: bool = False
) -> str | None:
    """The shipped rule (the small space: trained linear rows and ridge): log-rank z against two bars (:func:`qadapter.train.crossfit.family_bars`), the trained
    linear rows sharing ``share`` of the false-ship rate and the MLP and ridge the rest; with ``agreeing`` labels
    the trained linear rows' bar is that of one test at ``SelectionRules.agreeing_min_z``."""
    from qadapter.train.crossfit import family_bars, split_name
    from qadapter.train.judging import SelectionRules

    rows = ROW_SETS["no MLP, no shrunk ridge"]
    n = len(base["mrr@10"])
    diffs = {r: oof[r]["log-rank"] - base["log-rank"] for r in rows}
    favoured = {"linear-reg1", "linear-reg3"}
    judges = ({"new": np.arange(n)}, {"new": 1.0})
    bars = family_bars(diffs, favoured, judges, SelectionRules(favoured_share=share), agreeing)
    return qualifying(base, oof, rows, "log-rank", lambda r: bars[split_name(r)[0] in favoured])


def zscore(d: np.ndarray) -> float:
    return float(d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))) if d.std() > 0 else 0.0


def rule_picks(fit: dict[str, Any]) -> dict[str, str | None]:
    """What each rule ships on one cross-fitted draw: each score x row set with one bar, then the split bars."""
    from qadapter.train.judging import SelectionRules

    picks = {
        f"{s} | {k}": decide(fit["base"], fit["oof"], rows, s) for s in SCORES for k, rows in ROW_SETS.items()
    }
    rules = SelectionRules()
    for share in SHARES:
        picks[f"log-rank | no MLP, no shrunk ridge, {share:.0%} to trained linear rows"] = decide_split(
            fit["base"], fit["oof"], share
        )
    agreeing = fit["agreement"] >= rules.agreement_z
    picks[
        f"log-rank | split bars, trained linear rows at one test z={rules.agreeing_min_z:g} where the labels agree "
        "with the base model (shipped)"
    ] = decide_split(fit["base"], fit["oof"], rules.favoured_share, agreeing)
    return picks


def noise_labels(n_queries: int, n_docs: int, seed: int) -> list[dict[int, int]]:
    rng = np.random.default_rng(1000 + seed)
    return [{int(rng.integers(n_docs)): 1} for _ in range(n_queries)]


def summary(draws: list[dict[str, Any]], noise: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for rule in draws[0]["picks"]:
        picks = [d["picks"][rule] for d in draws]
        gains = [
            d["dev_gains"][p] if p else {"mrr@10": 0.0, "hit@10": 0.0}
            for d, p in zip(draws, picks, strict=True)
        ]
        out.append(
            {
                "rule": rule,
                "shipped": sum(p is not None for p in picks),
                "draws": len(draws),
                "mrr@10": round(float(np.mean([g["mrr@10"] for g in gains])), 4),
                "hit@10": round(float(np.mean([g["hit@10"] for g in gains])), 4),
                "noise_shipped": sum(n["picks"][rule] is not None for n in noise),
                "noise_draws": len(noise),
            }
        )
    return out


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "# How cross-fitting judges 120 training questions (development splits only)",
        "",
        f"Command: `{result['command']}`. Machine: {machine_line(result['machine'])}",
        "",
        "AppleQA, 120 chunks with one of their training questions 1-12 per draw; development test = questions 13-16 "
        "of every chunk. A rule = the per-query score whose z must clear the family-wise bar, and the rows judged "
        "(see the script's docstring). Gains are mean MRR@10 / hit@10 gains on the development test over the draws "
        "(0 where the identity ships); noise = draws with random labels that shipped a map.",
        "",
        "| score | rows | shipped | dev MRR@10 gain | dev hit@10 gain | noise shipped |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for s in result["summary"]:
        score, rows = s["rule"].split(" | ")
        lines.append(
            f"| {score} | {rows} | {s['shipped']}/{s['draws']} | {s['mrr@10']:+.4f} | {s['hit@10']:+.4f} | "
            f"{s['noise_shipped']}/{s['noise_draws']} |"
        )
    lines += ["", "## Per draw (dev gains of every row, refitted on the 120 questions)", ""]
    names = list(result["draws"][0]["dev_gains"])
    lines += ["| draw | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for d in result["draws"]:
        cells = " | ".join(f"{d['dev_gains'][n]['mrr@10']:+.4f}" for n in names)
        lines.append(f"| {d['draw']} | {cells} |")
    lines += [
        "",
        "## Where the gains are: chunks with and without a training question (mean over draws)",
        "",
        "| row | dev MRR@10 gain, chunks with a training question | without | draws with a gain on the first |",
        "|---|---:|---:|---:|",
    ]
    for n in names:
        seen = [d["dev_gains"][n]["mrr@10 seen"] for d in result["draws"]]
        new = [d["dev_gains"][n]["mrr@10 new"] for d in result["draws"]]
        lines.append(
            f"| {n} | {np.mean(seen):+.4f} | {np.mean(new):+.4f} | {sum(x > 0 for x in seen)}/{len(seen)} |"
        )
    agree = [d["agreement_z"] for d in result["draws"]]
    noise = [d["agreement_z"] for d in result["noise"]] or [0.0]
    lines += [
        "",
        f"Label agreement z (:func:`qadapter.train.crossfit.label_agreement`): {min(agree):.1f} to {max(agree):.1f} "
        f"on the draws, {min(noise):.1f} to {max(noise):.1f} on the random-label draws (gate: "
        f"{result['agreement_gate']:g}).",
    ]
    return lines


if __name__ == "__main__":
    main()
