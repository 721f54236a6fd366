"""Deterministic train/test splits of qrels, by query and by document."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qadapter.cli import cli
from qadapter.data import Document, Qrels, Workspace
from qadapter.data.splits import make_splits, split_qrels
from qadapter.errors import ArtifactError, DataError, QadapterError

SEED_JSON = Path("../shared/data/seed/apple_QA_dataset.json")


def grid_qrels(n_docs: int = 10, per_doc: int = 5) -> Qrels:
    """``per_doc`` queries for each of ``n_docs`` documents, like the notebook's 20 questions per chunk."""
    return {f"q{d}_{i}": {f"d{d}": 1} for d in range(n_docs) for i in range(per_doc)}


def test_by_query_partitions_with_the_requested_size() -> None:
    qrels = grid_qrels()
    original = copy.deepcopy(qrels)
    train, test = split_qrels(qrels, by="query", test_fraction=0.2, seed=0)
    assert len(test) == 10 and len(train) == 40
    assert set(train).isdisjoint(test) and {**train, **test} == qrels
    assert qrels == original  # the caller's dict is untouched
    test["q0_0"] = {"x": 1} if "q0_0" in test else {}
    assert qrels == original  # and the results do not alias it


def test_splits_are_deterministic_and_seeded() -> None:
    qrels = grid_qrels()
    assert split_qrels(qrels, seed=3) == split_qrels(dict(reversed(list(qrels.items()))), seed=3)
    assert set(split_qrels(qrels, seed=3)[1]) != set(split_qrels(qrels, seed=4)[1])


def test_adding_queries_moves_few_existing_ones() -> None:
    small, large = grid_qrels(10), grid_qrels(11)
    test_small = set(split_qrels(small, seed=0)[1])
    test_large = set(split_qrels(large, seed=0)[1])
    assert len(test_small - test_large) <= 2


def test_by_document_holds_out_documents_with_all_their_queries() -> None:
    qrels = grid_qrels(10, 5)
    qrels["multi"] = {f"d{i}": 1 for i in range(9)}
    qrels["unjudged"] = {"d0": 0}
    train, test = split_qrels(qrels, by="document", test_fraction=0.2, seed=0)
    held_out = {d for q, judged in test.items() if q != "multi" for d in judged}
    assert len(held_out) == 2  # 20% of the 10 relevant documents
    train_docs = {d for judged in train.values() for d, s in judged.items() if s > 0}
    assert train_docs.isdisjoint(held_out)  # no training query points at a held-out document
    for doc in held_out:  # every query of a held-out document is in test
        assert all(q in test for q, judged in qrels.items() if judged.get(doc, 0) > 0)
    assert "multi" in test  # relevant to 9 of the 10 documents, so to at least one held-out one
    assert "unjudged" in train  # no relevant document: nothing to hold out
    assert len(test) == 2 * 5 + 1


def test_split_errors() -> None:
    with pytest.raises(QadapterError, match="unknown split kind 'chunk'; choose one of: query, document"):
        split_qrels(grid_qrels(), by="chunk")  # type: ignore[arg-type]
    for fraction in (0, 1, 1.5, -0.1, True):
        with pytest.raises(QadapterError, match="test fraction must be between 0 and 1"):
            split_qrels(grid_qrels(), test_fraction=fraction)
    with pytest.raises(DataError, match="the qrels are empty"):
        split_qrels({})
    with pytest.raises(DataError, match="cannot split 1 query"):
        split_qrels({"q": {"d": 1}})
    with pytest.raises(DataError, match="nothing is left to train on"):
        split_qrels({"q1": {"d1": 1, "d2": 1}, "q2": {"d1": 1, "d2": 1}}, by="document", test_fraction=0.5)


def test_tiny_splits_keep_both_sides_nonempty() -> None:
    train, test = split_qrels({"a": {"d": 1}, "b": {"d": 1}}, test_fraction=0.01)
    assert len(train) == 1 and len(test) == 1


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    ws.write_corpus([Document(f"d{i}", f"text {i}") for i in range(10)])
    ws.write_qrels("all", grid_qrels())
    return ws


def test_make_splits_writes_qrels_and_config(ws: Workspace) -> None:
    result = make_splits(ws, by="document", test_fraction=0.3, seed=1)
    assert ws.splits() == ["all", "test", "train"]
    assert ws.qrels("train") == result["train"] and ws.qrels("test") == result["test"]
    assert len(result["test"]) == 15
    config = json.loads((ws.path / "qrels" / "train+test.json").read_text())
    assert config == {
        "source_split": "all",
        "by": "document",
        "test_fraction": 0.3,
        "seed": 1,
        "queries": {"train": 35, "test": 15},
    }
    with pytest.raises(ArtifactError, match=r"train\.tsv already exists"):
        make_splits(ws)
    again = make_splits(ws, by="document", test_fraction=0.3, seed=1, overwrite=True)
    assert again == result
    other = make_splits(ws, names=("train-q", "test-q"))
    assert len(other["test-q"]) == 10


def test_make_splits_errors(ws: Workspace) -> None:
    with pytest.raises(DataError, match="no qrels for split 'dev' \\(available splits: all\\)"):
        make_splits(ws, "dev")
    with pytest.raises(QadapterError, match="cannot also be an output name"):
        make_splits(ws, "all", names=("all", "test"))
    with pytest.raises(QadapterError, match="two different split names"):
        make_splits(ws, names=("a", "a"))
    assert ws.splits() == ["all"]


def test_cli_split(ws: Workspace) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["split", str(ws.path), "--by", "document", "--names", "tr,te", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["queries"] == {"tr": 40, "te": 10}
    result = runner.invoke(cli, ["split", str(ws.path), "--names", "a,b,c"])
    assert result.exit_code != 0 and "two comma-separated split names" in str(result.exception)


@pytest.mark.skipif(
    not SEED_JSON.is_file(), reason="../shared/data/seed/apple_QA_dataset.json is not available"
)
def test_notebook_data_document_split(tmp_path: Path) -> None:
    from qadapter.importers import import_data

    ws = import_data(SEED_JSON, tmp_path / "ws")
    result = make_splits(ws, by="document", test_fraction=0.2, seed=0)
    test_docs = {d for judged in result["test"].values() for d in judged}
    train_docs = {d for judged in result["train"].values() for d in judged}
    assert len(test_docs) == 43 and len(train_docs) == 172 and test_docs.isdisjoint(train_docs)
    assert len(result["test"]) == 860  # 20 questions per held-out chunk


def test_split_names_say_which_queries_they_hold(tmp_path: Path) -> None:
    """``all`` splits into train/test (as before); any other source into <source>-train/<source>-test, the names
    ``generate`` already uses (generated-train), so ``split --from log`` gives log-train and log-test."""
    from qadapter.data.splits import default_names

    ws = Workspace(tmp_path)
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(10)}
    ws.write_qrels("all", qrels)
    ws.write_qrels("log", qrels)
    assert default_names("all") == ("train", "test")
    assert set(make_splits(ws, "all")) == {"train", "test"}
    assert set(make_splits(ws, "log")) == {"log-train", "log-test"}
    assert {"log-train", "log-test", "train", "test"} <= set(ws.splits())
