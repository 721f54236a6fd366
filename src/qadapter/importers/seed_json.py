"""The notebook's JSON: ``[{"chunk_index": 0, "input_chunk": "...", "questions": {"question_1": "...", ...}}]``.

Ids match the BEIR conversion in ``../shared/data/appleqa`` (document ``chunk_<chunk_index>``, query
``q<chunk_index>_<n>`` for ``question_<n>``), so results on either are comparable. All pairs go to split ``all``;
make train/test splits with :func:`qadapter.data.splits.make_splits` (``qadapter split``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qadapter.data import Document, Qrels, Query
from qadapter.data.ids import validate_id
from qadapter.errors import DataError
from qadapter.importers.base import ImportedData, Importer, load_json, peek_json, text_of

_QUESTION_KEY = re.compile(r"question[_ ]?(\d+)$", re.IGNORECASE)


def _looks_like(data: Any) -> bool:
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], dict)
        and "input_chunk" in data[0]
        and "questions" in data[0]
    )


def detect(path: Path) -> bool:
    return _looks_like(peek_json(path))


def _questions(where: str, value: Any) -> list[tuple[int, str]]:
    """``(n, text)`` for ``{"question_n": text}`` or a plain list (numbered from 1)."""
    if isinstance(value, list):
        items = [(n, q) for n, q in enumerate(value, start=1)]
    elif isinstance(value, dict):
        items = []
        for position, (key, q) in enumerate(value.items(), start=1):
            match = _QUESTION_KEY.match(str(key))
            items.append((int(match.group(1)) if match else position, q))
    else:
        raise DataError(f"{where}: 'questions' must be an object or a list, got {type(value).__name__}")
    seen: set[int] = set()
    out = []
    for n, q in items:
        if n in seen:
            raise DataError(f"{where}: question number {n} appears twice")
        seen.add(n)
        out.append((n, text_of(q, where=where, what=f"question {n}")))
    return out


def load(path: Path, corpus: Mapping[str, Document] | None = None) -> ImportedData:
    data = load_json(path)
    if not isinstance(data, list):
        raise DataError(
            f"{path}: expected a JSON list of {{chunk_index, input_chunk, questions}} objects, got {type(data).__name__}"
        )
    if not data:
        raise DataError(f"{path}: the list is empty; nothing to import")
    docs: list[Document] = []
    queries: list[Query] = []
    qrels: Qrels = {}
    seen: set[str] = set()
    for position, item in enumerate(data):
        where = f"{path}: item {position}"
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected an object, got {type(item).__name__}")
        missing = [key for key in ("input_chunk", "questions") if key not in item]
        if missing:
            raise DataError(f"{where}: missing field(s) {missing} (fields present: {sorted(item)})")
        index = item.get("chunk_index", position)
        if isinstance(index, bool) or not isinstance(index, int | str):
            raise DataError(f"{where}: 'chunk_index' must be a number, got {type(index).__name__}")
        doc_id = validate_id(f"chunk_{index}", where=where, what="document id (from chunk_index)")
        if doc_id in seen:
            raise DataError(f"{where}: chunk_index {index} appears twice; chunk indexes must be unique")
        seen.add(doc_id)
        docs.append(Document(doc_id, text_of(item["input_chunk"], where=where, what="'input_chunk'")))
        for n, question in _questions(where, item["questions"]):
            query_id = validate_id(f"q{index}_{n}", where=where, what="query id")
            queries.append(Query(query_id, question))
            qrels[query_id] = {doc_id: 1}
    return ImportedData(docs, queries, {"all": qrels})


IMPORTER = Importer("seed-json", "the notebook's JSON [{chunk_index, input_chunk, questions}]", detect, load)
