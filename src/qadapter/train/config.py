"""Typed training configuration: validated when created, unknown keys rejected with the list of valid ones."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from qadapter.configtools import from_mapping
from qadapter.errors import QadapterError

#: an adapter kind training can fit: a name in :data:`qadapter.adapters.kinds.TRAINABLE_KINDS`
Kind = str


@dataclass(frozen=True)
class TrainConfig:
    """How one adapter is fitted on cached embeddings.

    The defaults are the strong single recipe; ``qadapter.train.recipes`` holds named presets (``seed`` reproduces the
    original notebook) and ``qadapter.train.selection`` searches over several configs on validation data.
    """

    #: one of the trainable kinds of the registry (:mod:`qadapter.adapters.kinds`)
    kind: Kind = "linear"
    #: rank of a ``lowrank`` adapter or hidden size of an ``mlp`` adapter
    hidden: int = 64
    #: ``identity``: start as the identity map (never worse than the base model at step 0); ``random``: as the notebook
    init: Literal["identity", "random"] = "identity"
    #: a name in :data:`qadapter.train.losses.LOSSES`
    loss: str = "contrastive"
    #: softmax temperature of the contrastive loss (cosine similarities are divided by it); 0.03 was chosen over 0.05
    #: and 0.02 on AppleQA development splits (benchmarks/results/recipe_dev.md)
    temperature: float = 0.03
    #: triplet loss margin and norm (the notebook: margin 1, p 2)
    margin: float = 1.0
    #: where negatives come from: ``corpus`` = every training document when there are at most ``max_full_negatives``,
    #: else each query's own ``hard_negatives`` mined with the base model plus the batch's positives and
    #: ``random_negatives`` random training documents, shared by the batch (a step then costs batch x (batch +
    #: random + hard) similarities whatever the corpus size; benchmarks/results/scale.md);
    #: ``pool`` = random rows of an external negative pool (the notebook's out-of-domain document)
    negatives: Literal["corpus", "pool"] = "corpus"
    max_full_negatives: int = 4_096
    hard_negatives: int = 32
    random_negatives: int = 256
    #: documents at least this similar (base model cosine) to a positive are not used as its negatives
    false_negative_threshold: float = 0.98
    lr: float = 2e-3
    weight_decay: float = 0.0
    #: penalty ``identity_reg * ||f(x) - x||^2`` on the training queries, pulling the adapter toward the identity
    identity_reg: float = 0.0
    #: std of Gaussian noise added to training query vectors (augmentation: paraphrases land near, not on, a query)
    input_noise: float = 0.0
    #: label smoothing of the contrastive cross-entropy
    label_smoothing: float = 0.1
    #: weight of the reverse (document -> query) softmax over the batch's queries; queries of the same document are
    #: masked so that they are never each other's negatives
    symmetric: float = 0.0
    #: the largest batch; small training sets use smaller ones so that an epoch still takes at least 16 steps
    batch_size: int = 256
    epochs: int = 15
    warmup_steps: int = 100
    grad_clip: float = 1.0
    #: stop when the validation metric has not improved for this many epochs (0 = never stop early)
    patience: int = 5
    val_metric: str = "mrr@10"
    seed: int = 0
    #: where training and validation run: auto (CUDA, then MPS, else CPU), cpu, cuda, cuda:N or mps
    device: str = "auto"
    #: pairs sampled per epoch when there are more (0 = all): the cost of an epoch stops growing with the corpus
    max_pairs_per_epoch: int = 8_192
    #: the pairs a fit's epochs draw from when there are more (a fixed random sample; 0 = all): a d x d map does not
    #: need more, and mining hard negatives costs per distinct training query (benchmarks/results/scale.md)
    max_training_pairs: int = 32_768
    #: validation queries per part scored after each epoch when a part is larger (a fixed random sample; 0 = all)
    max_val_queries: int = 5_000
    #: search used for hard-negative mining and validation: auto (FAISS above 200k documents when installed), exact,
    #: faiss
    ann: str = "auto"
    #: the dtype training's forward pass and loss compute in (autocast): float32, bfloat16 or float16 (with loss
    #: scaling); parameters, optimiser state and validation stay float32. Reduced dtypes are meant for a GPU
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        from qadapter.adapters.kinds import TRAINABLE_KINDS
        from qadapter.core.ann import ANN_MODES
        from qadapter.core.device import PRECISIONS, is_device_name
        from qadapter.train.losses import LOSSES  # the loss registry (needs torch, as training does)

        check_types(self, "training config")
        checks: list[tuple[bool, str]] = [
            (
                self.kind in TRAINABLE_KINDS,
                f"kind must be one of {', '.join(TRAINABLE_KINDS)}, got {self.kind!r} (--kind)",
            ),
            (self.init in ("identity", "random"), f"init must be identity or random, got {self.init!r}"),
            (self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}"),
            (
                self.negatives in ("corpus", "pool"),
                f"negatives must be corpus or pool, got {self.negatives!r}",
            ),
            (self.hidden >= 1, f"hidden must be >= 1, got {self.hidden}"),
            (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.identity_reg >= 0, f"identity_reg must be >= 0, got {self.identity_reg}"),
            (self.patience >= 0, f"patience must be >= 0, got {self.patience}"),
            (self.input_noise >= 0, f"input_noise must be >= 0, got {self.input_noise}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (
                is_device_name(self.device),
                f"unknown device {self.device!r}; valid devices: auto, cpu, cuda, cuda:N, mps",
            ),
            (
                self.max_pairs_per_epoch >= 0,
                f"max_pairs_per_epoch must be >= 0, got {self.max_pairs_per_epoch}",
            ),
            (self.max_val_queries >= 0, f"max_val_queries must be >= 0, got {self.max_val_queries}"),
            (
                self.max_training_pairs >= 0,
                f"max_training_pairs must be >= 0, got {self.max_training_pairs}",
            ),
            (self.ann in ANN_MODES, f"ann must be one of {', '.join(ANN_MODES)}, got {self.ann!r}"),
            (
                self.compute_dtype in PRECISIONS,
                f"compute_dtype must be one of {', '.join(PRECISIONS)}, got {self.compute_dtype!r} (--compute-dtype)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise QadapterError(f"invalid training config: {message}")
        from qadapter.core.metrics import parse_metric

        kind, k = parse_metric(self.val_metric)
        if kind not in ("hit", "mrr", "ndcg", "recall", "precision") or k is None:
            raise QadapterError(
                f"invalid training config: val_metric must be hit, mrr, ndcg, recall or precision with a cutoff "
                f"(e.g. 'mrr@10'), got {self.val_metric!r}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        return from_mapping(cls, values, "training")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})


@dataclass
class History:
    """Per-epoch training record (what the report plots)."""

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    #: the validation metric of each validation part (e.g. new-documents, seen-documents) per epoch
    val_parts: dict[str, list[float]] = field(default_factory=dict)
    val_metric: str = "mrr@10"
    best_epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` has the type that the annotation ``hint`` names (literals: their values' type)."""
    if typing.get_origin(hint) is Literal:
        return any(type(value) is type(option) for option in typing.get_args(hint))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_accepts(h, value) for h in typing.get_args(hint))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint) or hint
    return isinstance(value, origin) if isinstance(origin, type) else True


def check_types(config: Any, context: str) -> None:
    """One :class:`QadapterError` naming the first field of the dataclass ``config`` whose value has the wrong type
    (a TOML ``epochs = "ten"`` or an API ``seed="3"``), instead of a TypeError deep inside."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if not _accepts(hints[f.name], value):
            raise QadapterError(
                f"invalid {context}: {f.name} must be of type {_type_name(hints[f.name])}, got {value!r} "
                f"({type(value).__name__})"
            )


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))
