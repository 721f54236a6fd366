"""The train stage: fit a query adapter on a workspace's cached embeddings and save it.

``train(workspace, split="train")`` is the one entry point (the ``qadapter train`` command wraps it; its steps are in
:mod:`qadapter.train.stage`); ``fit_adapter(query_embeddings, doc_embeddings, pairs)`` is the array-level API for
callers with their own data. Names are re-exported lazily, so the registries (recipes, objectives, options) load
without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qadapter.core.extras import import_module

if TYPE_CHECKING:
    from qadapter.train.config import TrainConfig
    from qadapter.train.options import TrainOptions
    from qadapter.train.recipes import RECIPES
    from qadapter.train.selection import select
    from qadapter.train.stage import TrainResult, fit_adapter, train
    from qadapter.train.trainer import fit

_EXPORTS = {
    "RECIPES": "qadapter.train.recipes",
    "TrainConfig": "qadapter.train.config",
    "TrainOptions": "qadapter.train.options",
    "TrainResult": "qadapter.train.stage",
    "fit": "qadapter.train.trainer",
    "fit_adapter": "qadapter.train.stage",
    "select": "qadapter.train.selection",
    "train": "qadapter.train.stage",
}

__all__ = ["RECIPES", "TrainConfig", "TrainOptions", "TrainResult", "fit", "fit_adapter", "select", "train"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'qadapter.train' has no attribute {name!r}")
