"""Retrieval metrics: hand-derived values on tiny runs, then agreement with trec_eval (via pytrec_eval) on random runs."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from qadapter.core.metrics import (
    default_metrics,
    evaluate_run,
    evaluated_queries,
    parse_metric,
    per_query_scores,
    rank,
)
from qadapter.errors import QadapterError

# q1: two relevant documents (d1, d3); the run ranks d2, d1, d4, d3 -> relevance flags 0, 1, 0, 1.
QRELS_BINARY = {"q1": {"d1": 1, "d3": 1}}
RUN_BINARY = {"q1": {"d2": 0.9, "d1": 0.8, "d4": 0.7, "d3": 0.6}}


def one(qrels, run, metric):
    return evaluate_run(qrels, run, [metric])[metric]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("hit@1", 0.0),  # d2 is not relevant
        ("hit@2", 1.0),  # d1 at rank 2
        ("precision@2", 1 / 2),
        ("precision@10", 2 / 10),  # trec_eval divides by k even when fewer documents were retrieved
        ("recall@1", 0.0),
        ("recall@2", 1 / 2),  # 1 of R=2 relevant
        ("recall@4", 1.0),
        ("mrr@1", 0.0),
        ("mrr@10", 1 / 2),  # first relevant at rank 2
        # DCG@10 = 1/log2(3) + 1/log2(5) (ranks 2 and 4); IDCG = 1/log2(2) + 1/log2(3) (both relevant on top).
        ("ndcg@10", (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))),
        # DCG@2 = 1/log2(3); IDCG@2 is the same ideal top two.
        ("ndcg@2", (1 / math.log2(3)) / (1 + 1 / math.log2(3))),
        # AP = (P@2 + P@4) / R = (1/2 + 2/4) / 2
        ("map", (1 / 2 + 2 / 4) / 2),
        # map@3 keeps only the hit at rank 2 but still divides by R = 2
        ("map@3", (1 / 2) / 2),
    ],
)
def test_binary_relevance_hand_values(metric, expected):
    assert one(QRELS_BINARY, RUN_BINARY, metric) == pytest.approx(expected)


def test_graded_ndcg_uses_linear_gains():
    # Judged grades a=3, b=2, d=1, c=0 (judged non-relevant). Run order: b, c, a, e (e unjudged).
    qrels = {"q": {"a": 3, "b": 2, "c": 0, "d": 1}}
    run = {"q": {"b": 0.9, "c": 0.8, "a": 0.7, "e": 0.6}}
    dcg3 = 2 / math.log2(2) + 0 / math.log2(3) + 3 / math.log2(4)  # = 2 + 0 + 1.5
    idcg3 = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)  # ideal order a, b, d
    assert one(qrels, run, "ndcg@3") == pytest.approx(dcg3 / idcg3)
    assert one(qrels, run, "ndcg@3") == pytest.approx(0.735007, abs=1e-6)  # 3.5 / 4.76186
    # ndcg@1: b (gain 2) on top where a (gain 3) would be ideal.
    assert one(qrels, run, "ndcg@1") == pytest.approx(2 / 3)
    # c has grade 0: not relevant, so R = 3 and recall@3 = |{b, a}| / 3.
    assert one(qrels, run, "recall@3") == pytest.approx(2 / 3)
    assert one(qrels, run, "mrr@10") == 1.0


def test_ties_are_broken_by_descending_document_id():
    # x and y tie at 0.5 below z: the documented order (trec_eval's) is z, y, x, so relevant x sits at rank 3.
    assert rank({"y": 0.5, "x": 0.5, "z": 0.9}) == ["z", "y", "x"]
    qrels = {"q": {"x": 1}}
    run = {"q": {"y": 0.5, "x": 0.5, "z": 0.9}}
    assert one(qrels, run, "mrr@10") == pytest.approx(1 / 3)
    assert one(qrels, run, "hit@2") == 0.0
    # The result must not depend on the dict's insertion order.
    assert one(qrels, {"q": {"z": 0.9, "x": 0.5, "y": 0.5}}, "mrr@10") == pytest.approx(1 / 3)


def test_query_missing_from_run_scores_zero_and_counts_in_the_mean():
    qrels = {"q1": {"d1": 1}, "q2": {"d9": 1}}
    run = {"q1": {"d1": 1.0}}  # q2 was never retrieved
    per_query = per_query_scores(qrels, run, ["mrr@10", "ndcg@10", "map"])
    assert per_query["mrr@10"].tolist() == [1.0, 0.0]  # sorted query ids: q1, q2
    assert per_query["map"].tolist() == [1.0, 0.0]
    assert one(qrels, run, "mrr@10") == 0.5  # (1 + 0) / 2


def test_queries_without_relevant_documents_are_not_evaluated():
    qrels = {"q1": {"d1": 1}, "q_none": {"d2": 0}, "q_empty": {}}
    run = {"q1": {"d2": 0.9, "d1": 0.8}, "q_none": {"d2": 1.0}}
    assert evaluated_queries(qrels) == ["q1"]
    per_query = per_query_scores(qrels, run, ["mrr@10"])
    assert per_query["mrr@10"].tolist() == [0.5]
    assert one(qrels, run, "mrr@10") == 0.5  # not diluted by q_none / q_empty


def test_no_relevant_documents_at_all_is_a_user_error():
    with pytest.raises(QadapterError, match="no query in the qrels has a relevant document"):
        evaluate_run({"q": {"d": 0}}, {"q": {"d": 1.0}}, ["mrr@10"])


@pytest.mark.parametrize("bad", ["ndcg", "foo@3", "mrr@0", "hit@x"])
def test_bad_metric_names_are_rejected_with_valid_choices(bad):
    with pytest.raises(QadapterError, match="metric"):
        parse_metric(bad)


def test_parse_metric_and_defaults():
    assert parse_metric("NDCG@10") == ("ndcg", 10)
    assert parse_metric("map") == ("map", None)
    assert "mrr@10" in default_metrics() and default_metrics()[-1] == "map"


# --- agreement with trec_eval -----------------------------------------------------------------------------------

try:
    import pytrec_eval
except ImportError:  # only the reference comparisons need it; the hand-derived tests above still run
    pytrec_eval = None

needs_trec_eval = pytest.mark.skipif(
    pytrec_eval is None, reason="pytrec_eval not installed: pip install 'qadapter[dev]' (pytrec-eval-terrier)"
)

KS = (1, 3, 5, 10)


def _random_case(seed: int, n_queries: int = 40, n_docs: int = 60):
    """Graded qrels and runs with distinct scores (trec_eval and qadapter break ties differently, see below)."""
    rng = random.Random(seed)
    docs = [f"d{i:03d}" for i in range(n_docs)]
    qrels, run = {}, {}
    for q in range(n_queries):
        qid = f"q{q:03d}"
        judged = rng.sample(docs, rng.randint(1, 8))
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        if rng.random() < 0.1:
            continue  # some queries missing from the run
        retrieved = rng.sample(docs, rng.randint(1, 25))
        scores = rng.sample(range(10_000), len(retrieved))
        run[qid] = {d: s / 10_000 for d, s in zip(retrieved, scores, strict=True)}
    return qrels, run


def _trec_eval(qrels, run) -> dict[str, np.ndarray]:
    """Per-query trec_eval values named like qadapter's metrics, over qadapter's evaluated queries."""
    measures = {
        "map",
        *(f"{m}.{','.join(map(str, KS))}" for m in ("success", "P", "recall", "ndcg_cut", "map_cut")),
    }
    full = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    # trec_eval's recip_rank has no cutoff: mrr@k is recip_rank of the run cut to its top k.
    cut = {k: pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_top(run, k)) for k in KS}
    names = {"hit": "success", "precision": "P", "recall": "recall", "ndcg": "ndcg_cut", "map": "map_cut"}
    out: dict[str, list[float]] = {}
    for qid in evaluated_queries(qrels):  # trec_eval omits queries missing from the run: they score 0
        res = full.get(qid, {})
        out.setdefault("map", []).append(res.get("map", 0.0))
        for k in KS:
            for ours, theirs in names.items():
                out.setdefault(f"{ours}@{k}", []).append(res.get(f"{theirs}_{k}", 0.0))
            out.setdefault(f"mrr@{k}", []).append(cut[k].get(qid, {}).get("recip_rank", 0.0))
    return {m: np.array(v) for m, v in out.items()}


def _top(run, k):
    return {q: dict(sorted(docs.items(), key=lambda item: -item[1])[:k]) for q, docs in run.items()}


@needs_trec_eval
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_trec_eval_on_random_runs(seed):
    qrels, run = _random_case(seed)
    reference = _trec_eval(qrels, run)
    ours = per_query_scores(qrels, run, list(reference))
    for metric, expected in reference.items():
        # pytrec_eval returns full doubles; a small atol only absorbs float summation order
        np.testing.assert_allclose(ours[metric], expected, atol=1e-9, err_msg=metric)


@needs_trec_eval
def test_tie_order_matches_trec_eval():
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 1.0, "b": 1.0}}
    reference = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)["q"]["recip_rank"]
    assert one(qrels, run, "mrr@10") == pytest.approx(reference)  # both rank b first, so 0.5
