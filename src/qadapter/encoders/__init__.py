"""Encoders turn texts into vectors; the embedding cache makes sure each text is encoded once."""

from __future__ import annotations

from qadapter.core.defaults import DEFAULT_MODEL
from qadapter.encoders.base import Encoder, TextKind
from qadapter.encoders.cache import EmbeddingCache
from qadapter.encoders.encode import embed, model_identity
from qadapter.encoders.factory import get_encoder

__all__ = ["DEFAULT_MODEL", "EmbeddingCache", "Encoder", "TextKind", "embed", "get_encoder", "model_identity"]
