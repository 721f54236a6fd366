"""LlamaIndex's ``EmbeddingQAFinetuneDataset`` JSON: ``{"queries": {id: text}, "corpus": {id: text},
"relevant_docs": {query_id: [doc_id, ...]}}`` (what ``generate_qa_embedding_pairs(...).save_json`` writes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qadapter.data import Document, Qrels, Query
from qadapter.data.ids import validate_id
from qadapter.errors import DataError
from qadapter.importers.base import ImportedData, Importer, load_json, peek_json, text_of

_KEYS = ("queries", "corpus", "relevant_docs")


def detect(path: Path) -> bool:
    data = peek_json(path)
    return isinstance(data, dict) and all(key in data for key in _KEYS)


def _mapping(path: Path, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data[key]
    if not isinstance(value, dict):
        raise DataError(f"{path}: '{key}' must be an object of id -> value, got {type(value).__name__}")
    return value


def _ids(path: Path, mapping: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    """The entries of ``mapping`` with their keys checked as ids (no tabs, newlines or control characters)."""
    return [(validate_id(k, where=f"{path}: '{key}'", what="id"), v) for k, v in mapping.items()]


def load(path: Path, corpus: Mapping[str, Document] | None = None) -> ImportedData:
    data = load_json(path)
    if not isinstance(data, dict) or any(key not in data for key in _KEYS):
        present = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataError(f"{path}: expected an object with keys {list(_KEYS)}, got {present}")
    docs = {
        doc_id: Document(doc_id, text_of(text, where=f"{path}: corpus[{doc_id!a}]", what="the text"))
        for doc_id, text in _ids(path, _mapping(path, data, "corpus"), "corpus")
    }
    if not docs:
        raise DataError(f"{path}: 'corpus' is empty; nothing to import")
    queries = {
        qid: Query(qid, text_of(text, where=f"{path}: queries[{qid!a}]", what="the text"))
        for qid, text in _ids(path, _mapping(path, data, "queries"), "queries")
    }
    qrels: Qrels = {}
    for qid, doc_ids in _mapping(path, data, "relevant_docs").items():
        where = f"{path}: relevant_docs[{qid!a}]"
        if str(qid) not in queries:
            raise DataError(f"{where}: query id {qid!a} is not in 'queries'")
        if isinstance(doc_ids, str):
            doc_ids = [doc_ids]
        if not isinstance(doc_ids, list):
            raise DataError(f"{where}: expected a list of document ids, got {type(doc_ids).__name__}")
        for doc_id in doc_ids:
            if str(doc_id) not in docs:
                raise DataError(f"{where}: document id {str(doc_id)[:60]!a} is not in 'corpus'")
            qrels.setdefault(str(qid), {})[str(doc_id)] = 1
    return ImportedData(list(docs.values()), list(queries.values()), {"all": qrels})


IMPORTER = Importer(
    "llamaindex", "LlamaIndex EmbeddingQAFinetuneDataset JSON {queries, corpus, relevant_docs}", detect, load
)
