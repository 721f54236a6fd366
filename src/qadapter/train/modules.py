"""Torch versions of the adapter kinds, for training; ``to_adapter`` turns them into the numpy :class:`Adapter`.

One module class serves every kind: its parameters are the kind's tensors (same names, same shapes) and its forward
pass is the kind's own ``apply`` (:mod:`qadapter.adapters.kinds`), run on torch tensors, so training and the saved
numpy adapter compute the same map by construction. Every kind can start as the exact identity, so the first
training step starts from the base model's ranking.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from qadapter.adapters import Adapter
from qadapter.adapters.kinds import REGISTRY, TRAINABLE_KINDS, Ops
from qadapter.errors import QadapterError

TORCH_OPS = Ops(gelu=lambda x: nn.functional.gelu(x, approximate="tanh"))


class KindModule(nn.Module):
    """The adapter kind ``kind`` as a torch module whose parameters are the kind's tensors."""

    def __init__(self, kind: str, dim: int, *, hidden: int = 64, init: str = "identity") -> None:
        super().__init__()
        spec = REGISTRY.get(kind)
        if spec is None or spec.init is None:
            raise QadapterError(
                f"unknown adapter kind {kind!r} to train; valid kinds: {', '.join(TRAINABLE_KINDS)}"
            )
        self.kind = kind
        self._apply_kind = spec.apply
        for name, value in spec.init(dim, hidden, init).items():
            self.register_parameter(name, nn.Parameter(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply_kind(self._parameters, x, TORCH_OPS)  # type: ignore[no-any-return]

    def tensors(self) -> dict[str, np.ndarray]:
        return {name: p.detach().cpu().numpy() for name, p in self.named_parameters()}


def build_module(kind: str, dim: int, *, hidden: int = 64, init: str = "identity") -> KindModule:
    return KindModule(kind, dim, hidden=hidden, init=init)


def to_adapter(module: nn.Module, kind: str, dim: int, config: dict[str, Any] | None = None) -> Adapter:
    tensors = module.tensors() if isinstance(module, KindModule) else {}
    return Adapter(kind, dim, tensors, dict(config or {}))
