"""A BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``): every split is kept as it is."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from qadapter.data import Document, Qrels, Workspace
from qadapter.errors import DataError
from qadapter.importers.base import ImportedData, Importer


def detect(path: Path) -> bool:
    return path.is_dir() and (path / "corpus.jsonl").is_file()


def _check_ids(path: Path, qrels: Qrels, query_ids: set[str] | None, doc_ids: set[str]) -> None:
    """Qrels that point at missing queries or documents would silently score as misses; refuse them instead."""
    if query_ids is not None:
        unknown = sorted(q for q in qrels if q not in query_ids)
        if unknown:
            raise DataError(
                f"{path}: {len(unknown)} query id(s) are not in queries.jsonl (first: '{unknown[0]}'); "
                "fix the qrels or add the queries"
            )
    missing = sorted({d for docs in qrels.values() for d in docs if d not in doc_ids})
    if missing:
        raise DataError(
            f"{path}: {len(missing)} document id(s) are not in corpus.jsonl (first: '{missing[0]}'); "
            "fix the qrels or add the documents"
        )


def load(path: Path, corpus: Mapping[str, Document] | None = None) -> ImportedData:
    source = Workspace(path)
    docs = source.corpus()
    has_queries = source.queries_path.is_file()
    queries = source.queries() if has_queries else {}
    qrels = {}
    for split in source.splits():
        split_qrels = source.qrels(split)
        _check_ids(source.qrels_path(split), split_qrels, set(queries) if has_queries else None, set(docs))
        qrels[split] = split_qrels
    if qrels and not has_queries:
        raise DataError(f"{source.queries_path}: file not found, but {path}/qrels has judgements for queries")
    return ImportedData(list(docs.values()), list(queries.values()), qrels)


IMPORTER = Importer("beir", "a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv", detect, load)
