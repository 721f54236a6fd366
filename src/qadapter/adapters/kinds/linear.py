"""``linear``: ``y = x W^T + b`` with ``W`` of shape ``(d, d)``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from qadapter.adapters.kinds.base import AdapterKind, Affine, Ops


def apply(t: Mapping[str, Any], x: Any, ops: Ops) -> Any:
    return x @ t["weight"].T + t["bias"]


def init(dim: int, hidden: int, how: str) -> dict[str, Any]:
    import torch
    from torch import nn

    weight, bias = torch.empty(dim, dim), torch.zeros(dim)
    if how == "identity":
        nn.init.eye_(weight)
    else:  # the notebook's nn.Linear default initialisation
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(dim)
        nn.init.uniform_(bias, -bound, bound)
    return {"weight": weight, "bias": bias}


def affine(t: Mapping[str, np.ndarray], dim: int) -> Affine | None:
    return t["weight"].astype(np.float64), t["bias"].astype(np.float64)


KIND = AdapterKind(
    name="linear",
    tensors={"weight": ("d", "d"), "bias": ("d",)},
    apply=apply,
    summary="a linear map y = W x + b (d x d)",
    init=init,
    affine=affine,
)
