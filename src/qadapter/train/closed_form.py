"""Closed-form linear adapters: fast candidates and baselines for the trained ones.

- Ridge toward the identity: ``min_W ||Q W^T - P||^2 + lam ||W - I||^2`` where ``P`` holds each query's relevant
  document vector. Solution ``W^T = (Q^T Q + lam I)^{-1} (Q^T P + lam I)``: large ``lam`` stays near the identity.
- Orthogonal Procrustes: the rotation ``W`` minimising ``||Q W^T - P||`` (Schönemann, Psychometrika 31, 1966):
  ``W = U V^T`` from the SVD ``P^T Q = U S V^T``. A rotation preserves norms and angles between queries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qadapter.adapters import Adapter
from qadapter.core.vectors import normalize


def _targets(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    dtype: type = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return normalize(query_embeddings[arr[:, 0]]).astype(dtype), normalize(doc_embeddings[arr[:, 1]]).astype(
        dtype
    )


def ridge_adapter(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    *,
    lam: float = 1.0,
) -> Adapter:
    d = query_embeddings.shape[1]
    gram, cross, n = np.zeros((d, d)), np.zeros((d, d)), 0
    for start in range(
        0, len(pairs), 65_536
    ):  # float32 products per block, summed in float64: bounded memory
        Q, P = _targets(query_embeddings, doc_embeddings, pairs[start : start + 65_536], np.float32)
        gram += (Q.T @ Q).astype(np.float64)
        cross += (Q.T @ P).astype(np.float64)
        n += len(Q)
    lam_eff = lam * n / d  # scale with the data so one lam means the same at any size
    eye = np.eye(d)
    WT = np.linalg.solve(gram + lam_eff * eye, cross + lam_eff * eye)
    return Adapter("linear", d, {"weight": WT.T.astype(np.float32), "bias": np.zeros(d, dtype=np.float32)})


def procrustes_adapter(
    query_embeddings: np.ndarray, doc_embeddings: np.ndarray, pairs: Sequence[tuple[int, int]]
) -> Adapter:
    Q, P = _targets(query_embeddings, doc_embeddings, pairs)
    U, _, Vt = np.linalg.svd(P.T @ Q)
    W = U @ Vt
    d = Q.shape[1]
    return Adapter("linear", d, {"weight": W.astype(np.float32), "bias": np.zeros(d, dtype=np.float32)})
