"""``identity``: ``y = x``, what qadapter ships when no adapter helps on validation data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from qadapter.adapters.kinds.base import AdapterKind, Affine, Ops


def apply(tensors: Mapping[str, Any], x: Any, ops: Ops) -> Any:
    return x.copy() if isinstance(x, np.ndarray) else x.clone()


def affine(tensors: Mapping[str, np.ndarray], dim: int) -> Affine | None:
    return None  # the query route is the base model itself: no layer


KIND = AdapterKind(
    name="identity",
    tensors={},
    apply=apply,
    summary="the identity (the base model unchanged)",
    affine=affine,
)
