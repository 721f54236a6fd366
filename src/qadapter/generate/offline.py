"""Pseudo-queries taken from the chunks themselves, for when no LLM is at hand.

These are weaker training data than an LLM's questions: they reuse the chunk's own wording, so they teach the
adapter less about how users phrase things. They exist so the whole pipeline (generate, embed, train, evaluate)
runs anywhere, offline and for free. Three kinds, in this order:

- headings: the document title and Markdown headings in the chunk (what a user scanning a manual looks for);
- keyword queries: the chunk's most distinctive words by TF-IDF over the corpus (keyword-style searches);
- sentences removed from their context, the Inverse Cloze Task of Lee et al. (2019, "Latent Retrieval for Weakly
  Supervised Open Domain Question Answering"): an informative sentence is a query whose answer is its chunk.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping

from qadapter.data.types import Document

GENERATOR = "offline"
MODEL = "offline-pseudo-queries"
PROMPT = "offline"
PROMPT_VERSION = "1"

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]{2,}")
_STOP = frozenset(
    """the and for are but not you all any can had her was one our out day get has him his how man new now old see two
    way who boy did its let put say she too use that with have this will your from they know want been good much some
    time very when come here just like long make many more only over such take than them well were what which while
    would there their about after again also into most other these those through where being could should each may
    might must shall upon because before between during under until within without does done doing then thus""".split()  # noqa: SIM905
)


def split_sentences(text: str) -> list[str]:
    """Sentences of a chunk, one per line break or sentence end."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n|\n(?=\s*[-*#])", text):
        block = " ".join(block.split())
        out.extend(s.strip() for s in _SENTENCE.split(block) if s.strip())
    return out


def _terms(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP]


def document_frequencies(corpus: Mapping[str, Document]) -> tuple[Counter, int]:
    df: Counter = Counter()
    for doc in corpus.values():
        df.update(set(_terms(doc.full_text)))
    return df, len(corpus)


def pseudo_queries(
    doc: Document,
    n: int,
    df: Counter,
    num_docs: int,
    *,
    min_words: int = 5,
    max_words: int = 40,
    keywords: int = 4,
) -> list[str]:
    """Up to ``n`` pseudo-queries for one document: headings, one keyword query, then informative sentences."""

    def idf(term: str) -> float:
        return math.log((1 + num_docs) / (1 + df.get(term, 0))) + 1.0

    if n <= 0:
        return []
    candidates = [
        *_headings(doc),
        *_keyword_query(doc, idf, keywords),
        *_informative_sentences(doc, idf, min_words, max_words),
    ]
    out: list[str] = []
    seen: set[str] = set()
    for candidate in candidates:
        text = " ".join(candidate.split()).strip(" #*-:")
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
            if len(out) == n:
                break
    return out


def _headings(doc: Document) -> list[str]:
    """The title and the Markdown headings with at least two words, one of them not a stop word."""
    headings = ([doc.title] if doc.title else []) + _HEADING.findall(doc.text)
    return [h for h in headings if len(_terms(h)) >= 1 and len(h.split()) >= 2]


def _keyword_query(doc: Document, idf: Callable[[str], float], keywords: int) -> list[str]:
    """The chunk's most distinctive words by TF-IDF, as one keyword query (none for fewer than two terms)."""
    counts = Counter(_terms(doc.text))
    ranked = sorted(counts, key=lambda t: (-counts[t] * idf(t), t))
    return [" ".join(ranked[:keywords])] if len(ranked) >= 2 else []


def _informative_sentences(
    doc: Document, idf: Callable[[str], float], min_words: int, max_words: int
) -> list[str]:
    """Sentences of a sensible length, most informative first (ties keep their order in the chunk)."""
    sentences = [
        s for s in split_sentences(_HEADING.sub("", doc.text)) if min_words <= len(s.split()) <= max_words
    ]
    scored = []
    for position, sentence in enumerate(sentences):
        terms = _terms(sentence)
        if not terms:
            continue
        # Mean IDF rewards sentences full of distinctive words; the length bonus prefers complete statements.
        score = sum(idf(t) for t in terms) / len(terms) + 0.05 * min(len(terms), 15)
        scored.append((-score, position, sentence))
    return [sentence for _, _, sentence in sorted(scored)]


def offline_queries(corpus: Mapping[str, Document], n: int) -> dict[str, list[str]]:
    """Pseudo-queries for every document of the corpus (deterministic: same corpus, same queries)."""
    df, num_docs = document_frequencies(corpus)
    return {doc_id: pseudo_queries(doc, n, df, num_docs) for doc_id, doc in corpus.items()}
