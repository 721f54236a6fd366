"""The workspace: BEIR-format corpus, queries and qrels on disk, and deterministic splits."""

from qadapter.data.types import Document, Qrels, Query, Run
from qadapter.data.workspace import (
    Workspace,
    read_corpus,
    read_qrels,
    read_queries,
    write_corpus,
    write_qrels,
    write_queries,
)

__all__ = [
    "Document",
    "Qrels",
    "Query",
    "Run",
    "Workspace",
    "read_corpus",
    "read_qrels",
    "read_queries",
    "write_corpus",
    "write_qrels",
    "write_queries",
]
