"""Approximate nearest-neighbour search (FAISS, the ``ann`` extra) for corpora where exact search stops being cheap.

Exact blockwise search (:func:`qadapter.core.vectors.search`) costs ``queries x documents x dim`` multiply-adds: at
10^6 documents mining hard negatives for 10^6 training queries is hours on a few cores. Above :data:`ANN_ABOVE`
documents, and only when FAISS is installed and the search does not run on a GPU that holds the documents,
:func:`nearest` uses an inverted-file index (``IndexIVFScalarQuantizer``,
inner product on normalised vectors; the returned scores are exact cosines) built once per document array and reused (mining, every
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
#: documents above which ``auto`` switches to an approximate index for every search (the selection's judgement,
#: validation, mining)
ANN_ABOVE = 200_000
#: documents above which ``auto`` already uses it for work whose exactness matters little and whose cost grows with
#: the square of the corpus: mining hard negatives and near-duplicates, and the per-epoch validation curve
#: (benchmarks/results/scale.md: exact mining of 100k queries over 100k documents is minutes on 2 cores)
MINE_ANN_ABOVE = 50_000
#: inverted lists probed per query (recall against exact is measured in benchmarks/results/scale.md)
NPROBE = 32
#: probed for mining and the validation curve, where speed matters more than the last points of recall
MINE_NPROBE = 8


def _faiss() -> Any:
    return require("faiss", extra="ann", purpose="approximate search (--ann faiss)", package="faiss-cpu")


class AnnIndex:
    """An inverted-file index (8-bit scalar quantised) over normalised documents: ``search(queries, k)`` gives rows
    and their exact cosine scores."""

    def __init__(
        self, docs: np.ndarray, *, nlist: int | None = None, nprobe: int = NPROBE, seed: int = 0
    ) -> None:
        faiss = _faiss()
        n, dim = docs.shape
        # 2 sqrt(n) lists: building (k-means over 64 points per list) costs ~ n x lists, searching ~ nprobe x n / lists
        self.nlist = nlist or max(1, min(int(2 * math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(dim)
        # 8-bit scalar quantisation: a quarter of the memory of the vectors and a faster scan; the returned scores
        # are recomputed exactly from the documents (search), so only which rows come back is approximate
        self.index = faiss.IndexIVFScalarQuantizer(
            quantizer, dim, self.nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        self.quantizer = quantizer  # the index does not own it
        rng = np.random.default_rng(seed)
        train = min(n, 64 * self.nlist)
        sample = np.sort(rng.choice(n, size=train, replace=False))
        self.index.train(normalize(docs[sample]))
        for start in range(0, n, 65_536):
            self.index.add(normalize(docs[start : start + 65_536]))
        self.nprobe = nprobe
        self.index.nprobe = min(nprobe, self.nlist)
        self.n_docs, self.docs = n, docs

    def search(
        self, queries: np.ndarray, k: int, *, nprobe: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.n_docs)
        self.index.nprobe = min(nprobe or self.nprobe, self.nlist)
        idx = np.empty((len(queries), k), dtype=np.int64)
        scores = np.empty((len(queries), k), dtype=np.float32)
        chunk = max(1, 65_536 // max(k, 1))  # a chunk re-scores chunk x k gathered document vectors
        for start in range(0, len(queries), chunk):
            q = normalize(queries[start : start + chunk])
            _, i = self.index.search(q, k)
            exact = np.einsum("qkd,qd->qk", normalize(self.docs[np.maximum(i, 0)]), q)
            exact[i < 0] = -np.inf
            order = np.argsort(-exact, axis=1, kind="stable")
            idx[start : start + len(i)] = np.take_along_axis(i, order, axis=1)
            scores[start : start + len(i)] = np.take_along_axis(exact, order, axis=1)
        return idx, scores


_MEMO: list[tuple[np.ndarray, AnnIndex]] = []
#: indexes kept (the corpus, and the training documents when they are a part of it)
MEMO_SIZE = 2


def index_for(docs: np.ndarray) -> AnnIndex:
    """The index of ``docs``, built once per array object (the last MEMO_SIZE are kept)."""
    for held, index in _MEMO:
        if held is docs:
            return index
    logger.info("building an approximate index over %d documents", len(docs))
    index = AnnIndex(docs)
    _MEMO.insert(0, (docs, index))
    del _MEMO[MEMO_SIZE:]
    return index


def exact_fits(device: str | None, nbytes: int) -> bool:
    """Whether exact search over ``nbytes`` of document vectors stays cheap on ``device``: a CUDA GPU whose free
    memory holds them twice over (exact top-10 of 100k queries over 1M documents took 1.0 s on an H200, issue 12).
    A CPU (``None`` or ``cpu``) or another device never does, above the thresholds of :func:`use_ann`."""
    if device is None or not device.startswith("cuda"):
        return False
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return 2 * nbytes <= free


def use_ann(
    n_docs: int, ann: str = "auto", *, above: int = ANN_ABOVE, device: str | None = None, nbytes: int = 0
) -> bool:
    """Whether a search over ``n_docs`` documents uses the approximate index: ``auto`` above ``above`` documents
    (:data:`ANN_ABOVE`, or :data:`MINE_ANN_ABOVE` for mining and the validation curve) when FAISS is installed,
    unless the search runs on a GPU that holds the ``nbytes`` of documents (:func:`exact_fits`): there it stays
    exact."""
    if ann not in ANN_MODES:
        raise QadapterError(f"unknown ann mode '{ann}'; valid modes: {', '.join(ANN_MODES)}")
    if ann == "faiss":
        _faiss()
        return True
    if ann == "exact" or n_docs <= above or exact_fits(device, nbytes):
        return False
    try:
        _faiss()
    except ImportError:
        if n_docs > ANN_ABOVE:
            logger.warning(
                "%d documents: exact search is slow at this size; pip install 'qadapter[ann]' for FAISS",
                n_docs,
            )
        return False
    return True


def nearest(
    queries: np.ndarray,
    docs: np.ndarray,
    *,
    k: int,
    ann: str = "auto",
    device: str | None = None,
    above: int = ANN_ABOVE,
    nprobe: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (rows, cosine scores): exact, or approximate above ``above`` documents (see :func:`use_ann`), probing
    ``nprobe`` lists (default :data:`NPROBE`)."""
    if use_ann(len(docs), ann, above=above, device=device, nbytes=docs.nbytes):
        return index_for(docs).search(queries, k, nprobe=nprobe)
    return search(queries, docs, k=k, device=device)


def recall_at_k(index: AnnIndex, queries: np.ndarray, docs: np.ndarray, *, k: int = 10) -> float:
    """Share of the exact top-``k`` that the index also returns (mean over ``queries``)."""
    exact, _ = search(queries, docs, k=k)
    approx, _ = index.search(queries, k)
    found = [len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx, exact, strict=True)]
    return float(np.sum(found) / max(1, exact.size))
