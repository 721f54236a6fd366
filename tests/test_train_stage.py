"""The train stage on workspaces with stand-in cached vectors: several splits, real vs synthetic weights, ``--kind``
honoured by the default recipe, the TOML/flag/API config path, and one-line errors.

Vectors are a planted 60-degree map (see ``planted`` in test_train.py) put straight into the embedding cache under
the bundled model's name, so the real commands run without loading the model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from qadapter.adapters import load_adapter  # noqa: E402
from qadapter.cli import main  # noqa: E402
from qadapter.core.defaults import DEFAULT_MODEL  # noqa: E402
from qadapter.data import Document, Query, Workspace  # noqa: E402
from qadapter.embedding import cache_for  # noqa: E402
from qadapter.encoders import get_encoder, model_identity  # noqa: E402
from qadapter.errors import QadapterError  # noqa: E402
from qadapter.train import train  # noqa: E402
from qadapter.train.data import query_repeats  # noqa: E402
from qadapter.train.selection import Augmentation, default_candidates, training_set  # noqa: E402

D, N_DOCS = 16, 150


def workspace(path: Path, *, splits: bool = True) -> Workspace:
    """150 documents, 3 queries each: query 0 is "generated" (split gen-train), 1 is "logged" (log-train), 2 is test."""
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(N_DOCS, D))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    u, _, vt = np.linalg.svd(np.eye(D) + 0.4 * rng.normal(size=(D, D)))
    ws = Workspace(path)
    ws.write_corpus([Document(f"d{i}", f"document {i}") for i in range(N_DOCS)])
    queries = [
        Query(
            f"q{i}-{j}",
            f"question {j} about {i}",
            {"generator": "llm"} if j == 0 else {"source": "query-log"},
        )
        for i in range(N_DOCS)
        for j in range(3)
    ]
    ws.write_queries(queries)
    if splits:
        ws.write_qrels("gen-train", {f"q{i}-0": {f"d{i}": 1} for i in range(N_DOCS)})
        ws.write_qrels("log-train", {f"q{i}-1": {f"d{i}": 1} for i in range(N_DOCS)})
        ws.write_qrels("test", {f"q{i}-2": {f"d{i}": 1} for i in range(N_DOCS)})
    else:
        ws.write_qrels("all", {f"q{i}-{j}": {f"d{i}": 1} for i in range(N_DOCS) for j in range(3)})
    vectors = (docs.repeat(3, axis=0) + 0.05 * rng.normal(size=(3 * N_DOCS, D))) @ (u @ vt)
    identity = model_identity(get_encoder(DEFAULT_MODEL))  # the cache keys vectors by what the model is
    with cache_for(ws) as cache:
        cache.put_many(identity, "document", [f"document {i}" for i in range(N_DOCS)], docs)
        cache.put_many(identity, "query", [q.text for q in queries], vectors)
    return ws


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return workspace(tmp_path / "ws")


def call(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# -- several splits, real vs synthetic ------------------------------------------------------------------------------


def test_train_merges_several_splits(ws: Workspace, tmp_path: Path) -> None:
    result = train(
        ws, ["gen-train", "log-train"], recipe="contrastive", pseudo_queries=0, output=tmp_path / "a"
    )
    data = load_adapter(tmp_path / "a").config["data"]
    assert data["splits"] == ["gen-train", "log-train"] and data["split"] == "gen-train+log-train"
    assert data["n_queries"] == data["n_pairs"] == 2 * N_DOCS
    assert data["real_query_share"] == 0.5
    assert result.chosen == "linear"


def test_cli_takes_split_twice_and_a_real_weight(
    ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", str(ws.path), "--split", "gen-train", "--split", "log-train", "--real-weight", "2"]
    code, out, err = call(
        [*argv, "--recipe", "contrastive", "--pseudo-queries", "0", "-o", str(tmp_path / "a")], capsys
    )
    assert code == 0, err
    config = load_adapter(tmp_path / "a").config
    assert config["data"]["splits"] == ["gen-train", "log-train"] and config["training"]["real_weight"] == 2.0


def test_real_queries_are_repeated_in_fits_only(ws: Workspace) -> None:
    ids = ["q0-0", "q0-1", "q1-0", "q1-1"]  # generated, logged, generated, logged
    assert query_repeats(ws, ids, 1.0) is None
    assert query_repeats(ws, ids, 2.0).tolist() == [1, 2, 1, 2]
    assert query_repeats(ws, ids, 0.5).tolist() == [2, 1, 2, 1]
    Q = np.arange(8, dtype=np.float32).reshape(4, 2)
    rels = [{0: 1}, {0: 1}, {1: 1}, {1: 1}]
    extra = Augmentation(np.zeros((0, 2), dtype=np.float32), [], repeats=np.array([1, 2, 1, 2]))
    q, pairs = training_set(Q, [1, 2], rels, extra)
    assert q.tolist() == [Q[1].tolist(), Q[1].tolist(), Q[2].tolist()]
    assert pairs == [(0, 0), (1, 0), (2, 1)]


# -- --kind with the default recipe ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mlp", "lowrank"])
def test_default_candidates_keep_only_the_kind_asked_for(kind: str) -> None:
    candidates = default_candidates(kind=kind)
    assert candidates[0].name == "identity" and len(candidates) >= 2
    assert {c.kind for c in candidates[1:]} == {kind}


def test_default_recipe_with_kind_mlp_ships_an_mlp_or_the_identity(ws: Workspace, tmp_path: Path) -> None:
    result = train(ws, ["gen-train", "log-train"], kind="mlp", pseudo_queries=0, learning_curve=False)
    assert result.selection is not None
    assert {row["params"].get("kind", "identity") for row in result.selection.candidates} <= {
        "mlp",
        "identity",
    }
    assert result.adapter.kind in ("mlp", "identity")
    assert result.adapter.kind == "mlp"  # the planted map is learnable: the search found an mlp that helps


# -- config path: defaults < TOML < flags; one-line errors -------------------------------------------------------------


def test_toml_seed_and_objective_reach_training(
    ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "train.toml"
    toml.write_text(
        '[train]\nseed = 3\nobjective = "seen"\nrecipe = "contrastive"\nepochs = 2\nsplit = ["gen-train", "log-train"]\n'
    )
    code, _, err = call(
        ["train", str(ws.path), "--config", str(toml), "--pseudo-queries", "0", "-o", str(tmp_path / "a")],
        capsys,
    )
    assert code == 0, err
    config = load_adapter(tmp_path / "a").config
    assert config["training"]["config"]["seed"] == 3 and config["training"]["config"]["epochs"] == 2
    assert config["data"]["splits"] == ["gen-train", "log-train"]
    # a flag given on the command line wins over the file
    code, out, err = call(
        [
            "train",
            str(ws.path),
            "--config",
            str(toml),
            "--seed",
            "5",
            "--recipe",
            "default",
            "--pseudo-queries",
            "0",
        ]
        + ["--no-learning-curve", "-o", str(tmp_path / "b"), "--json"],
        capsys,
    )
    assert code == 0, err
    config = load_adapter(tmp_path / "b").config
    assert config["training"]["recipe"] == "default" and config["training"]["objective"] == "seen"
    assert json.loads(out)["recipe"] == "default"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('seed = "3"\n', r"invalid training option: seed must be of type int, got '3' \(str\)"),
        ('epochs = "ten"\n', r"invalid training config: epochs must be of type int, got 'ten' \(str\)"),
        (
            'objective = "greedy"\n',
            r"unknown objective 'greedy'; valid objectives: auto, balanced, seen, covered",
        ),
        ("learning_rate = 0.1\n", r"unknown training option\(s\) \['learning_rate'\]; valid options: .*seed"),
        ('kind = "conv"\n', r"kind must be one of linear, lowrank, mlp, got 'conv' \(--kind\)"),
    ],
)
def test_bad_config_file_is_one_line(
    ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, message: str
) -> None:
    (tmp_path / "bad.toml").write_text(toml)
    code, out, err = call(
        ["train", str(ws.path), "--config", str(tmp_path / "bad.toml"), "-o", str(tmp_path / "a")], capsys
    )
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "a").exists()


def test_api_refuses_bad_types_and_keys_in_one_line(ws: Workspace) -> None:
    with pytest.raises(QadapterError, match="seed must be of type int"):
        train(ws, "log-train", seed="3")  # type: ignore[arg-type]
    with pytest.raises(QadapterError, match=r"unknown training config option\(s\) \['lrr'\]"):
        train(ws, "log-train", lrr=0.1)


def test_train_before_any_split_suggests_qadapter_split(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", splits=False)
    with pytest.raises(
        QadapterError,
        match=r"no qrels for split\(s\) 'train' \(available splits: all\); make train/test splits first with 'qadapter split",
    ):
        train(ws)
    with pytest.raises(QadapterError, match="pass one of them with --split"):
        train(workspace(tmp_path / "ws2"), "nope")


def test_train_records_a_score_mapping_that_ranks_nothing_differently(ws: Workspace, tmp_path: Path) -> None:
    from qadapter.core.score_scale import map_threshold, to_base_scale

    train(ws, ["gen-train"], recipe="contrastive", pseudo_queries=0, output=tmp_path / "a")
    mapping = load_adapter(tmp_path / "a").config["score_scale"]
    # computed at train time from training queries: a cut-off maps monotonically, and scores keep their order
    thresholds = [map_threshold(mapping, t) for t in (0.2, 0.4, 0.6)]
    assert thresholds == sorted(thresholds)
    adapted = np.array([0.9, 0.5, 0.51, 0.1])
    assert list(np.argsort(-to_base_scale(mapping, adapted))) == list(np.argsort(-adapted))


def test_pseudo_queries_are_embedded_for_a_sample_of_documents_past_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fit draws at most max_training_pairs pairs, so a million training documents must not mean ten million
    pseudo-queries to embed: past PSEUDO_QUERY_BUDGET, a fixed sample of documents gets them."""
    from qadapter.train import data as training_data
    from tests.test_cache_and_workspace import CountingEncoder

    ws = workspace(tmp_path / "ws")
    ws.write_corpus(
        [
            Document(f"d{i}", f"Heading {i}. First sentence of document {i}. A second one.")
            for i in range(N_DOCS)
        ]
    )
    doc_ids = [f"d{i}" for i in range(N_DOCS)]
    encoder = CountingEncoder(dim=D)
    everything = training_data.pseudo_queries(ws, doc_ids, set(range(N_DOCS)), 2, encoder, False)
    assert everything is not None and len({d for r in everything.rels for d in r}) == N_DOCS
    monkeypatch.setattr(training_data, "PSEUDO_QUERY_BUDGET", 40)
    sampled = training_data.pseudo_queries(ws, doc_ids, set(range(N_DOCS)), 2, encoder, False)
    assert sampled is not None and len({d for r in sampled.rels for d in r}) == 20
    assert len(sampled.rels) <= 40


