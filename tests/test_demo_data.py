"""The offline demo data set built from the standard library's docstrings (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qadapter.data import Workspace
from qadapter.demo import DEFAULT_MODULES, build_stdlib_workspace
from qadapter.demo.stdlib_docs import split_docstring
from qadapter.errors import QadapterError

MODULES = ["json", "textwrap", "difflib"]
FILES = [
    "corpus.jsonl",
    "queries.jsonl",
    "qrels/all.tsv",
    "qrels/train.tsv",
    "qrels/test.tsv",
    "dataset.json",
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return build_stdlib_workspace(tmp_path_factory.mktemp("demo") / "ws", modules=MODULES)


def test_corpus_queries_and_qrels_agree(workspace: Workspace) -> None:
    corpus, queries, qrels = workspace.corpus(), workspace.queries(), workspace.qrels("all")
    assert workspace.splits() == ["all", "test", "train"]
    assert len(corpus) >= 20
    assert "json.dumps" in corpus and "q:json.dumps" in queries
    assert qrels == {f"q:{doc_id}": {doc_id: 1} for doc_id in corpus}
    assert set(queries) == set(qrels)
    for doc_id, doc in corpus.items():
        assert doc.title == doc_id
        assert doc.metadata["module"] in MODULES and doc_id.startswith(doc.metadata["module"] + ".")
        assert doc.metadata["kind"] in {"function", "class", "method"}
        assert len(doc.text) >= 100
        summary = queries[f"q:{doc_id}"].text
        assert summary not in doc.text, "the summary line must be removed from the document"
    assert corpus["json.dumps"].metadata["kind"] == "function"
    assert corpus["difflib.SequenceMatcher"].metadata["kind"] == "class"
    assert corpus["difflib.SequenceMatcher.ratio"].metadata["kind"] == "method"
    assert queries["q:json.dumps"].text == "Serialize ``obj`` to a JSON formatted ``str``."


def test_summaries_and_documents_are_unique(workspace: Workspace) -> None:
    corpus, queries = workspace.corpus(), workspace.queries()
    assert len({q.text.casefold() for q in queries.values()}) == len(queries)
    assert len({d.text for d in corpus.values()}) == len(corpus)


def test_split_is_by_document_and_covers_everything(workspace: Workspace) -> None:
    train, test, full = workspace.qrels("train"), workspace.qrels("test"), workspace.qrels("all")
    train_docs = {d for docs in train.values() for d in docs}
    test_docs = {d for docs in test.values() for d in docs}
    assert not train_docs & test_docs
    assert not set(train) & set(test)
    assert {**train, **test} == full
    assert len(test) == round(0.2 * len(full))


def test_build_is_deterministic_and_seed_changes_only_the_split(tmp_path: Path) -> None:
    first = build_stdlib_workspace(tmp_path / "a", modules=MODULES, seed=3)
    second = build_stdlib_workspace(tmp_path / "b", modules=MODULES, seed=3)
    for name in FILES:
        assert (first.path / name).read_bytes() == (second.path / name).read_bytes(), name
    other = build_stdlib_workspace(tmp_path / "c", modules=MODULES, seed=4)
    assert (other.path / "corpus.jsonl").read_bytes() == (first.path / "corpus.jsonl").read_bytes()
    assert other.qrels("test") != first.qrels("test")


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / "ws"
    build_stdlib_workspace(target, modules=["json"], seed=0)
    before = (target / "qrels" / "test.tsv").read_bytes()
    with pytest.raises(QadapterError, match="already exists"):
        build_stdlib_workspace(target, modules=["textwrap"])
    assert (target / "qrels" / "test.tsv").read_bytes() == before
    rebuilt = build_stdlib_workspace(target, modules=["textwrap"], overwrite=True)
    assert {d.metadata["module"] for d in rebuilt.corpus().values()} == {"textwrap"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"], "no temporary folders may be left behind"


def test_max_docs_caps_the_corpus(tmp_path: Path) -> None:
    ws = build_stdlib_workspace(tmp_path / "ws", modules=MODULES, max_docs=10)
    assert len(ws.corpus()) == 10
    assert len(ws.qrels("test")) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"modules": ["no_such_module_xyz"]}, "cannot import module 'no_such_module_xyz'"),
        ({"modules": ["antigravity"]}, "side effects on import"),
        ({"modules": []}, "modules is empty"),
        ({"test_fraction": 1.0}, "test_fraction must be between 0 and 1"),
        ({"max_docs": 1}, "max_docs must be at least 2"),
        ({"min_doc_chars": -1}, "min_doc_chars must be >= 0"),
        ({"modules": ["colorsys"], "min_doc_chars": 100_000}, "only 0 usable docstring"),
    ],
)
def test_bad_arguments_are_explained(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(QadapterError, match=message):
        build_stdlib_workspace(tmp_path / "ws", **kwargs)
    assert not (tmp_path / "ws").exists()


def test_default_module_list_gives_a_realistic_corpus(tmp_path: Path) -> None:
    ws = build_stdlib_workspace(tmp_path / "ws")
    corpus = ws.corpus()
    assert 300 <= len(corpus) <= 3000
    modules = {d.metadata["module"] for d in corpus.values()}
    assert modules <= set(DEFAULT_MODULES) and len(modules) > 50
    assert {d.metadata["kind"] for d in corpus.values()} == {"function", "class", "method"}
    queries = ws.queries()
    assert not [d for d in corpus if queries[f"q:{d}"].text in corpus[d].full_text]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("Return x.\n\nMore about x, at length.", ("Return x.", "More about x, at length.")),
        (
            "Return a value that\nwraps onto two lines.\n\nDetails.",
            ("Return a value that wraps onto two lines.", "Details."),
        ),
        (
            "f(a, b) -> int\n\nAdd a and b together.\n\nBoth must be ints.",
            ("Add a and b together.", "Both must be ints."),
        ),
        ("Do the thing. It also does\nanother thing.", ("Do the thing.", "It also does another thing.")),
        ("Only a summary line.", None),
        ("Arguments:\n\nx -- the value", None),
    ],
)
def test_split_docstring(doc: str, expected: tuple[str, str] | None) -> None:
    assert split_docstring(doc) == expected
