"""The embed stage: encode a workspace's corpus and queries once, through the on-disk cache.

Everything downstream (training, evaluation, stores) works on the arrays returned here, so no text is encoded twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.core.device import DEFAULT_PRECISION
from qadapter.data.lock import workspace_lock
from qadapter.data.types import Qrels
from qadapter.data.workspace import Workspace
from qadapter.encoders import EmbeddingCache, Encoder, embed, get_encoder
from qadapter.errors import DataError

logger = logging.getLogger(__name__)

#: the workspace's embedding cache folder (under ``.qadapter/``); see :mod:`qadapter.encoders.cache`
CACHE_DIR = "embeddings"
#: the version-1 cache file, keyed by model *name*: never read again (two models could share a name)
LEGACY_CACHE_FILE = "embeddings.sqlite"


@dataclass
class EmbeddedCorpus:
    doc_ids: list[str]
    embeddings: np.ndarray

    def index(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self.doc_ids)}


@dataclass
class EmbeddedQueries:
    """Queries of one split with their embeddings and judgements (only queries that have qrels)."""

    split: str
    query_ids: list[str]
    texts: list[str]
    embeddings: np.ndarray
    qrels: Qrels

    def pairs(self, doc_index: dict[str, int]) -> list[tuple[int, int]]:
        """(query row, document row) for every relevant judgement."""
        out = []
        for row, qid in enumerate(self.query_ids):
            for doc_id, score in self.qrels[qid].items():
                if score > 0 and doc_id in doc_index:
                    out.append((row, doc_index[doc_id]))
        return out

    def subset(self, rows: Iterable[int]) -> EmbeddedQueries:
        rows = list(rows)
        ids = [self.query_ids[r] for r in rows]
        return EmbeddedQueries(
            self.split,
            ids,
            [self.texts[r] for r in rows],
            self.embeddings[rows],
            {q: self.qrels[q] for q in ids},
        )


def cache_for(ws: Workspace, *, dtype: str = "float32") -> EmbeddingCache:
    """The workspace's embedding cache (vectors stored as ``dtype``: ``float32``, or ``float16`` for half the size)."""
    legacy = ws.state_dir / LEGACY_CACHE_FILE
    if legacy.exists():
        logger.warning(
            "%s is an embedding cache of an older format keyed by model name; it is ignored (vectors are "
            "re-encoded once) and can be deleted",
            legacy,
        )
    # only one process encodes into a workspace at a time: a second one fails at once, naming the first
    return EmbeddingCache(
        ws.state_dir / CACHE_DIR, dtype=dtype, writer_lock=lambda: workspace_lock(ws.path, "embed")
    )


def embed_corpus(
    ws: Workspace,
    encoder: Encoder,
    *,
    cache: EmbeddingCache | None = None,
    progress: bool = False,
    engine: str = "local",
) -> EmbeddedCorpus:
    corpus = ws.corpus()
    ids = list(corpus)
    texts = [corpus[i].full_text for i in ids]
    vectors = embed(
        encoder,
        texts,
        kind="document",
        cache=cache,
        progress=progress,
        desc="embedding documents",
        engine=engine,
    )
    return EmbeddedCorpus(ids, vectors)


def embed_split(
    ws: Workspace,
    split: str,
    encoder: Encoder,
    *,
    cache: EmbeddingCache | None = None,
    corpus_ids: Iterable[str] | None = None,
    progress: bool = False,
    engine: str = "local",
) -> EmbeddedQueries:
    """Embed the queries judged in ``split``. Judgements on documents missing from the corpus are an error."""
    qrels = ws.qrels(split)
    queries = ws.queries()
    missing_q = [q for q in qrels if q not in queries]
    if missing_q:
        raise DataError(
            f"{ws.qrels_path(split)}: {len(missing_q)} query ids are not in {ws.queries_path.name} "
            f"(first: {missing_q[0]!r}); the qrels and queries files do not belong together"
        )
    if corpus_ids is not None:
        known = set(corpus_ids)
        unknown = sorted({d for docs in qrels.values() for d in docs if d not in known})
        if unknown:
            raise DataError(
                f"{ws.qrels_path(split)}: {len(unknown)} document ids are not in corpus.jsonl (first: {unknown[0]!r})"
            )
    ids = [q for q in qrels if any(s > 0 for s in qrels[q].values())]
    if not ids:
        raise DataError(f"{ws.qrels_path(split)}: no query has a relevant document (score > 0)")
    texts = [queries[q].text for q in ids]
    vectors = embed(
        encoder,
        texts,
        kind="query",
        cache=cache,
        progress=progress,
        desc=f"embedding {split} queries",
        engine=engine,
    )
    return EmbeddedQueries(split, ids, texts, vectors, {q: qrels[q] for q in ids})


def embed_workspace(
    path: str | Path | Workspace,
    splits: Iterable[str] | None = None,
    *,
    model: str | Encoder | None = None,
    progress: bool = False,
    device: str = "auto",
    precision: str = DEFAULT_PRECISION,
    cache_dtype: str = "float32",
    engine: str = "local",
) -> tuple[EmbeddedCorpus, dict[str, EmbeddedQueries]]:
    """Embed the corpus and the queries of ``splits`` (default: all splits) into the workspace cache.

    ``device`` places a model given by name (``auto|cpu|cuda|mps``) and ``precision`` is the dtype it computes in
    (``float32|float16|bfloat16``; vectors of each precision are cached apart); ``cache_dtype`` is how new vectors are
    stored; ``engine`` is where encoding runs (``local``, or ``ray`` for a Ray Data actor pool).
    """
    ws = path if isinstance(path, Workspace) else Workspace(path)
    encoder = (
        model
        if model is not None and not isinstance(model, str)
        else get_encoder(model or DEFAULT_MODEL, device=device, precision=precision)
    )
    with cache_for(ws, dtype=cache_dtype) as cache:
        corpus = embed_corpus(ws, encoder, cache=cache, progress=progress, engine=engine)
        names = list(splits) if splits is not None else ws.splits()
        out = {
            s: embed_split(
                ws, s, encoder, cache=cache, corpus_ids=corpus.doc_ids, progress=progress, engine=engine
            )
            for s in names
        }
    return corpus, out
