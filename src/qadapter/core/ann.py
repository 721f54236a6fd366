"""Approximate nearest-neighbour search (FAISS, the ``ann`` extra) for corpora where exact search stops being cheap.

Exact blockwise search (:func:`qadapter.core.vectors.search`) costs ``queries x documents x dim`` multiply-adds: at
10^6 documents mining hard negatives for 10^6 training queries is hours on a few cores. Above :data:`ANN_ABOVE`
documents, and only when FAISS is installed, :func:`nearest` uses an inverted-file index (``IndexIVFFlat``, inner
product on normalised vectors, so scores are cosines) built once per document array and reused (mining, every
validation epoch and every candidate of a search share it). Below that, or with ``ann="exact"``, search is exact.
:func:`recall_at_k` measures an index against exact search on a sample of queries.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from qadapter.core.extras import require
from qadapter.core.vectors import normalize, search
from qadapter.errors import QadapterError

logger = logging.getLogger(__name__)

#: ``auto``: FAISS above ANN_ABOVE documents when installed, else exact; ``exact``: always exact; ``faiss``: always
#: FAISS (an error naming the ``ann`` extra when it is missing)
ANN_MODES = ("auto", "exact", "faiss")
#: documents above which ``auto`` switches to an approximate index
ANN_ABOVE = 200_000
#: inverted lists probed per query (recall against exact is measured in benchmarks/results/scale.md)
NPROBE = 32


def _faiss() -> Any:
    return require("faiss", extra="ann", purpose="approximate search (--ann faiss)", package="faiss-cpu")


class AnnIndex:
    """An IVF-flat index over normalised documents: ``search(queries, k)`` gives rows and cosine scores."""

    def __init__(
        self, docs: np.ndarray, *, nlist: int | None = None, nprobe: int = NPROBE, seed: int = 0
    ) -> None:
        faiss = _faiss()
        n, dim = docs.shape
        self.nlist = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(dim)
        self.index = faiss.IndexIVFFlat(quantizer, dim, self.nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        train = min(n, 64 * self.nlist)
        sample = np.sort(rng.choice(n, size=train, replace=False))
        self.index.train(normalize(docs[sample]))
        for start in range(0, n, 65_536):
            self.index.add(normalize(docs[start : start + 65_536]))
        self.index.nprobe = min(nprobe, self.nlist)
        self.n_docs = n

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.n_docs)
        idx = np.empty((len(queries), k), dtype=np.int64)
        scores = np.empty((len(queries), k), dtype=np.float32)
        for start in range(0, len(queries), 16_384):
            s, i = self.index.search(normalize(queries[start : start + 16_384]), k)
            idx[start : start + len(i)], scores[start : start + len(i)] = i, s
        return idx, scores


_MEMO: dict[str, tuple[np.ndarray, AnnIndex]] = {}


def index_for(docs: np.ndarray) -> AnnIndex:
    """The index of ``docs``, built once per array object (the last one is kept)."""
    held = _MEMO.get("last")
    if held is not None and held[0] is docs:
        return held[1]
    logger.info("building an approximate index over %d documents", len(docs))
    index = AnnIndex(docs)
    _MEMO["last"] = (docs, index)
    return index


def use_ann(n_docs: int, ann: str = "auto") -> bool:
    if ann not in ANN_MODES:
        raise QadapterError(f"unknown ann mode '{ann}'; valid modes: {', '.join(ANN_MODES)}")
    if ann == "faiss":
        _faiss()
        return True
    if ann == "exact" or n_docs <= ANN_ABOVE:
        return False
    try:
        _faiss()
    except ImportError:
        logger.warning(
            "%d documents: exact search is slow at this size; pip install 'qadapter[ann]' for FAISS", n_docs
        )
        return False
    return True


def nearest(
    queries: np.ndarray, docs: np.ndarray, *, k: int, ann: str = "auto", device: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (rows, cosine scores): exact, or approximate above :data:`ANN_ABOVE` documents (see module doc)."""
    if use_ann(len(docs), ann):
        return index_for(docs).search(queries, k)
    return search(queries, docs, k=k, device=device)


def recall_at_k(index: AnnIndex, queries: np.ndarray, docs: np.ndarray, *, k: int = 10) -> float:
    """Share of the exact top-``k`` that the index also returns (mean over ``queries``)."""
    exact, _ = search(queries, docs, k=k)
    approx, _ = index.search(queries, k)
    found = [len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx, exact, strict=True)]
    return float(np.sum(found) / max(1, exact.size))
