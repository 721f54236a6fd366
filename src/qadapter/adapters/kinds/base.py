"""What an adapter kind is: everything qadapter needs to know about it, in one record.

A kind is written once, against array operations that numpy and torch share (``@``, ``+``, ``.T``), so the same
``apply`` runs the saved adapter in numpy and trains it in torch; only the non-linearities differ and are passed in
as ``ops``. Adding a kind = one module that defines an :class:`AdapterKind` + one line in
:data:`qadapter.adapters.kinds.REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: ``(W, b)`` with ``apply(x) == x @ W.T + b``
Affine = tuple[np.ndarray, np.ndarray]


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (the same formula as ``torch.nn.GELU(approximate='tanh')``)."""
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


@dataclass(frozen=True)
class Ops:
    """The element-wise functions ``apply`` may use, from numpy or from torch."""

    gelu: Callable[[Any], Any]


NUMPY_OPS = Ops(gelu=gelu_tanh)


@dataclass(frozen=True)
class AdapterKind:
    """One adapter kind.

    - ``tensors``: each tensor's shape in terms of ``d`` (dim) and ``h`` (rank / hidden size);
    - ``apply(tensors, x, ops)``: the map, written with operations numpy arrays and torch tensors share;
    - ``init(dim, hidden, init)``: torch tensors to start training from (``init="identity"`` must give exactly the
      identity map); ``None`` for kinds that are not trained;
    - ``affine(tensors, dim)``: the export rule for Sentence Transformers: the map as one ``Dense`` layer ``(W, b)``,
      or ``None`` for no layer at all; the attribute itself is ``None`` when the kind has no exact ``Dense`` form,
      and ``export_refusal`` then says why;
    - ``summary``: what the report and the model card say about it.
    """

    name: str
    tensors: Mapping[str, tuple[str, ...]]
    apply: Callable[[Mapping[str, Any], Any, Ops], Any]
    summary: str
    init: Callable[[int, int, str], dict[str, Any]] | None = None
    affine: Callable[[Mapping[str, np.ndarray], int], Affine | None] | None = None
    export_refusal: str = ""

    @property
    def trainable(self) -> bool:
        return self.init is not None

    @property
    def exportable(self) -> bool:
        return self.affine is not None
