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


#: the lams leave-one-out chooses among (``lam="loo"``), in the scale of ``ridge_adapter``'s ``lam``
LOO_LAMS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def loo_lam(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    lams: Sequence[float] = LOO_LAMS,
) -> float:
    """The ``lam`` of ``lams`` whose ridge map, refitted without each pair, maps that pair's query closest in angle to
    its document (mean cosine; exact leave-one-out predictions ``t_i - e_i / (1 - h_ii)`` from one
    eigendecomposition of ``Q^T Q``). Angles, not squared error: retrieval ignores a query's length, and squared
    error rewards shrinking every query toward zero. For small training sets (it holds all pairs' vectors at once):
    a clean map wants a small lam, a noisy one a large."""
    Q, P = _targets(query_embeddings, doc_embeddings, pairs)
    n, d = Q.shape
    evals, U = np.linalg.eigh(Q.T @ Q)
    QU = Q @ U
    target = P - Q  # the ridge of W - I, toward the identity
    projected = QU.T @ target
    cosines = []
    for lam in lams:
        inverse = 1.0 / (evals + lam * n / d)
        fitted = QU @ (inverse[:, None] * projected)
        leverage = np.einsum("ij,j,ij->i", QU, inverse, QU)
        held_out = target - (target - fitted) / np.maximum(1.0 - leverage, 1e-9)[:, None]
        cosines.append(float((normalize(Q + held_out) * P).sum(1).mean()))
    return float(lams[int(np.argmax(cosines))])


def ridge_adapter(
    query_embeddings: np.ndarray,
    doc_embeddings: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    *,
    lam: float | str = 1.0,
) -> Adapter:
    """Ridge toward the identity (module docstring); ``lam="loo"`` chooses it by leave-one-out (:func:`loo_lam`)."""
    if lam == "loo":
        lam = loo_lam(query_embeddings, doc_embeddings, pairs)
    lam = float(lam)
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
