"""One typed path for the train stage's options, whether they come from the CLI, a ``--config`` TOML file or the
Python API: :class:`TrainOptions` (what to train on and how to choose) plus :class:`TrainConfig` overrides (how one
adapter is fitted). A bad key or a bad type is one :class:`QadapterError` line naming it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qadapter.errors import QadapterError
from qadapter.train.config import TrainConfig, check_types
from qadapter.train.objectives import check_objective
from qadapter.train.recipes import get_recipe


@dataclass(frozen=True)
class TrainOptions:
    """The train stage's own options (``train()``'s keywords of the same names)."""

    #: qrels split(s) to train on; several are merged (``--split generated-train --split log-train``)
    split: str | tuple[str, ...] = "train"
    recipe: str = "default"
    objective: str = "auto"
    seed: int = 0
    #: offline pseudo-queries added per training document (0 = none)
    pseudo_queries: int = 10
    learning_curve: bool = True
    #: how many times a real query (no ``generator`` in its metadata) counts against a synthetic one
    real_weight: float = 1.0
    #: out-of-domain negatives (workspace folder or documents) for the ``seed`` recipe
    negatives: str | None = None

    def __post_init__(self) -> None:
        check_types(self, "training option")
        get_recipe(self.recipe)
        check_objective(self.objective)
        if not self.splits or any(not s for s in self.splits):
            raise QadapterError(
                f"invalid training option: split must name at least one split, got {self.split!r}"
            )
        if self.pseudo_queries < 0:
            raise QadapterError(
                f"invalid training option: pseudo_queries must be >= 0, got {self.pseudo_queries}"
            )
        if not self.real_weight > 0:
            raise QadapterError(
                f"invalid training option: real_weight must be > 0, got {self.real_weight} (--real-weight)"
            )

    @property
    def splits(self) -> tuple[str, ...]:
        return (self.split,) if isinstance(self.split, str) else tuple(self.split)

    @classmethod
    def create(cls, **values: Any) -> TrainOptions:
        """From keyword values as a user gives them: a list of splits becomes a tuple, a path a string."""
        split = values.get("split")
        if isinstance(split, Sequence) and not isinstance(split, str):
            values["split"] = tuple(split)
        if isinstance(values.get("negatives"), Path):
            values["negatives"] = str(values["negatives"])
        return cls(**values)


OPTION_KEYS = tuple(f.name for f in dataclasses.fields(TrainOptions))
CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig))


def check_keys(values: Mapping[str, Any], source: str = "training option") -> None:
    """One line naming every key of ``values`` that is neither a train option nor a :class:`TrainConfig` field."""
    unknown = sorted(set(values) - set(OPTION_KEYS) - set(CONFIG_KEYS))
    if unknown:
        raise QadapterError(
            f"unknown {source}(s) {unknown}; valid options: {', '.join(sorted(OPTION_KEYS + CONFIG_KEYS))}"
        )


def split_values(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``values`` (a TOML table merged with flags) as (train options, TrainConfig overrides), unknown keys refused."""
    check_keys(values)
    options = {k: v for k, v in values.items() if k in OPTION_KEYS}
    overrides = {k: v for k, v in values.items() if k not in OPTION_KEYS}
    return options, overrides
