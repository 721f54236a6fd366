"""The optional FAISS index: recall against exact search, the auto switch, and the missing-extra error."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from qadapter.core import ann
from qadapter.errors import MissingExtraError

faiss = pytest.importorskip("faiss")


def test_ivf_index_recall_against_exact_search_on_a_sample() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 32))
    docs = (centres[rng.integers(50, size=20_000)] + 0.5 * rng.normal(size=(20_000, 32))).astype(np.float32)
    queries = docs[:300] + 0.1 * rng.normal(size=(300, 32)).astype(np.float32)
    index = ann.AnnIndex(docs)
    assert ann.recall_at_k(index, queries, docs, k=10) >= 0.9
    idx, scores = index.search(queries[:5], 10)
    assert idx.shape == (5, 10) and np.all(np.diff(scores, axis=1) <= 1e-6)


def test_auto_uses_exact_search_below_the_threshold_and_faiss_above(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not ann.use_ann(1_000)
    assert ann.use_ann(ann.ANN_ABOVE + 1)
    assert not ann.use_ann(ann.ANN_ABOVE + 1, "exact")
    monkeypatch.setattr(ann, "ANN_ABOVE", 100)
    docs = np.random.default_rng(1).normal(size=(2_000, 8)).astype(np.float32)
    first = ann.index_for(docs)
    assert ann.index_for(docs) is first  # built once per document array
    idx, _ = ann.nearest(docs[:3], docs, k=1)
    assert idx[:, 0].tolist() == [0, 1, 2]


def test_missing_faiss_names_the_ann_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(MissingExtraError, match=r"qadapter\[ann\]"):
        ann.use_ann(10, "faiss")
    assert not ann.use_ann(ann.ANN_ABOVE + 1)  # auto falls back to exact search, with a warning
    with pytest.raises(Exception, match="valid modes"):
        ann.use_ann(10, "hnsw")


def test_a_gpu_that_holds_the_documents_keeps_search_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CUDA device exact search is cheap while the documents fit (twice over) in its free memory; there ``auto``
    stays exact at any size, and FAISS serves only what does not fit. The CPU keeps its thresholds. (The device's
    free memory is faked here: this machine has no GPU.)"""
    import torch

    free = {"bytes": 10 * 2**30}
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["bytes"], 80 * 2**30))
    n = ann.ANN_ABOVE + 1
    nbytes = n * 384 * 4  # ~0.3 GiB of float32 vectors
    assert ann.exact_fits("cuda", nbytes) and ann.exact_fits("cuda:1", nbytes)
    assert not ann.use_ann(n, device="cuda", nbytes=nbytes)
    assert ann.use_ann(n, device="cpu", nbytes=nbytes) and ann.use_ann(n, device=None, nbytes=nbytes)
    assert ann.use_ann(n, "faiss", device="cuda", nbytes=nbytes)  # asked for by name: always
    free["bytes"] = nbytes  # fits once, not twice over
    assert not ann.exact_fits("cuda", nbytes) and ann.use_ann(n, device="cuda", nbytes=nbytes)
    assert not ann.exact_fits("mps", 1) and not ann.exact_fits(None, 1)
