"""Adapter kinds: one module per kind and a registry (:mod:`qadapter.adapters.kinds.registry`) that lists them."""

from qadapter.adapters.kinds.base import NUMPY_OPS, AdapterKind, Affine, Ops, gelu_tanh
from qadapter.adapters.kinds.registry import EXPORTABLE_KINDS, REGISTRY, TRAINABLE_KINDS

__all__ = [
    "EXPORTABLE_KINDS",
    "NUMPY_OPS",
    "REGISTRY",
    "TRAINABLE_KINDS",
    "AdapterKind",
    "Affine",
    "Ops",
    "gelu_tanh",
]
