"""What the report draws: metric-vs-k curves, rank changes, score distributions, and the pseudo-query caveat."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from qadapter.core.metrics import per_query_scores
from qadapter.evaluate import diagnostics as diag
from qadapter.evaluate.caveats import offline_share, pseudo_query_caveat

SRC = Path(__file__).resolve().parent.parent / "src" / "qadapter"


def _random_run(seed: int, n_queries: int = 60, n_docs: int = 40, depth: int = 20):
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(n_docs)]
    qrels = {
        f"q{i}": {
            str(d): int(g)
            for d, g in zip(rng.choice(docs, 3, replace=False), rng.integers(0, 4, 3), strict=True)
        }
        for i in range(n_queries)
    }
    run = {
        q: {
            str(d): float(s)
            for d, s in zip(rng.choice(docs, depth, replace=False), rng.random(depth), strict=True)
        }
        for q in qrels
    }
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1])
def test_curves_agree_with_the_reference_metrics_at_every_k(seed: int) -> None:
    qrels, run = _random_run(seed)
    curves = diag.metric_curves(qrels, run, depth=20)
    for k in (1, 3, 10, 20):
        names = [f"hit@{k}", f"recall@{k}", f"ndcg@{k}"]
        reference = {m: float(v.mean()) for m, v in per_query_scores(qrels, run, names).items()}
        assert curves["hit"][k - 1] == pytest.approx(reference[f"hit@{k}"], abs=1e-6)
        assert curves["recall"][k - 1] == pytest.approx(reference[f"recall@{k}"], abs=1e-6)
        assert curves["ndcg"][k - 1] == pytest.approx(reference[f"ndcg@{k}"], abs=1e-6)
    assert all(len(v) == 20 for v in curves.values())
    assert np.all(np.diff(curves["hit"]) >= 0) and np.all(np.diff(curves["recall"]) >= 0)


def test_rank_changes_by_hand() -> None:
    # change = base rank - adapted rank: 0, +3, -1, +30 (found: 101 -> 71), -25 (lost: 76 -> 101)
    base, adapted = np.array([1, 5, 2, 101, 76]), np.array([1, 2, 3, 71, 101])
    changes = diag.rank_changes(base, adapted, depth=100)
    counts = dict(zip(changes["buckets"], changes["counts"], strict=True))
    assert counts == {
        "down >20": 1, "down 6-20": 0, "down 2-5": 0, "down 1": 1, "same": 1,
        "up 1": 0, "up 2-5": 1, "up 6-20": 0, "up >20": 1,
    }  # fmt: skip
    assert (changes["up"], changes["down"], changes["same"], changes["found"], changes["lost"]) == (
        2,
        2,
        1,
        1,
        1,
    )


def test_first_relevant_ranks_and_pair_scores() -> None:
    qrels = {"a": {"x": 1}, "b": {"y": 2, "z": 1}, "c": {"w": 1}}
    run = {"a": {"x": 0.9, "y": 0.5}, "b": {"x": 0.9, "z": 0.8, "y": 0.1}, "c": {"x": 0.3}}
    assert diag.first_relevant_ranks(qrels, run, depth=3).tolist() == [1, 2, 4]
    docs = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, 4.0]])
    index = {"x": 0, "y": 1, "z": 2, "w": 3}
    queries = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    scores = diag.relevant_pair_scores(["a", "b", "c"], queries, qrels, index, docs)
    assert scores == pytest.approx([1.0, 1.0, 1 / np.sqrt(2), 0.6])  # cosines by hand
    assert diag.non_relevant_scores(qrels, run, k=2).tolist() == [0.5, 0.9, 0.3]
    summary = diag.distribution(scores)
    assert (
        summary["n"] == 4
        and sum(summary["counts"]) == 4
        and summary["median"] == pytest.approx(0.8536, abs=1e-4)
    )


class _Q:
    def __init__(self, generator: str | None) -> None:
        self.metadata = {"generator": generator} if generator else {}


def test_offline_share_and_the_caveat_sentence() -> None:
    queries = {"a": _Q("offline"), "b": _Q("gpt-4o-mini"), "c": _Q(None), "d": _Q("offline")}
    assert offline_share(["a", "b", "c", "d"], queries) == 0.5
    assert offline_share(["b", "c"], queries) == 0.0 and offline_share([], queries) == 0.0
    assert pseudo_query_caveat(0.5) == (
        "50% of these test queries are offline pseudo-queries cut from the documents; "
        "they do not predict real questions."
    )
    assert pseudo_query_caveat(1.0).startswith("All of these test queries are offline pseudo-queries")
    assert pseudo_query_caveat(0.001).startswith("Under 1% of these")
    assert pseudo_query_caveat(0.0) is None and pseudo_query_caveat(None) is None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_report_modules_and_the_evaluate_command_import_no_later_stage() -> None:
    assert not {m for m in _imports(SRC / "report" / "charts.py") if m.startswith("qadapter.report.markdown")}
    assert not {m for m in _imports(SRC / "report" / "markdown.py") if m.startswith("qadapter.report.charts")}
    assert "qadapter.pipeline" not in _imports(SRC / "cli" / "evaluate.py")
    for init in (SRC / "evaluate" / "__init__.py", SRC / "report" / "__init__.py"):
        body = ast.parse(init.read_text()).body
        assert all(isinstance(n, ast.ImportFrom | ast.Assign | ast.Expr) for n in body), (
            init
        )  # re-exports only


def test_diagnostics_memory_does_not_grow_with_queries_times_documents() -> None:
    import tracemalloc

    from qadapter.core.vectors import search_run

    rng = np.random.default_rng(0)
    n_queries, n_docs, dim, depth = 400, 40_000, 8, 100
    docs = rng.normal(size=(n_docs, dim)).astype(np.float32)
    queries = rng.normal(size=(n_queries, dim)).astype(np.float32)
    doc_ids = [f"d{i}" for i in range(n_docs)]
    qrels = {f"q{i}": {f"d{i}": 1, f"d{i + 1}": 2} for i in range(n_queries)}
    run = search_run(list(qrels), queries, doc_ids, docs, k=depth)
    index = {d: i for i, d in enumerate(doc_ids)}
    tracemalloc.start()
    diag.metric_curves(qrels, run, depth)
    diag.first_relevant_ranks(qrels, run, depth)
    diag.relevant_pair_scores(list(qrels), queries, qrels, index, docs)
    diag.distribution(diag.non_relevant_scores(qrels, run))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # one float32 queries x documents matrix would be 64 MB; the diagnostics need queries x depth at most
    assert peak < n_queries * n_docs * 4 / 8, peak