def test_a_shrunk_winner_records_its_candidate_config_and_shrinkage(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cross-fitted search can pick ``linear-reg1@0.5`` (linear-reg1 shrunk halfway to the identity): the record
    keeps linear-reg1's config and the shrinkage, and the learning curve is drawn for that map, shrunk."""
    from qadapter.train import stage

    real_select, real_curve = stage.select, stage.draw_learning_curve
    curve_calls: list[tuple[str, float]] = []

    def select_shrunk(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        result = real_select(*args, **kwargs)
        result.chosen = "linear-reg1@0.5"
        return result

    def curve(pick, *args, shrinkage=1.0, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        curve_calls.append((pick.name, shrinkage))
        return real_curve(pick, *args, shrinkage=shrinkage, **kwargs)

    monkeypatch.setattr(stage, "select", select_shrunk)
    monkeypatch.setattr(stage, "draw_learning_curve", curve)
    result = train(ws, ["gen-train", "log-train"], pseudo_queries=0)
    training = result.adapter.config["training"]
    assert training["selected"] == "linear-reg1@0.5" and training["shrinkage"] == 0.5
    assert training["config"]["kind"] == "linear" and training["config"]["identity_reg"] == 1.0
    assert curve_calls == [("linear-reg1", 0.5)] and result.learning_curve
