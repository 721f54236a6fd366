"""Quality filters for generated questions: empty, too short or long, copied from the chunk, near-duplicates.

A question that repeats the chunk verbatim teaches the adapter nothing a lexical match would not; near-duplicates
only weight a chunk more. Each rejected question keeps its reason, so the summary can say what was dropped and why.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from qadapter.encoders.base import Encoder

_WORD = re.compile(r"\w+", re.UNICODE)
_LEADING_LABEL = re.compile(r"^\s*(?:(?:question|q|query)\s*\d*\s*[:.)-]|\d{1,3}\s*[.):-])\s*", re.IGNORECASE)


@dataclass
class FilterReport:
    """What each filter removed."""

    kept: int = 0
    rejected: Counter = field(default_factory=Counter)

    def merge(self, other: FilterReport) -> None:
        self.kept += other.kept
        self.rejected.update(other.rejected)


def clean_question(text: str) -> str:
    """Normalise whitespace and strip list labels and wrapping quotes (``"1. ..."``, ``Q3: ...``)."""
    text = " ".join(text.split())
    text = _LEADING_LABEL.sub("", text)
    return text.strip().strip("\"'\u201c\u201d").strip()


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def copy_ratio(question: str, chunk: str, n: int = 3) -> float:
    """Share of the question's word n-grams that occur in the chunk (1.0: every phrase is copied)."""
    q = _words(question)
    if len(q) < n:
        return 0.0
    c = _words(chunk)
    chunk_grams = {tuple(c[i : i + n]) for i in range(len(c) - n + 1)}
    grams = [tuple(q[i : i + n]) for i in range(len(q) - n + 1)]
    return sum(g in chunk_grams for g in grams) / len(grams)


def filter_questions(
    questions: Sequence[str],
    chunk: str,
    *,
    max_chars: int = 300,
    min_words: int = 2,
    copy_threshold: float = 0.8,
    min_copy_words: int = 6,
) -> tuple[list[str], FilterReport]:
    """Clean the questions and drop empty, too short, too long, exact-duplicate and chunk-copying ones.

    A question counts as copied when at least ``copy_threshold`` of its word trigrams appear in the chunk and it
    has at least ``min_copy_words`` words (short keyword queries naturally reuse the chunk's terms).
    """
    report = FilterReport()
    kept: list[str] = []
    seen: set[str] = set()
    for raw in questions:
        q = clean_question(raw)
        words = _words(q)
        if not q or not words:
            report.rejected["empty"] += 1
        elif len(words) < min_words:
            report.rejected["too short"] += 1
        elif len(q) > max_chars:
            report.rejected["too long"] += 1
        elif " ".join(words) in seen:
            report.rejected["duplicate"] += 1
        elif len(words) >= min_copy_words and copy_ratio(q, chunk) >= copy_threshold:
            report.rejected["copies the chunk"] += 1
        else:
            seen.add(" ".join(words))
            kept.append(q)
    report.kept = len(kept)
    return kept, report


def near_duplicates(embeddings: np.ndarray, threshold: float) -> list[int]:
    """Indices to keep: greedily, each row is dropped when its cosine similarity to a kept row is >= threshold."""
    if len(embeddings) == 0:
        return []
    x = np.asarray(embeddings, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sims = x @ x.T
    keep: list[int] = []
    for i in range(len(x)):
        if not keep or float(np.max(sims[i, keep])) < threshold:
            keep.append(i)
    return keep


def dedup_by_embedding(
    groups: dict[str, list[str]],
    encoder: Encoder,
    threshold: float,
    *,
    embed_fn=None,  # noqa: ANN001 - a callable(texts) -> array, to route through the embedding cache
) -> tuple[dict[str, list[str]], int]:
    """Remove near-duplicate questions within each chunk (not across chunks: two chunks may share a question).

    All questions are encoded in one call, so the cost is one pass of the encoder. Returns (kept groups, removed).
    """
    texts = [q for qs in groups.values() for q in qs]
    if not texts:
        return {k: list(v) for k, v in groups.items()}, 0
    vectors = embed_fn(texts) if embed_fn is not None else encoder.encode(texts, kind="query")
    out: dict[str, list[str]] = {}
    removed = 0
    start = 0
    for key, qs in groups.items():
        block = vectors[start : start + len(qs)]
        start += len(qs)
        keep = near_duplicates(block, threshold)
        out[key] = [qs[i] for i in keep]
        removed += len(qs) - len(keep)
    return out, removed
