"""Bounded fuzzing of every importer: whatever the bytes, the result is a workspace or a one-line QadapterError,
never another exception (issue 10: "a fuzz test ... of the importers, bounded in time, in the suite").

Inputs are drawn near the real formats (right field names, hostile values: control characters, lone surrogates,
huge and non-finite numbers, deep nesting, wrong types) plus raw bytes. About 10 s of CPU in all.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qadapter.data import Document, Workspace
from qadapter.errors import QadapterError
from qadapter.importers import import_data

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
    database=None,
)

texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["doc\t0", "a\nb", "\ud800", " x", "d1", "faq-1", "", "log-1", "all", "../x"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
RAW_NUMBERS = ["1e400", "NaN", "-Infinity", "9" * 5000, "[" * 3000 + "]" * 3000]


def dumps(value: object) -> str:
    return json.dumps(
        value, ensure_ascii=True
    )  # lone surrogates survive as \\ud800 escapes, as in real files


@st.composite
def jsonl_lines(draw: st.DrawFn, keys: list[str]) -> str:
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        record = {
            key: draw(values)
            for key in draw(st.lists(st.sampled_from(keys), max_size=len(keys), unique=True))
        }
        line = dumps(record)
        if draw(st.integers(0, 5)) == 0:  # a hostile raw number spliced in where JSON allows a value
            line = line[:-1] + (", " if record else "") + f'"n": {draw(st.sampled_from(RAW_NUMBERS))}}}'
        lines.append(line)
    return "\n".join(lines) + "\n"


def run_import(files: dict[str, str | bytes], **kwargs: object) -> None:
    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        for name, content in files.items():
            path = root / "src" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", errors="surrogatepass")
        source = root / "src" / next(iter(files)) if len(files) == 1 else root / "src"
        corpus = root / "corpus"
        Workspace(corpus).write_corpus(
            [Document("d1", "Solar powers the campus."), Document("faq-1", "Refunds.")]
        )
        try:
            ws = import_data(source, root / "ws", corpus=corpus, **kwargs)  # type: ignore[arg-type]
        except QadapterError as exc:
            assert "\n" not in str(exc)
            assert not (root / "ws").exists()  # nothing half-written
        else:
            for split in ws.splits():  # what was written reads back
                ws.qrels(split)
            ws.queries()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@FUZZ
@given(jsonl_lines(["query", "doc_ids", "doc_texts", "score", "id", "split", "ts"]))
def test_fuzz_query_log(text: str) -> None:
    run_import({"log.jsonl": text}, format="querylog")


@FUZZ
@given(
    jsonl_lines(["_id", "text", "title", "metadata"]),
    jsonl_lines(["_id", "text", "metadata"]),
    st.lists(
        st.lists(st.one_of(texts, st.sampled_from(["1", "inf", "1e400", "0.5", "9" * 50])), max_size=4),
        max_size=4,
    ),
)
def test_fuzz_beir(corpus: str, queries: str, rows: list[list[str]]) -> None:
    qrels = "query-id\tcorpus-id\tscore\n" + "".join("\t".join(row) + "\n" for row in rows)
    run_import({"corpus.jsonl": corpus, "queries.jsonl": queries, "qrels/test.tsv": qrels}, format="beir")


@FUZZ
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["chunk_index", "input_chunk", "questions"]), values), max_size=4
    )
)
def test_fuzz_seed_json(items: list[dict]) -> None:
    run_import({"seed.json": dumps(items)}, format="seed-json")


@FUZZ
@given(st.fixed_dictionaries({"queries": values, "corpus": values, "relevant_docs": values}))
def test_fuzz_llamaindex(data: dict) -> None:
    run_import({"li.json": dumps(data)}, format="llamaindex")


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["auto", "seed-json", "llamaindex", "querylog"]))
def test_fuzz_raw_bytes(data: bytes, fmt: str) -> None:
    name = {"auto": "x.json", "seed-json": "x.json", "llamaindex": "x.json", "querylog": "x.jsonl"}[fmt]
    run_import({name: data}, format=fmt)


@pytest.mark.parametrize("raw", RAW_NUMBERS)
def test_hostile_numbers_in_every_json_format(raw: str) -> None:
    run_import({"seed.json": f'[{{"chunk_index": {raw}, "input_chunk": "x", "questions": ["q"]}}]'})
    run_import({"log.jsonl": f'{{"query": "x", "doc_ids": ["d1"], "score": {raw}}}\n'}, format="querylog")
