"""Importers: BEIR folder, the notebook's JSON, LlamaIndex JSON and query logs into a workspace."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from qadapter.cli import cli
from qadapter.data import Document, Query, Workspace
from qadapter.errors import ArtifactError, DataError, QadapterError
from qadapter.importers import IMPORTERS, detect_format, import_data

SHARED = Path("../shared/data")
SEED_JSON = SHARED / "seed" / "apple_QA_dataset.json"
APPLEQA = SHARED / "appleqa"


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_lines(path: Path, lines: list[object | str]) -> Path:
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8"
    )
    return path


SEED = [
    {
        "chunk_index": 0,
        "input_chunk": "Solar powers the campus.",
        "questions": {"question_1": "What powers it?", "question_2": "Is it solar?"},
    },
    {"chunk_index": 1, "input_chunk": "Water is recycled.", "questions": {"question_1": "What is recycled?"}},
]
LLAMA = {
    "queries": {"q-a": "What powers the campus?", "q-b": "What is recycled?"},
    "corpus": {"node-1": "Solar powers the campus.", "node-2": "Water is recycled."},
    "relevant_docs": {"q-a": ["node-1"], "q-b": ["node-2"]},
    "mode": "text",
}


def make_beir(root: Path) -> Path:
    ws = Workspace(root)
    ws.write_corpus(
        [Document("d1", "Solar powers the campus.", "Energy"), Document("d2", "Water is recycled.")]
    )
    ws.write_queries([Query("q1", "What powers the campus?"), Query("q2", "What is recycled?")])
    ws.write_qrels("train", {"q1": {"d1": 1}})
    ws.write_qrels("test", {"q2": {"d2": 2}})
    return root


@pytest.fixture()
def corpus_ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ingested")
    ws.write_corpus(
        [
            Document("faq-1", "To reset your password,\n open Settings."),
            Document("faq-2", "Refunds take 5 days."),
            Document("faq-3", "Shipping is free over $50."),
        ]
    )
    return ws


# One source per registered format: the contract test below runs over all of them, and fails when a new format
# is registered without a fixture here.
SOURCES: dict[str, Callable[[Path], Path]] = {
    "beir": lambda tmp: make_beir(tmp / "beir"),
    "seed-json": lambda tmp: write_json(tmp / "seed.json", SEED),
    "llamaindex": lambda tmp: write_json(tmp / "llama.json", LLAMA),
    "querylog": lambda tmp: write_lines(tmp / "log.jsonl", [{"query": "refund time?", "doc_ids": ["faq-2"]}]),
}


def test_every_importer_has_a_contract_fixture() -> None:
    assert set(SOURCES) == set(IMPORTERS)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_importer_contract(name: str, tmp_path: Path, corpus_ws: Workspace) -> None:
    source = SOURCES[name](tmp_path)
    assert detect_format(source) == name
    others = [other for other, importer in IMPORTERS.items() if other != name and importer.detect(source)]
    assert others == []
    corpus = corpus_ws.path if IMPORTERS[name].needs_corpus else None
    ws = import_data(source, tmp_path / "ws", corpus=corpus)
    docs, queries = ws.corpus(), ws.queries()
    assert docs and queries and ws.splits()
    for split in ws.splits():
        for qid, judged in ws.qrels(split).items():
            assert qid in queries and judged and all(d in docs for d in judged)
    manifest = json.loads((ws.path / "import.json").read_text())
    assert manifest["source_format"] == name and manifest["documents"] == len(docs)
    with pytest.raises(ArtifactError, match="already exists"):
        import_data(source, tmp_path / "ws", corpus=corpus)


def test_seed_json_ids(tmp_path: Path) -> None:
    ws = import_data(write_json(tmp_path / "seed.json", SEED), tmp_path / "ws")
    assert {d.id: d.text for d in ws.corpus().values()} == {
        "chunk_0": "Solar powers the campus.",
        "chunk_1": "Water is recycled.",
    }
    assert [q.id for q in ws.queries().values()] == ["q0_1", "q0_2", "q1_1"]
    assert ws.splits() == ["all"]
    assert ws.qrels("all") == {"q0_1": {"chunk_0": 1}, "q0_2": {"chunk_0": 1}, "q1_1": {"chunk_1": 1}}


@pytest.mark.skipif(
    not (SEED_JSON.is_file() and APPLEQA.is_dir()), reason="../shared/data (seed, appleqa) is not available"
)
def test_seed_json_matches_the_shared_beir_conversion(tmp_path: Path) -> None:
    ws = import_data(SEED_JSON, tmp_path / "ws")
    ref = Workspace(APPLEQA)
    assert {k: d.text for k, d in ws.corpus().items()} == {k: d.text for k, d in ref.corpus().items()}
    assert {k: q.text for k, q in ws.queries().items()} == {k: q.text for k, q in ref.queries().items()}
    assert ws.qrels("all") == {**ref.qrels("train"), **ref.qrels("test")}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"not": "a list"}, "expected a JSON list"),
        ([], "the list is empty"),
        ([{"chunk_index": 0, "questions": {}}], r"item 0: missing field\(s\) \['input_chunk'\]"),
        ([SEED[0], SEED[0]], "chunk_index 0 appears twice"),
        ([{"chunk_index": 0, "input_chunk": "x", "questions": {"question_1": ""}}], "question 1 is empty"),
        (
            [{"chunk_index": 0, "input_chunk": "x", "questions": "why?"}],
            "'questions' must be an object or a list",
        ),
    ],
)
def test_seed_json_errors(tmp_path: Path, data: object, message: str) -> None:
    source = write_json(tmp_path / "seed.json", data)
    with pytest.raises(DataError, match=message) as err:
        import_data(source, tmp_path / "ws", format="seed-json")
    assert str(source) in str(err.value)
    assert not (tmp_path / "ws").exists()


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "seed.json"
    source.write_text('[\n{"chunk_index": 0,\n "input_chunk": oops}\n]', encoding="utf-8")
    with pytest.raises(DataError, match=r"seed\.json:3: not valid JSON"):
        import_data(source, tmp_path / "ws", format="seed-json")
    with pytest.raises(DataError, match="cannot tell its format"):
        import_data(source, tmp_path / "ws")


def test_llamaindex_errors(tmp_path: Path) -> None:
    bad = dict(LLAMA, relevant_docs={"q-a": ["node-9"]})
    with pytest.raises(DataError, match=r"relevant_docs\['q-a'\]: document id 'node-9' is not in 'corpus'"):
        import_data(write_json(tmp_path / "l.json", bad), tmp_path / "ws")
    bad = dict(LLAMA, relevant_docs={"q-z": ["node-1"]})
    with pytest.raises(DataError, match="query id 'q-z' is not in 'queries'"):
        import_data(write_json(tmp_path / "l.json", bad), tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


def test_beir_keeps_splits_and_checks_ids(tmp_path: Path) -> None:
    ws = import_data(make_beir(tmp_path / "beir"), tmp_path / "ws")
    assert ws.splits() == ["test", "train"]
    assert ws.qrels("test") == {"q2": {"d2": 2}}
    assert ws.corpus()["d1"].title == "Energy"
    Workspace(tmp_path / "beir").write_qrels("dev", {"q1": {"d9": 1}})
    with pytest.raises(
        DataError, match=r"dev\.tsv: 1 document id\(s\) are not in corpus\.jsonl \(first: 'd9'\)"
    ):
        import_data(tmp_path / "beir", tmp_path / "ws2")
    assert not (tmp_path / "ws2").exists()


def test_beir_overwrite_replaces(tmp_path: Path) -> None:
    out = tmp_path / "ws"
    import_data(write_json(tmp_path / "seed.json", SEED), out)
    ws = import_data(make_beir(tmp_path / "beir"), out, overwrite=True)
    assert set(ws.corpus()) == {"d1", "d2"} and ws.splits() == ["test", "train"]


# -- query logs --------------------------------------------------------------------------------------------------
def test_query_log_ids_texts_scores_and_merging(tmp_path: Path, corpus_ws: Workspace) -> None:
    log = write_lines(
        tmp_path / "log.jsonl",
        [
            {
                "query": "How do I reset my password?",
                "doc_texts": ["To reset your password, open   Settings."],
                "ts": 17,
            },
            "",
            {"query": "refund time", "doc_ids": "faq-2", "score": 2},
            {"query": "How do I  reset my password?", "doc_ids": ["faq-3"]},
            {"query": "free shipping?", "doc_ids": ["faq-3"], "id": "u42", "split": "test"},
        ],
    )
    ws = import_data(log, tmp_path / "ws", corpus=corpus_ws.path)
    queries = ws.queries()
    assert list(queries) == ["log-1", "log-2", "u42"]
    assert queries["log-1"].metadata == {"source": "log", "ts": 17}
    assert ws.qrels("log") == {"log-1": {"faq-1": 1, "faq-3": 1}, "log-2": {"faq-2": 2}}
    assert ws.qrels("test") == {"u42": {"faq-3": 1}}
    assert set(ws.corpus()) == {"faq-1", "faq-2", "faq-3"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"query": "x", "doc_ids": ["faq-9"]}', "log.jsonl:2: unknown document id 'faq-9'"),
        (
            '{"query": "x", "doc_texts": ["no such chunk"]}',
            "log.jsonl:2: doc_texts entry 'no such chunk...' matches no chunk",
        ),
        ('{"query": "x", "doc_ids": ["faq-1"]', "log.jsonl:2: not valid JSON"),
        ('["query", "x"]', "log.jsonl:2: expected a JSON object, got list"),
        ('{"query": "", "doc_ids": ["faq-1"]}', "log.jsonl:2: 'query' must be a non-empty string"),
        ('{"query": "x"}', "log.jsonl:2: no 'doc_ids' or 'doc_texts'"),
        ('{"query": "x", "doc_id": "faq-1"}', r"log.jsonl:2: unknown field\(s\) \['doc_id'\]; valid fields"),
        (
            '{"query": "x", "doc_ids": ["faq-1"], "score": -1}',
            "log.jsonl:2: 'score' must be a whole number >= 0",
        ),
        (
            '{"query": "refunds?", "doc_ids": ["faq-1"], "split": "test"}',
            "log.jsonl:2: the same query is in split 'log' on an earlier line and 'test' here",
        ),
    ],
)
def test_query_log_errors_name_file_and_line(
    tmp_path: Path, corpus_ws: Workspace, line: str, message: str
) -> None:
    log = write_lines(tmp_path / "log.jsonl", [{"query": "refunds?", "doc_ids": ["faq-2"]}, line])
    with pytest.raises(DataError, match=message) as err:
        import_data(log, tmp_path / "ws", format="querylog", corpus=corpus_ws.path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "ws").exists()


def test_query_log_into_the_ingested_workspace_in_place(tmp_path: Path, corpus_ws: Workspace) -> None:
    corpus_before = corpus_ws.corpus_path.read_bytes()
    log = write_lines(tmp_path / "log.jsonl", [{"query": "refund time", "doc_ids": ["faq-2"]}])
    ws = import_data(log, corpus_ws.path)
    assert ws.qrels("log") == {"log-1": {"faq-2": 1}}
    assert ws.corpus_path.read_bytes() == corpus_before
    # a second log in another split adds up: the first log's queries and split stay
    log2 = write_lines(
        tmp_path / "log2.jsonl", [{"query": "shipping", "doc_ids": ["faq-3"], "split": "test"}]
    )
    ws = import_data(log2, corpus_ws.path)
    assert ws.splits() == ["log", "test"] and list(ws.queries()) == ["log-1", "log-2"]
    assert ws.qrels("test") == {"log-2": {"faq-3": 1}} and ws.qrels("log") == {"log-1": {"faq-2": 1}}
    # the same split again would replace it: refused unless asked; replacing keeps every query
    log3 = write_lines(tmp_path / "log3.jsonl", [{"query": "refund time", "doc_ids": ["faq-1"]}])
    with pytest.raises(ArtifactError, match=r"qrels/log.tsv already exists .*pass --overwrite"):
        import_data(log3, corpus_ws.path)
    ws = import_data(log3, corpus_ws.path, overwrite=True)
    assert list(ws.queries()) == ["log-1", "log-2"]  # the same text keeps its id
    assert ws.qrels("log") == {"log-1": {"faq-1": 1}} and ws.qrels("test") == {"log-2": {"faq-3": 1}}


def test_query_log_errors_leave_workspace_untouched(tmp_path: Path, corpus_ws: Workspace) -> None:
    log = write_lines(tmp_path / "log.jsonl", [{"query": "x", "doc_ids": ["nope"]}])
    before = sorted(p.name for p in corpus_ws.path.rglob("*"))
    with pytest.raises(DataError, match="unknown document id 'nope'"):
        import_data(log, corpus_ws.path)
    assert sorted(p.name for p in corpus_ws.path.rglob("*")) == before


def test_query_log_needs_a_corpus(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "log.jsonl", [{"query": "x", "doc_ids": ["a"]}])
    with pytest.raises(DataError, match="needs a corpus"):
        import_data(log, tmp_path / "ws")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    corpus = Workspace(tmp_path / "c")
    corpus.write_corpus([Document("a", "text")])
    with pytest.raises(DataError, match="the query log is empty"):
        import_data(empty, tmp_path / "ws", format="querylog", corpus=corpus.corpus_path)


def test_unknown_format_and_missing_source(tmp_path: Path) -> None:
    with pytest.raises(QadapterError, match="unknown import format 'csv'; choose one of: auto, beir"):
        import_data(make_beir(tmp_path / "b"), tmp_path / "ws", format="csv")
    with pytest.raises(DataError, match="no such file or folder"):
        import_data(tmp_path / "missing.json", tmp_path / "ws")
    (tmp_path / "notes.txt").write_text("hi", encoding="utf-8")
    with pytest.raises(DataError, match="cannot tell its format; pass --format with one of: beir, seed-json"):
        import_data(tmp_path / "notes.txt", tmp_path / "ws")


def test_cli_import(tmp_path: Path, corpus_ws: Workspace) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli, ["import", str(write_json(tmp_path / "s.json", SEED)), "-o", str(tmp_path / "ws")]
    )
    assert result.exit_code == 0, result.output
    assert "imported seed-json: 2 documents, 3 queries" in result.output and "qadapter split" in result.output
    log = write_lines(tmp_path / "log.jsonl", [{"query": "refunds", "doc_ids": ["faq-2"]}])
    result = runner.invoke(
        cli, ["import", str(log), "-o", str(tmp_path / "ws2"), "--corpus", str(corpus_ws.path), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "workspace": str(tmp_path / "ws2"),
        "format": "querylog",
        "documents": 3,
        "queries": 1,
        "qrels": {"log": 1},
    }


@pytest.mark.integration
def test_cli_import_error_in_subprocess(tmp_path: Path, corpus_ws: Workspace) -> None:
    log = write_lines(tmp_path / "log.jsonl", ["{not json"])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "qadapter",
            "import",
            str(log),
            "-o",
            str(corpus_ws.path),
            "--format",
            "querylog",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {log}:1: not valid JSON")


# -- query sources add up (issue 13 item 3) ------------------------------------------------------------------------
def _run(args: list[str]) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_query_log_joins_generated_queries(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.write_corpus(
        Document(f"d{i}", f"Section {i} explains how the widget number {i} is calibrated and cleaned.")
        for i in range(6)
    )
    _run(["generate", str(ws.path), "--offline", "--per-chunk", "2"])
    generated = ws.queries()
    splits_before = set(ws.splits())
    assert "generated" in splits_before
    log = write_lines(
        tmp_path / "log.jsonl",
        [
            {"query": f"how do I calibrate widget {i}?", "doc_ids": [f"d{i}"], "user": f"u{i}"}
            for i in range(5)
        ]
        + [{"query": "clean widget 5", "doc_ids": ["d5"], "id": "log-1"}],  # an explicit id
    )
    summary = _run(["import", str(log), "-o", str(ws.path)])
    assert summary["qrels"] == {"log": 6}
    queries = ws.queries()
    assert {qid: q.text for qid, q in queries.items() if qid in generated} == {
        qid: q.text for qid, q in generated.items()
    }  # every generated query is still there, unchanged
    logged = {qid: q for qid, q in queries.items() if q.metadata.get("source") == "log"}
    assert len(logged) == 6 and len(queries) == len(generated) + 6
    assert logged["log-1"].text == "clean widget 5"  # the explicit id is kept; numbered ones moved past it
    assert set(ws.splits()) == splits_before | {"log"}
    assert set(ws.qrels("log")) == set(logged)
    split = _run(["split", str(ws.path), "--from", "log"])
    assert set(split["queries"]) == {"log-train", "log-test"}
    assert set(ws.splits()) == splits_before | {"log", "log-train", "log-test"}
    assert set(ws.qrels("log-train")) | set(ws.qrels("log-test")) == set(logged)
    # importing the same log again changes nothing but needs --overwrite for its split
    result = CliRunner().invoke(cli, ["import", str(log), "-o", str(ws.path)])
    assert result.exit_code != 0 and "--overwrite" in str(result.exception)
    _run(["import", str(log), "-o", str(ws.path), "--overwrite"])
    assert ws.queries() == queries


def test_ids_within_one_log(tmp_path: Path, corpus_ws: Workspace) -> None:
    log = write_lines(
        tmp_path / "log.jsonl",
        [{"query": "refunds?", "doc_ids": ["faq-2"]}, {"query": "x", "doc_ids": ["faq-1"], "id": "log-1"}],
    )
    ws = import_data(log, corpus_ws.path)  # the made-up id steps aside for the one the log gives
    assert {qid: q.text for qid, q in ws.queries().items()} == {"log-2": "refunds?", "log-1": "x"}
    log.write_text(
        json.dumps({"query": "a", "doc_ids": ["faq-1"], "id": "u"})
        + "\n"
        + json.dumps({"query": "b", "doc_ids": ["faq-1"], "id": "u"})
        + "\n"
    )
    with pytest.raises(DataError, match="log.jsonl:2: query id 'u' is already used by a different query"):
        import_data(log, tmp_path / "ws", corpus=corpus_ws.path)


def test_an_explicit_id_that_names_another_query_is_refused(tmp_path: Path, corpus_ws: Workspace) -> None:
    corpus_ws.write_queries([Query("u1", "an older question")])
    corpus_ws.write_qrels("generated", {"u1": {"faq-1": 1}})
    log = write_lines(tmp_path / "log.jsonl", [{"query": "refunds?", "doc_ids": ["faq-2"], "id": "u1"}])
    with pytest.raises(DataError, match=r"queries.jsonl: query id 'u1' is already used by a different query"):
        import_data(log, corpus_ws.path)
    assert corpus_ws.splits() == ["generated"] and list(corpus_ws.queries()) == ["u1"]
