"""Named training recipes, listed once in :data:`RECIPES` (the CLI's ``--recipe`` choices and help, ``train()`` and
its errors read it).

- ``default``: search a small space of adapters (and the identity) on validation data carved out of the training
  split, ship the winner (see :mod:`qadapter.train.selection`).
- ``contrastive``: one identity-initialised linear adapter, softmax loss over the user's own training documents,
  15 epochs, no validation (every training query is used; nothing guards against harm).
- ``seed``: the original notebook, for parity: random-init ``Linear(d, d)``, triplet loss (margin 1, p 2) against
  random negatives from an out-of-domain pool (or the corpus), AdamW lr 3e-3, batch 32, 100 warm-up steps then linear
  decay, gradient clipping 1.0, 30 epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qadapter.errors import QadapterError
from qadapter.train.config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """``config(has_pool)`` is the recipe's base config; ``search``: choose among candidates on validation data
    (else one fit on every training query); ``pseudo_queries``: add offline pseudo-queries of the training documents;
    ``help``: one line for the CLI."""

    name: str
    config: Callable[[bool], TrainConfig]
    help: str
    search: bool = False
    pseudo_queries: bool = True
    warning: str = ""


def _seed_config(has_pool: bool) -> TrainConfig:
    return TrainConfig(
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


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "default",
            lambda has_pool: TrainConfig(),
            "choose among adapters (and the identity) on validation data",
            search=True,
        ),
        Recipe(
            "contrastive",
            lambda has_pool: TrainConfig(epochs=15, patience=0),
            "one linear adapter",
        ),
        Recipe(
            "seed",
            _seed_config,
            "the original notebook (random-init linear, triplet loss, random negatives)",
            pseudo_queries=False,
            warning="recipe 'seed' reproduces the original notebook for comparison; it has no validation and "
            "measurably hurts retrieval on documents without training queries (benchmarks/results/quality.md)",
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``, or one :class:`QadapterError` listing the valid ones."""
    if name not in RECIPES:
        raise QadapterError(f"unknown recipe '{name}'; valid recipes: {', '.join(RECIPES)} (--recipe)")
    return RECIPES[name]


def recipe_config(name: str, *, has_pool: bool = False, **overrides: object) -> TrainConfig:
    base = get_recipe(name).config(has_pool)
    return base.replace(**overrides) if overrides else base
