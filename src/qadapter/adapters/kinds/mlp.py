"""``mlp``: ``y = x + gelu(x W1^T + b1) W2^T + b2``, a residual two-layer network (tanh-approximated GELU)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from qadapter.adapters.kinds.base import AdapterKind, Ops


def apply(t: Mapping[str, Any], x: Any, ops: Ops) -> Any:
    return x + ops.gelu(x @ t["w1"].T + t["b1"]) @ t["w2"].T + t["b2"]


def init(dim: int, hidden: int, how: str) -> dict[str, Any]:
    """``w2`` starts at zero, so the map starts as the identity whatever ``how`` says."""
    import torch

    return {
        "w1": torch.randn(hidden, dim) / math.sqrt(dim),
        "b1": torch.zeros(hidden),
        "w2": torch.zeros(dim, hidden),
        "b2": torch.zeros(dim),
    }


KIND = AdapterKind(
    name="mlp",
    tensors={"w1": ("h", "d"), "b1": ("h",), "w2": ("d", "h"), "b2": ("d",)},
    apply=apply,
    summary="a residual two-layer network y = x + W2 gelu(W1 x + b1) + b2",
    init=init,
    export_refusal="its residual GELU network has no exact equivalent among the built-in modules",
)
