"""Torch versions of the adapter kinds, for training; ``to_adapter`` turns them into the numpy :class:`Adapter`.

Every module can start as the exact identity, so the first training step starts from the base model's ranking.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from qadapter.adapters import Adapter


class LinearAdapter(nn.Module):
    def __init__(self, dim: int, *, init: str = "identity") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        if init == "identity":
            nn.init.eye_(self.weight)
        else:  # the notebook's nn.Linear default initialisation
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            bound = 1 / math.sqrt(dim)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T + self.bias

    def tensors(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight.detach().cpu().numpy(), "bias": self.bias.detach().cpu().numpy()}


class LowRankAdapter(nn.Module):
    """``x + (x A^T) B^T + b``; ``B`` starts at zero so the map starts as the identity."""

    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Parameter(torch.randn(rank, dim) / math.sqrt(dim))
        self.up = nn.Parameter(torch.zeros(dim, rank))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (x @ self.down.T) @ self.up.T + self.bias

    def tensors(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k).detach().cpu().numpy() for k in ("down", "up", "bias")}


class MLPAdapter(nn.Module):
    """``x + gelu(x W1^T + b1) W2^T + b2``; ``W2`` starts at zero so the map starts as the identity."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(hidden, dim) / math.sqrt(dim))
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = nn.Parameter(torch.zeros(dim, hidden))
        self.b2 = nn.Parameter(torch.zeros(dim))
        self.act = nn.GELU(approximate="tanh")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(x @ self.w1.T + self.b1) @ self.w2.T + self.b2

    def tensors(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k).detach().cpu().numpy() for k in ("w1", "b1", "w2", "b2")}


def build_module(kind: str, dim: int, *, hidden: int = 64, init: str = "identity") -> nn.Module:
    if kind == "linear":
        return LinearAdapter(dim, init=init)
    if kind == "lowrank":
        return LowRankAdapter(dim, hidden)
    if kind == "mlp":
        return MLPAdapter(dim, hidden)
    raise ValueError(f"unknown adapter kind {kind!r}")


def to_adapter(module: nn.Module, kind: str, dim: int, config: dict | None = None) -> Adapter:
    return Adapter(kind, dim, module.tensors(), dict(config or {}))  # type: ignore[operator]
