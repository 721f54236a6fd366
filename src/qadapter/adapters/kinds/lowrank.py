"""``lowrank``: ``y = x + (x A^T) B^T + b``, ``A`` (down) of shape ``(h, d)``, ``B`` (up) of shape ``(d, h)``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from qadapter.adapters.kinds.base import AdapterKind, Affine, Ops


def apply(t: Mapping[str, Any], x: Any, ops: Ops) -> Any:
    return x + (x @ t["down"].T) @ t["up"].T + t["bias"]


def init(dim: int, hidden: int, how: str) -> dict[str, Any]:
    """``up`` starts at zero, so the map starts as the identity whatever ``how`` says."""
    import torch

    return {
        "down": torch.randn(hidden, dim) / math.sqrt(dim),
        "up": torch.zeros(dim, hidden),
        "bias": torch.zeros(dim),
    }


def affine(t: Mapping[str, np.ndarray], dim: int) -> Affine | None:
    """Folded into one ``d x d`` layer: ``W = I + up @ down``."""
    weight = np.eye(dim) + t["up"].astype(np.float64) @ t["down"].astype(np.float64)
    return weight, t["bias"].astype(np.float64)


KIND = AdapterKind(
    name="lowrank",
    tensors={"down": ("h", "d"), "up": ("d", "h"), "bias": ("d",)},
    apply=apply,
    summary="the identity plus a rank-h correction y = x + B A x + b",
    init=init,
    affine=affine,
)
