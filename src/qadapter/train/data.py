"""The train stage's data: the queries of one or more splits with their cached embeddings, which of them are real,
offline pseudo-queries for the training documents and an optional out-of-domain negative pool."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qadapter.data.workspace import Workspace
from qadapter.encoders import Encoder
from qadapter.errors import DataError
from qadapter.train.selection import Augmentation

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """Training queries (rows of ``Q``, judged by ``rels`` on rows of ``D``) merged over ``splits``."""

    splits: tuple[str, ...]
    query_ids: list[str]
    Q: np.ndarray
    doc_ids: list[str]
    D: np.ndarray
    rels: list[dict[int, int]]

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return [(q, d) for q, docs in enumerate(self.rels) for d, g in docs.items() if g > 0]

    @property
    def training_docs(self) -> set[int]:
        return {d for _, d in self.pairs}

    @property
    def coverage(self) -> float:
        """Share of the corpus whose documents have training queries."""
        return len(self.training_docs) / max(1, len(self.doc_ids))


def check_splits(ws: Workspace, splits: Sequence[str]) -> None:
    """Refuse missing splits in one line that says how to make them (``qadapter split``)."""
    available = ws.splits()
    missing = [s for s in splits if s not in available]
    if missing:
        hint = (
            f"make train/test splits first with 'qadapter split {ws.path}'"
            if not available or available == ["all"]
            else "pass one of them with --split"
        )
        raise DataError(
            f"{ws.path}: no qrels for split(s) {', '.join(repr(s) for s in missing)} "
            f"(available splits: {', '.join(available) or 'none'}); {hint}"
        )


def load_training_data(
    ws: Workspace, splits: Sequence[str], encoder: Encoder, progress: bool
) -> TrainingData:
    """Embed (or read from the cache) the corpus and the queries of ``splits``; a query in several splits counts
    once, with the judgements of the first split that has it."""
    from qadapter.embedding import embed_workspace

    check_splits(ws, splits)
    corpus, embedded = embed_workspace(ws, list(splits), model=encoder, progress=progress)
    doc_index = corpus.index()
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    rels: list[dict[int, int]] = []
    seen: set[str] = set()
    for name in splits:
        part = embedded[name]
        for row, qid in enumerate(part.query_ids):
            if qid in seen:
                continue
            seen.add(qid)
            ids.append(qid)
            vectors.append(part.embeddings[row])
            rels.append({doc_index[d]: g for d, g in part.qrels[qid].items() if g > 0 and d in doc_index})
    dim = corpus.embeddings.shape[1]
    Q = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), dtype=np.float32)
    return TrainingData(tuple(splits), ids, Q, corpus.doc_ids, corpus.embeddings, rels)


def is_synthetic(metadata: dict) -> bool:
    """A query written by a generator (LLM or offline), as opposed to a real (labelled or logged) one."""
    return "generator" in metadata


def real_share(ws: Workspace, query_ids: Sequence[str]) -> float:
    queries = ws.queries()
    real = sum(1 for q in query_ids if q in queries and not is_synthetic(queries[q].metadata))
    return real / max(1, len(query_ids))


def query_repeats(ws: Workspace, query_ids: Sequence[str], real_weight: float) -> np.ndarray | None:
    """How many times each training query enters a fit so that real queries weigh ``real_weight`` times synthetic
    ones (rounded to whole repeats: 2.0 repeats every real query twice, 0.5 every synthetic one twice)."""
    if real_weight == 1.0:
        return None
    queries = ws.queries()
    real = np.array([q in queries and not is_synthetic(queries[q].metadata) for q in query_ids])
    up = max(1, int(np.floor(real_weight + 0.5)))
    down = max(1, int(np.floor(1.0 / real_weight + 0.5)))
    return np.where(real, up, down).astype(np.int64)


def offline_share(ws: Workspace, query_ids: Sequence[str]) -> float:
    """Share of ``query_ids`` written by the offline pseudo-query generator (from their provenance metadata)."""
    from qadapter.generate.offline import GENERATOR

    queries = ws.queries()
    offline = sum(1 for q in query_ids if q in queries and queries[q].metadata.get("generator") == GENERATOR)
    return offline / max(1, len(query_ids))


#: the most pseudo-queries embedded for one training run (a random sample of training documents gets them above it)
PSEUDO_QUERY_BUDGET = 20_000


def pseudo_queries(
    ws: Workspace, doc_ids: Sequence[str], train_docs: set[int], n: int, encoder: Encoder, progress: bool
) -> Augmentation | None:
    """Offline pseudo-queries (headings, keywords, sentences cut from the chunk) for the training documents only.

    They add cheap, document-grounded training pairs; on a development split of AppleQA (questions 13-16 held out
    from the training questions) they lifted hit@10 from 0.786 to 0.807 (benchmarks/results/recipe_dev.md).
    """
    from qadapter.embedding import cache_for
    from qadapter.encoders import embed
    from qadapter.generate.offline import offline_queries

    if n <= 0 or not train_docs:
        return None
    corpus = ws.corpus()
    docs = sorted(train_docs)
    if len(docs) * n > PSEUDO_QUERY_BUDGET:
        # a fit draws at most max_training_pairs pairs: more pseudo-queries than this would be embedded for nothing
        keep = np.random.default_rng(0).choice(len(docs), size=PSEUDO_QUERY_BUDGET // n, replace=False)
        logger.info("pseudo-queries for %d of the %d training documents", len(keep), len(docs))
        docs = [docs[i] for i in np.sort(keep)]
    chosen = {doc_ids[d]: corpus[doc_ids[d]] for d in docs}
    generated = offline_queries(chosen, n)
    index = {d: i for i, d in enumerate(doc_ids)}
    texts, rels = [], []
    for doc_id, queries in generated.items():
        for text in queries:
            texts.append(text)
            rels.append({index[doc_id]: 1})
    if not texts:
        return None
    with cache_for(ws) as cache:
        vectors = embed(
            encoder, texts, kind="query", cache=cache, progress=progress, desc="embedding pseudo-queries"
        )
    return Augmentation(vectors, rels)


def negative_pool(source: str | Path, encoder: Encoder, ws: Workspace, progress: bool) -> np.ndarray:
    """Embed an out-of-domain negative pool: a workspace folder, or documents to ingest (e.g. a PDF)."""
    from qadapter.embedding import cache_for, embed_corpus

    source = Path(source)
    pool_ws = Workspace(source)
    if not pool_ws.exists():
        import hashlib

        from qadapter.ingest import ingest

        key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
        pool_ws = Workspace(ws.state_dir / "negatives" / key)
        if not pool_ws.exists():
            ingest([source], pool_ws.path, overwrite=True, progress=progress)
    with cache_for(ws) as cache:
        return embed_corpus(pool_ws, encoder, cache=cache, progress=progress).embeddings
