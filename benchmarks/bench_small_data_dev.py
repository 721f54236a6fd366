"""Small training sets, on development splits only: what a plain fit and shrunk maps do with ~120 questions.

The question behind issue 11: with one training question for each of 120 chunks, can a selection rule that needs
evidence ship an adapter where a plain fit gains? Everything here is carved from AppleQA's *training* questions
(never ``qrels/test.tsv``): for each draw, 120 chunks get one of their questions 1-12 as training data, and
questions 13-16 of every chunk are the development test ("seen" = chunks that had a training question).

For each candidate map (and shrunk versions ``I + a (W - I)``, a = 0.25, 0.5, 1) it reports:

- ``dev_gain`` / ``dev_seen`` / ``dev_new``: MRR@10 gain over the base model on the development test, overall and
  for chunks with / without a training question;
- ``cv_gain`` and ``z``: the evidence a cross-fitted selection would see (5 folds by chunk, each map fitted on 4 and
  judged on the held-out fifth: every judged question is about a chunk its map never saw);
- ``pq_gain``/``pq_z``: the gain on offline pseudo-queries of the training chunks (a candidate proxy for the seen part);
- ``noise``: a plain fit on shuffled (query, chunk) pairs, which must never look good.

Run from the repository root (needs the `all` extra; embeds AppleQA once into ``--work``)::

    python benchmarks/bench_small_data_dev.py [--data ../shared/data] [--work .work/small] [--draws 3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_quality import (
    DEFAULT_DATA,
    RESULTS,
    command_line,
    copy_workspace,
    machine_line,
    machine_note,
    write_results,
)

METRIC = "mrr@10"
ALPHAS = (0.25, 0.5, 1.0)


def plain_fit(Q: np.ndarray, pairs: list[tuple[int, int]], D: np.ndarray, seed: int = 0) -> Any:
    """The issue's plain fit: identity-init linear map (W = I + delta), softmax over the training documents,
    temperature 0.05, AdamW weight decay 0.01 on delta (toward the identity), batch 256, 30 epochs, lr 2e-3."""
    from qadapter.adapters import Adapter

    generator = torch.Generator().manual_seed(seed)
    docs = sorted({d for _, d in pairs})
    column = {d: i for i, d in enumerate(docs)}
    C = torch.nn.functional.normalize(torch.from_numpy(D[docs]), dim=1)
    X = torch.from_numpy(Q)
    dim = Q.shape[1]
    delta = torch.nn.Parameter(torch.zeros(dim, dim))
    bias = torch.nn.Parameter(torch.zeros(dim))
    optimizer = torch.optim.AdamW([delta, bias], lr=2e-3, weight_decay=0.01)
    rows = torch.tensor([q for q, _ in pairs])
    targets = torch.tensor([column[d] for _, d in pairs])
    for _ in range(30):
        order = torch.randperm(len(pairs), generator=generator)
        for start in range(0, len(pairs), 256):
            batch = order[start : start + 256]
            x = X[rows[batch]]
            y = torch.nn.functional.normalize(x + x @ delta.T + bias, dim=1)
            loss = torch.nn.functional.cross_entropy(y @ C.T / 0.05, targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    weight = (torch.eye(dim) + delta).detach().numpy()
    return Adapter("linear", dim, {"weight": weight, "bias": bias.detach().numpy()})


def shrink(adapter: Any, alpha: float) -> Any:
    from qadapter.adapters import Adapter

    eye = np.eye(adapter.dim, dtype=np.float32)
    weight = eye + alpha * (adapter.tensors["weight"] - eye)
    return Adapter("linear", adapter.dim, {"weight": weight, "bias": alpha * adapter.tensors["bias"]})


def candidates(D: np.ndarray) -> dict[str, Any]:
    from qadapter.train.config import TrainConfig
    from qadapter.train.trainer import fit

    base = TrainConfig()
    return {
        "plain": lambda Q, p: plain_fit(Q, p, D),
        "noise": lambda Q, p: plain_fit(
            Q, [(i, int(np.random.default_rng(i).integers(len(D)))) for i, _ in p], D
        ),
        "default-linear": lambda Q, p: fit(Q, D, p, base.replace(kind="linear")).adapter,
        "linear-reg1": lambda Q, p: fit(Q, D, p, base.replace(kind="linear", identity_reg=1.0)).adapter,
    }


def evaluate_draw(draw: int, data: dict[str, Any]) -> dict[str, Any]:
    from qadapter.adapters import Adapter
    from qadapter.train.validation import per_query

    D, by_chunk, Q_of, rel_of = data["D"], data["by_chunk"], data["Q_of"], data["rel_of"]
    identity = Adapter.identity(D.shape[1])

    def score(adapter: Any, Q: np.ndarray, rels: list[dict[int, int]]) -> np.ndarray:
        return per_query(adapter.transform(Q), D, rels, [METRIC])[METRIC]

    rng = np.random.default_rng(100 + draw)
    chunks = sorted(rng.choice(sorted(by_chunk), size=120, replace=False))
    train_q = []
    for c in chunks:
        options = [q for n, q in by_chunk[c] if n <= 12]
        train_q.append(options[rng.integers(len(options))])
    dev_q = [q for c in by_chunk for n, q in by_chunk[c] if n >= 13]
    Qtr, rtr = Q_of(train_q), [rel_of(q) for q in train_q]
    Qdev, rdev = Q_of(dev_q), [rel_of(q) for q in dev_q]
    pairs = [(i, d) for i, r in enumerate(rtr) for d in r]
    seen = np.array([int(q[1:].split("_")[0]) in set(chunks) for q in dev_q])
    base_dev, base_tr = score(identity, Qdev, rdev), score(identity, Qtr, rtr)
    keep_pq = np.isin(data["PQ_owner"], [d for r in rtr for d in r])
    PQ, p_rels = data["PQ"][keep_pq], [{int(o): 1} for o in data["PQ_owner"][keep_pq]]
    base_pq = score(identity, PQ, p_rels)
    folds = np.array_split(rng.permutation(len(train_q)), 5)
    row: dict[str, Any] = {"draw": draw, "base_dev": round(float(base_dev.mean()), 4)}
    for name, make in candidates(D).items():
        oof = {a: np.zeros(len(train_q)) for a in ALPHAS}
        for held in folds:
            keep = np.setdiff1d(np.arange(len(train_q)), held)
            fitted = make(Qtr[keep], [(i, d) for i, q in enumerate(keep) for d in rtr[q]])
            for a in ALPHAS:
                oof[a][held] = score(shrink(fitted, a), Qtr[held], [rtr[q] for q in held])
        full = make(Qtr, pairs)
        for a in ALPHAS:
            diff = oof[a] - base_tr
            dev = score(shrink(full, a), Qdev, rdev) - base_dev
            pq = score(shrink(full, a), PQ, p_rels) - base_pq
            row[f"{name}@{a}"] = {
                "dev_gain": round(float(dev.mean()), 4),
                "dev_seen": round(float(dev[seen].mean()), 4),
                "dev_new": round(float(dev[~seen].mean()), 4),
                "cv_gain": round(float(diff.mean()), 4),
                "z": round(float(diff.mean() / (diff.std(ddof=1) / np.sqrt(len(diff)) + 1e-12)), 2),
                "pq_gain": round(float(pq.mean()), 4),
                "pq_z": round(float(pq.mean() / (pq.std(ddof=1) / np.sqrt(len(pq)) + 1e-12)), 1),
            }
        print(draw, name, {k: v for k, v in row.items() if k.startswith(name)}, flush=True)
    return row


def load(data_dir: Path, work: Path) -> dict[str, Any]:
    from qadapter.data.workspace import Workspace
    from qadapter.embedding import cache_for, embed_workspace
    from qadapter.encoders import embed, get_encoder
    from qadapter.generate.offline import offline_queries

    ws = Workspace(copy_workspace(data_dir, "appleqa", work))
    corpus, splits = embed_workspace(ws, ["train"])
    train = splits["train"]
    index = corpus.index()
    row_of = {q: i for i, q in enumerate(train.query_ids)}
    by_chunk: dict[int, list[tuple[int, str]]] = {}
    for q in train.query_ids:
        c, n = q[1:].split("_")
        by_chunk.setdefault(int(c), []).append((int(n), q))
    generated = offline_queries(ws.corpus(), 10)
    texts = [t for d in corpus.doc_ids for t in generated.get(d, [])]
    owners = [index[d] for d in corpus.doc_ids for _ in generated.get(d, [])]
    with cache_for(ws) as cache:
        PQ = embed(get_encoder(), texts, kind="query", cache=cache)
    return {
        "D": corpus.embeddings,
        "by_chunk": by_chunk,
        "Q_of": lambda ids: train.embeddings[[row_of[q] for q in ids]],
        "rel_of": lambda q: {index[d]: g for d, g in train.qrels[q].items() if g > 0},
        "PQ": PQ,
        "PQ_owner": np.array(owners),
    }


def markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        "# Small training sets on development splits (AppleQA training questions only)",
        "",
        f"Command: `{result['command']}`. Machine: {machine_line(result['machine'])}",
        "",
        "MRR@10 gains over the base model. dev = questions 13-16 of every chunk (seen: chunks with a training "
        "question); cv = 5-fold cross-fit by chunk on the 120 training questions (what a selection could judge); "
        "pq = offline pseudo-queries of the training chunks.",
        "",
        "| draw | map | dev gain | dev seen | dev new | cv gain (z) | pq gain (z) |",
        "|---:|---|---:|---:|---:|---|---|",
    ]
    for row in result["rows"]:
        for key, v in row.items():
            if isinstance(v, dict):
                lines.append(
                    f"| {row['draw']} | {key} | {v['dev_gain']:+.4f} | {v['dev_seen']:+.4f} | {v['dev_new']:+.4f} | "
                    f"{v['cv_gain']:+.4f} ({v['z']:+.2f}) | {v['pq_gain']:+.4f} ({v['pq_z']:+.1f}) |"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path(".work/small"))
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    machine = machine_note()
    data = load(args.data, args.work)
    rows = [evaluate_draw(d, data) for d in range(args.draws)]
    result = {"command": command_line("bench_small_data_dev.py"), "machine": machine, "rows": rows}
    write_results(args.out, "small_data_dev", result, markdown(result))
    print(json.dumps(rows[0], indent=1)[:2000])


if __name__ == "__main__":
    main()
