"""The adapter itself: a small map applied to query embeddings only, in plain numpy.

Applying a saved adapter needs numpy alone (no torch), so it fits anywhere a RAG app embeds its queries. The kinds
(identity, linear, lowrank, mlp) live in :mod:`qadapter.adapters.kinds`, one module each, listed once in its
registry; every kind can represent the identity, which is where training starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qadapter.adapters.kinds import NUMPY_OPS, REGISTRY, gelu_tanh
from qadapter.errors import ArtifactError, QadapterError

#: For each kind, the tensors it needs and their shapes in terms of ``d`` (dim) and ``h`` (rank / hidden size).
KIND_TENSORS: dict[str, Mapping[str, tuple[str, ...]]] = {
    name: kind.tensors for name, kind in REGISTRY.items()
}
KINDS = tuple(REGISTRY)

__all__ = ["KINDS", "KIND_TENSORS", "Adapter", "gelu_tanh"]


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
        if self.kind not in REGISTRY:
            raise ArtifactError(f"unknown adapter kind '{self.kind}'; valid kinds: {', '.join(REGISTRY)}")
        self.tensors = {k: np.asarray(v, dtype=np.float32) for k, v in self.tensors.items()}
        self._check_shapes()

    @property
    def hidden(self) -> int:
        spec = REGISTRY[self.kind].tensors
        for name, dims in spec.items():
            if "h" in dims:
                return int(self.tensors[name].shape[dims.index("h")])
        return 0

    def _check_shapes(self) -> None:
        spec = REGISTRY[self.kind].tensors
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
        y = REGISTRY[self.kind].apply(self.tensors, x, NUMPY_OPS)
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
