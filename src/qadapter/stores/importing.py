"""Import an existing vector-store collection into a workspace without re-embedding it.

The store's ids and documents become ``corpus.jsonl``; its stored vectors seed the workspace's embedding cache
under the encoder's name, so every later step (embed, train, evaluate) finds the corpus already embedded and only
the queries are encoded. Because those vectors are trusted as the encoder's own, a sample of documents is first
re-embedded and compared with the stored vectors: a collection embedded with another model fails loudly here
instead of training an adapter for the wrong vector space.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from qadapter.core.vectors import normalize
from qadapter.data import Document, Workspace
from qadapter.embedding import cache_for
from qadapter.encoders import Encoder, model_identity
from qadapter.errors import DataError, QadapterError
from qadapter.stores.base import VectorStore

logger = logging.getLogger(__name__)

#: Stored and re-embedded vectors of the same text must agree to this cosine similarity.
MIN_COSINE = 0.99


@dataclass(frozen=True)
class StoreCheck:
    """How well a sample of stored vectors matches the encoder (``min_cosine`` over ``n_checked`` documents)."""

    n_checked: int
    min_cosine: float
    mean_cosine: float


def check_store_matches_encoder(
    ids: list[str],
    documents: list[str],
    embeddings: np.ndarray,
    encoder: Encoder,
    *,
    sample: int = 16,
    min_cosine: float = MIN_COSINE,
) -> StoreCheck:
    """Re-embed up to ``sample`` evenly spread documents and compare them with the stored vectors.

    Raises :class:`QadapterError` on a dimension mismatch or when any sampled pair has cosine below
    ``min_cosine``: the collection was embedded with another model (or other settings) than ``encoder``.
    """
    if embeddings.shape[1] != encoder.dim:
        raise QadapterError(
            f"the collection stores {embeddings.shape[1]}-dimensional vectors but the model '{encoder.name}' gives "
            f"{encoder.dim}-dimensional ones; pass the model that embedded the collection (--model)"
        )
    n = min(sample, len(ids))
    if n == 0:
        return StoreCheck(0, 1.0, 1.0)
    rows = np.unique(np.linspace(0, len(ids) - 1, n).round().astype(int))
    fresh = encoder.encode([documents[i] for i in rows], kind="document")
    cosines = np.sum(normalize(fresh) * normalize(embeddings[rows]), axis=1)
    worst = int(np.argmin(cosines))
    check = StoreCheck(len(rows), float(cosines.min()), float(cosines.mean()))
    logger.info(
        "stored vectors vs %s: min cosine %.4f over %d documents",
        encoder.name,
        check.min_cosine,
        check.n_checked,
    )
    if check.min_cosine < min_cosine:
        raise QadapterError(
            f"the collection's vectors do not match the model '{encoder.name}': re-embedding {check.n_checked} of its "
            f"documents gives cosine similarity {check.mean_cosine:.3f} on average (document '{ids[rows[worst]]}': "
            f"{check.min_cosine:.3f}; expected > {min_cosine}); pass the model that embedded the collection (--model), "
            "with the same settings (prefixes, normalisation)"
        )
    return check


def _sample_records(
    store: VectorStore, sample: int, batch_size: int
) -> tuple[list[str], list[str], np.ndarray]:
    """First pass over the store, page by page: keep only ``sample`` evenly spread records (for the model check),
    and fail early on an empty collection or a record without document text."""
    total = store.count()
    if total == 0:
        raise DataError(f"the {store.backend} collection is empty; add documents to it before importing")
    wanted = set(np.unique(np.linspace(0, total - 1, min(sample, total)).round().astype(int)).tolist())
    ids: list[str] = []
    texts: list[str] = []
    vectors: list[np.ndarray] = []
    position = 0
    for page_ids, page_docs, page_vectors in store.pages(batch_size):
        for j, (doc_id, text) in enumerate(zip(page_ids, page_docs, strict=True)):
            if not text:
                raise DataError(
                    f"record '{doc_id}' of the {store.backend} collection has no stored document text; qadapter "
                    "needs the text to pair queries with documents, so store documents with the vectors"
                )
            if position + j in wanted:
                ids.append(doc_id)
                texts.append(str(text))
                vectors.append(page_vectors[j])
        position += len(page_ids)
    return ids, texts, np.stack(vectors) if vectors else np.zeros((0, 0), dtype=np.float32)


def import_from_store(
    store: VectorStore,
    workspace: Workspace | str,
    encoder: Encoder,
    *,
    check_sample: int = 16,
    batch_size: int = 1000,
    overwrite: bool = False,
) -> Workspace:
    """Write the store's documents to ``workspace/corpus.jsonl`` and cache its stored vectors for ``encoder``.

    The store is read in pages of ``batch_size`` records, never all at once: a first pass checks a sample of
    ``check_sample`` documents against ``encoder`` (see :func:`check_store_matches_encoder`; nothing else is
    re-embedded), a second streams every page into the cache and the corpus file (written atomically). An existing
    corpus is replaced only with ``overwrite=True``.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if ws.corpus_path.exists() and not overwrite:
        raise QadapterError(
            f"{ws.corpus_path} already exists; import into a new workspace or pass --overwrite"
        )
    ids, texts, vectors = _sample_records(store, check_sample, batch_size)
    check_store_matches_encoder(ids, texts, vectors, encoder, sample=check_sample)
    ws.path.mkdir(parents=True, exist_ok=True)
    counted = {"documents": 0}
    with cache_for(ws) as cache:  # the cache the embed stage reads
        identity = model_identity(encoder, cache.digests)

        def documents() -> Iterator[Document]:
            for page_ids, page_docs, page_vectors in store.pages(batch_size):
                page = [Document(doc_id, str(text)) for doc_id, text in zip(page_ids, page_docs, strict=True)]
                # Keyed by Document.full_text, the text every later step embeds.
                cache.put_many(identity, "document", [d.full_text for d in page], page_vectors)
                counted["documents"] += len(page)
                yield from page

        ws.write_corpus(documents())
    logger.info(
        "imported %d documents from the %s collection into %s", counted["documents"], store.backend, ws.path
    )
    return ws
