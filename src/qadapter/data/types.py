"""The shared vocabulary: documents, queries, qrels and runs (BEIR / TREC shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: ``qrels[query_id][doc_id] = relevance`` (graded; > 0 means relevant).
Qrels = dict[str, dict[str, int]]
#: ``run[query_id][doc_id] = score`` (higher is better).
Run = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Document:
    """One retrievable unit of the corpus (a chunk)."""

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def full_text(self) -> str:
        """The text that is embedded: the title (when there is one) followed by the text."""
        if self.title and not self.text.startswith(self.title):
            return f"{self.title}\n{self.text}"
        return self.text


@dataclass(frozen=True)
class Query:
    """A query, with optional provenance metadata (who wrote it, with which prompt)."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
