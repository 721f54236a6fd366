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
