"""The adapter itself: a small map applied to query embeddings only, in plain numpy.

Applying a saved adapter needs numpy alone (no torch), so it fits anywhere a RAG app embeds its queries.

Kinds (every kind can represent the identity, which is where training starts):

- ``identity``: ``y = x`` (what qadapter ships when no adapter helps on validation data).
- ``linear``: ``y = x W^T + b`` with ``W`` of shape ``(d, d)``.
- ``lowrank``: ``y = x + (x A^T) B^T + b``, ``A`` of shape ``(r, d)``, ``B`` of shape ``(d, r)``.
- ``mlp``: ``y = x + gelu(x W1^T + b1) W2^T + b2`` (a residual two-layer network, tanh-approximated GELU).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qadapter.errors import ArtifactError, QadapterError

#: For each kind, the tensors it needs and their shapes in terms of ``d`` (dim) and ``h`` (rank / hidden size).
KIND_TENSORS: dict[str, dict[str, tuple[str, ...]]] = {
    "identity": {},
    "linear": {"weight": ("d", "d"), "bias": ("d",)},
    "lowrank": {"down": ("h", "d"), "up": ("d", "h"), "bias": ("d",)},
    "mlp": {"w1": ("h", "d"), "b1": ("h",), "w2": ("d", "h"), "b2": ("d",)},
}
KINDS = tuple(KIND_TENSORS)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (the same formula as ``torch.nn.GELU(approximate='tanh')``)."""
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


@dataclass
class Adapter:
    """A query-side adapter: ``transform(query_embeddings)`` gives the vectors to search the unchanged corpus with.

    ``config`` holds everything recorded with the adapter (base model, training settings, data sizes, metrics).
    """

    kind: str
    dim: int
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KIND_TENSORS:
            raise ArtifactError(f"unknown adapter kind '{self.kind}'; valid kinds: {', '.join(KINDS)}")
        self.tensors = {k: np.asarray(v, dtype=np.float32) for k, v in self.tensors.items()}
        self._check_shapes()

    @property
    def hidden(self) -> int:
        spec = KIND_TENSORS[self.kind]
        for name, dims in spec.items():
            if "h" in dims:
                return int(self.tensors[name].shape[dims.index("h")])
        return 0

    def _check_shapes(self) -> None:
        spec = KIND_TENSORS[self.kind]
        missing = sorted(set(spec) - set(self.tensors))
        extra = sorted(set(self.tensors) - set(spec))
        if missing or extra:
            raise ArtifactError(
                f"a '{self.kind}' adapter needs tensors {sorted(spec)}; missing {missing}, unexpected {extra}"
            )
        sizes: dict[str, int] = {"d": self.dim}
        for name, dims in spec.items():
            shape = self.tensors[name].shape
            if len(shape) != len(dims):
                raise ArtifactError(
                    f"tensor '{name}' has shape {shape}, expected {len(dims)} dimensions {dims}"
                )
            for axis, symbol in zip(shape, dims, strict=True):
                if sizes.setdefault(symbol, axis) != axis:
                    raise ArtifactError(
                        f"tensor '{name}' has shape {shape}, inconsistent with {symbol}={sizes[symbol]} (dim d={self.dim})"
                    )

    @classmethod
    def identity(cls, dim: int, config: Mapping[str, Any] | None = None) -> Adapter:
        return cls("identity", dim, {}, dict(config or {}))

    def transform(self, query_embeddings: np.ndarray) -> np.ndarray:
        """Map query embeddings ``(n, d)`` (or one ``(d,)`` vector) to adapted embeddings of the same shape."""
        x = np.asarray(query_embeddings, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise QadapterError(
                f"this adapter expects query embeddings of dimension {self.dim} "
                f"(base model {self.base_model or 'unknown'}), got an array of shape {np.shape(query_embeddings)}"
            )
        t = self.tensors
        if self.kind == "identity":
            y = x.copy()
        elif self.kind == "linear":
            y = x @ t["weight"].T + t["bias"]
        elif self.kind == "lowrank":
            y = x + (x @ t["down"].T) @ t["up"].T + t["bias"]
        else:  # mlp
            y = x + gelu_tanh(x @ t["w1"].T + t["b1"]) @ t["w2"].T + t["b2"]
        y = y.astype(np.float32, copy=False)
        return y[0] if single else y

    __call__ = transform

    @property
    def base_model(self) -> str | None:
        base = self.config.get("base_model") or {}
        return base.get("name") if isinstance(base, dict) else None

    @property
    def n_parameters(self) -> int:
        return int(sum(v.size for v in self.tensors.values()))

    def is_identity(self) -> bool:
        return self.kind == "identity"
