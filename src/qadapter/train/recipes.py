"""Named training recipes.

- ``default``: search a small space of adapters (and the identity) on validation data carved out of the training
  split, ship the winner (see :mod:`qadapter.train.selection`).
- ``contrastive``: one identity-initialised linear adapter, softmax loss over the user's own training documents,
  15 epochs, no validation (every training query is used; nothing guards against harm).
- ``seed``: the original notebook, for parity: random-init ``Linear(d, d)``, triplet loss (margin 1, p 2) against
  random negatives from an out-of-domain pool (or the corpus), AdamW lr 3e-3, batch 32, 100 warm-up steps then linear
  decay, gradient clipping 1.0, 30 epochs.
"""

from __future__ import annotations

from qadapter.errors import QadapterError
from qadapter.train.config import TrainConfig

RECIPES = ("default", "contrastive", "seed")


def recipe_config(name: str, *, has_pool: bool = False, **overrides: object) -> TrainConfig:
    if name == "seed":
        base = TrainConfig(
            kind="linear",
            init="random",
            loss="triplet",
            margin=1.0,
            negatives="pool" if has_pool else "corpus",
            lr=3e-3,
            weight_decay=0.01,  # torch.optim.AdamW's default, which the notebook used
            batch_size=32,
            warmup_steps=100,
            grad_clip=1.0,
            epochs=30,
            patience=0,
        )
    elif name == "contrastive":
        base = TrainConfig(epochs=15, patience=0)
    elif name == "default":
        base = TrainConfig()
    else:
        raise QadapterError(f"unknown recipe '{name}'; valid recipes: {', '.join(RECIPES)}")
    return base.replace(**overrides) if overrides else base
