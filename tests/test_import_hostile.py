"""Hostile and careless inputs at every entry point: a one-line DataError (or correct handling), nothing written.

Issue 10 item 5 (ids with a tab or newline corrupt the qrels file) and item 8 (BEIR scores inf/1e400, lone
surrogates, 5,000-digit integers, a byte-order mark).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qadapter.cli import main
from qadapter.data import Document, Query, Workspace, read_qrels
from qadapter.data.ids import validate_id
from qadapter.errors import DataError
from qadapter.importers import import_data


def beir(root: Path, corpus: str | None = None, queries: str | None = None, qrels: str | None = None) -> Path:
    """A small BEIR folder; any file can be replaced by raw text."""
    root.mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        corpus or '{"_id": "d1", "text": "Solar powers the campus."}\n{"_id": "d2", "text": "Water."}\n',
        encoding="utf-8",
    )
    (root / "queries.jsonl").write_text(
        queries or '{"_id": "q1", "text": "What powers it?"}\n', encoding="utf-8"
    )
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text(
        qrels or "query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8"
    )
    return root


def refused(source: Path, out: Path, match: str, **kwargs: object) -> str:
    with pytest.raises(DataError, match=match) as info:
        import_data(source, out, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and "\t" not in message
    assert not out.exists() or not (out / "qrels").exists() or out.name == "ingested"
    return message


# -- ids ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["doc\t0", "doc\n0", "doc\r0", "doc\x00", "doc\u2028x", "doc\x85", " doc"])
def test_validate_id_refuses_control_characters(bad: str) -> None:
    with pytest.raises(DataError, match="where: id") as info:
        validate_id(bad, where="where")
    assert "\n" not in str(info.value)


def test_validate_id_accepts_ordinary_ids() -> None:
    assert [validate_id(v, where="w") for v in ("doc-0", "chunk_12", "é/中:x y", 7)] == [
        "doc-0",
        "chunk_12",
        "é/中:x y",
        "7",
    ]


def test_beir_corpus_id_with_a_tab_is_refused(tmp_path: Path) -> None:
    corpus = json.dumps({"_id": "doc\t0", "text": "x"}) + "\n"
    refused(beir(tmp_path / "b", corpus=corpus), tmp_path / "ws", r"corpus.jsonl:1: '_id' 'doc\\t0' contains")


def test_beir_query_id_with_a_newline_is_refused(tmp_path: Path) -> None:
    queries = json.dumps({"_id": "q\n1", "text": "x"}) + "\n"
    refused(
        beir(tmp_path / "b", queries=queries), tmp_path / "ws", r"queries.jsonl:1: '_id' 'q\\n1' contains"
    )


def test_seed_json_chunk_index_with_a_tab_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "seed.json"
    src.write_text(json.dumps([{"chunk_index": "0\t1", "input_chunk": "x", "questions": ["q?"]}]))
    refused(src, tmp_path / "ws", r"item 0: document id .* contains the character U\+0009")


def test_llamaindex_id_with_a_newline_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "li.json"
    data = {"queries": {"q\n1": "q?"}, "corpus": {"n1": "x"}, "relevant_docs": {"q\n1": ["n1"]}}
    src.write_text(json.dumps(data))
    refused(src, tmp_path / "ws", r"'queries': id 'q\\n1' contains the character U\+000A")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ({"query": "x", "doc_ids": ["d1"], "id": "u\t1"}, r"log.jsonl:1: 'id' 'u\\t1' contains"),
        ({"query": "x", "doc_ids": ["d\n1"]}, r"log.jsonl:1: 'doc_ids' entry 'd\\n1' contains"),
        ({"query": "x", "doc_ids": ["d1"], "split": "a\tb"}, r"log.jsonl:1: split name 'a\\tb' is not valid"),
        ({"query": "x", "doc_ids": ["d1"], "split": "../x"}, r"log.jsonl:1: split name '../x' is not valid"),
    ],
)
def test_query_log_ids_and_splits_are_checked(tmp_path: Path, line: dict, match: str) -> None:
    corpus = Workspace(tmp_path / "ingested")
    corpus.write_corpus([Document("d1", "Solar.")])
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(line) + "\n", encoding="utf-8")
    before = sorted(p.name for p in corpus.path.rglob("*"))
    refused(log, corpus.path, match)
    assert sorted(p.name for p in corpus.path.rglob("*")) == before


def test_writers_refuse_bad_ids_so_generate_cannot_write_them(tmp_path: Path) -> None:
    """generate writes through Workspace.write_queries/write_qrels: the last line of defence for every stage."""
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(DataError, match="query id 'gen-doc\\\\t0-1' contains"):
        ws.write_qrels("generated", {"gen-doc\t0-1": {"d1": 1}})
    with pytest.raises(DataError, match="document id"):
        ws.write_corpus([Document("a\nb", "x")])
    with pytest.raises(DataError, match="query id"):
        ws.write_queries([Query("q\t", "x")])
    with pytest.raises(DataError, match="split name 'a b' is not valid"):
        ws.write_qrels("a b", {"q": {"d": 1}})
    assert not list(tmp_path.rglob("*.tsv")) and not list(tmp_path.rglob("*.jsonl"))


# -- BEIR: scores, numbers, surrogates, byte-order marks ---------------------------------------------------------------
@pytest.mark.parametrize("score", ["inf", "1e400", "nan", "-inf", "0.5", "1" * 5000, "2e3"])
def test_beir_bad_scores_are_one_line(tmp_path: Path, score: str) -> None:
    qrels = f"query-id\tcorpus-id\tscore\nq1\td1\t{score}\n"
    refused(beir(tmp_path / "b", qrels=qrels), tmp_path / "ws", r"test.tsv:2: score must be a whole number")


def test_beir_whole_number_scores_still_read(tmp_path: Path) -> None:
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\t2.0\nq1\td2\t0\n"
    ws = import_data(beir(tmp_path / "b", qrels=qrels), tmp_path / "ws")
    assert ws.qrels("test") == {"q1": {"d1": 2, "d2": 0}}


@pytest.mark.parametrize(
    ("corpus", "match"),
    [
        ('{"_id": "d1", "text": "bad \\ud800 text"}\n', "corpus.jsonl:1: text contains a lone surrogate"),
        (
            '{"_id": ' + "9" * 5000 + ', "text": "x"}\n',
            r"corpus.jsonl:1: not usable JSON \(Exceeds the limit",
        ),
        ('{"_id": "d1", "text": "x", "metadata": {"n": 1e400}}\n', "corpus.jsonl:1: not usable JSON"),
        ('{"_id": "d1", "text": "x", "metadata": {"n": NaN}}\n', "corpus.jsonl:1: not usable JSON"),
        (
            '{"_id": "d1", "text": "x", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
            "nested too deeply",
        ),
    ],
    ids=["lone-surrogate", "5000-digit-int", "1e400", "NaN", "deep-nesting"],
)
def test_beir_hostile_json_is_one_line(tmp_path: Path, corpus: str, match: str) -> None:
    refused(beir(tmp_path / "b", corpus=corpus), tmp_path / "ws", match)


def test_a_paired_surrogate_escape_is_fine(tmp_path: Path) -> None:
    corpus = '{"_id": "d1", "text": "emoji \\ud83d\\ude00"}\n{"_id": "d2", "text": "x"}\n'
    ws = import_data(beir(tmp_path / "b", corpus=corpus), tmp_path / "ws")
    assert ws.corpus()["d1"].text == "emoji \U0001f600"


def test_a_byte_order_mark_is_read_correctly(tmp_path: Path) -> None:
    src = beir(tmp_path / "b")
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        path = src / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    ws = import_data(src, tmp_path / "ws")
    assert set(ws.corpus()) == {"d1", "d2"} and ws.qrels("test") == {"q1": {"d1": 1}}


def test_qrels_that_are_not_utf8_or_not_tsv_are_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b"q1\td\xff\t1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_qrels(path)
    path.write_text("q1\t" + "x" * 200_000 + "\t1\n", encoding="utf-8")
    with pytest.raises(DataError, match="not a readable TSV file|at most 1000"):
        read_qrels(path)


def test_cli_prints_hostile_import_errors_as_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = beir(tmp_path / "b", qrels="q1\td1\t1e400\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["import", str(src), "-o", str(tmp_path / "ws")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "score must be a whole number" in err
