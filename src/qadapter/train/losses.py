"""Losses over adapted query vectors and fixed document vectors, and the registry the trainer reads.

:data:`LOSSES` maps a loss name to a :class:`LossSpec`: the step that turns one batch of adapted queries into a loss,
and whether it needs the negative plan. Adding a loss = one step function + one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from qadapter.train.negatives import NegativePlan, excluded_pairs

if TYPE_CHECKING:
    from qadapter.train.config import TrainConfig


def contrastive_loss(
    queries: torch.Tensor,
    docs: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None,
    temperature: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """InfoNCE / softmax cross-entropy: each query against candidate documents, the positive at ``target``.

    ``queries`` (B, d) are adapted query vectors, ``docs`` (C, d) candidate documents (normalised here, so the
    logits are cosine similarities / temperature, the same similarity the vector store ranks by), ``mask`` (B, C) is
    True where a candidate must be ignored (false negatives). van den Oord et al., "Representation Learning with
    Contrastive Predictive Coding", 2018.
    """
    q = F.normalize(queries, dim=-1)
    d = F.normalize(docs, dim=-1)
    logits = q @ d.T / temperature
    if mask is not None:
        logits = logits.masked_fill(mask, float("-inf"))
    if label_smoothing > 0:
        # smooth only over the candidates that are not masked (masked logits are -inf and would give inf loss)
        logp = F.log_softmax(logits, dim=-1)
        valid = torch.isfinite(logits)
        nll = -logp.gather(1, target[:, None]).squeeze(1)
        uniform = -(logp.masked_fill(~valid, 0.0).sum(dim=-1) / valid.sum(dim=-1))
        return ((1 - label_smoothing) * nll + label_smoothing * uniform).mean()
    return F.cross_entropy(logits, target)


def triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float
) -> torch.Tensor:
    """The original notebook's loss: ``max(0, ||a - p||_2 - ||a - n||_2 + margin)`` on raw vectors."""
    return F.triplet_margin_loss(anchor, positive, negative, margin=margin, p=2)


def identity_penalty(adapted: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between adapted and original query vectors (regularises toward the identity)."""
    return (adapted - original).pow(2).sum(dim=-1).mean()


@dataclass
class BatchInputs:
    """What a loss step may read besides the adapted queries: documents (columns) on the training device, each pair's
    positive column, the negative plan (when the loss asked for one), the negative pool, the config and the rng."""

    docs: torch.Tensor
    pair_pos_col: np.ndarray
    plan: NegativePlan | None
    pool: torch.Tensor | None
    config: TrainConfig
    rng: np.random.Generator

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.docs.device)


LossStep = Callable[[BatchInputs, np.ndarray, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LossSpec:
    step: LossStep
    #: the step reads ``BatchInputs.plan`` (always built for it; other losses get one with ``negatives="corpus"``)
    needs_plan: bool


def _candidates(inputs: BatchInputs, plan: NegativePlan, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns the batch is contrasted against and each pair's target among them."""
    pos_cols = plan.pair_pos_col[batch]
    if plan.full:
        return np.arange(inputs.docs.shape[0]), pos_cols
    assert plan.hard is not None
    extra = inputs.rng.integers(inputs.docs.shape[0], size=inputs.config.random_negatives)
    cols = np.unique(np.concatenate([pos_cols, plan.hard[plan.pair_query[batch]].ravel(), extra]))
    return cols, np.searchsorted(cols, pos_cols)


def _false_negative_mask(plan: NegativePlan, batch: np.ndarray, cols: np.ndarray) -> np.ndarray:
    mask = np.zeros((len(batch), len(cols)), dtype=bool)
    rows, excl = excluded_pairs(plan, batch)
    if len(excl) and plan.full:
        mask[rows, excl] = True
    elif len(excl):
        where = np.searchsorted(cols, excl)
        ok = (where < len(cols)) & (cols[np.minimum(where, len(cols) - 1)] == excl)
        mask[rows[ok], where[ok]] = True
    return mask


def contrastive_step(inputs: BatchInputs, batch: np.ndarray, adapted: torch.Tensor) -> torch.Tensor:
    """Softmax over the plan's candidates (all training documents, or hard + random ones) with false negatives
    masked; plus ``symmetric`` x the reverse (document -> query) softmax over the batch."""
    plan, config = inputs.plan, inputs.config
    assert plan is not None
    cols, target = _candidates(inputs, plan, batch)
    mask = _false_negative_mask(plan, batch, cols)
    docs = inputs.docs if plan.full else inputs.docs[inputs.tensor(cols)]
    target_t = inputs.tensor(target)
    loss = contrastive_loss(
        adapted, docs, target_t, inputs.tensor(mask), config.temperature, config.label_smoothing
    )
    if config.symmetric > 0:
        pos_cols = plan.pair_pos_col[batch]
        same_doc = inputs.tensor(pos_cols[:, None] == pos_cols[None, :])
        same_doc.fill_diagonal_(False)
        arange = torch.arange(len(batch), device=adapted.device)
        reverse = contrastive_loss(docs[target_t], adapted, arange, same_doc, config.temperature)
        loss = loss + config.symmetric * reverse
    return loss


def _random_negatives(n_cols: int, pos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random training-document column per pair that is not its positive (triplet loss, corpus negatives)."""
    picks = rng.integers(n_cols, size=len(pos))
    clash = picks == pos
    picks[clash] = (picks[clash] + 1) % max(n_cols, 1)
    return picks


def triplet_step(inputs: BatchInputs, batch: np.ndarray, adapted: torch.Tensor) -> torch.Tensor:
    """The notebook's triplet loss against one negative per pair: a pool row, or a random training document."""
    pos = inputs.pair_pos_col[batch]
    positive = inputs.docs[inputs.tensor(pos)]
    if inputs.config.negatives == "pool":
        assert inputs.pool is not None
        negative = inputs.pool[inputs.tensor(inputs.rng.integers(len(inputs.pool), size=len(batch)))]
    else:
        negative = inputs.docs[inputs.tensor(_random_negatives(inputs.docs.shape[0], pos, inputs.rng))]
    return triplet_loss(adapted, positive, negative, inputs.config.margin)


#: every training loss: name -> step (TrainConfig.loss names one of these)
LOSSES: dict[str, LossSpec] = {
    "contrastive": LossSpec(contrastive_step, needs_plan=True),
    "triplet": LossSpec(triplet_step, needs_plan=False),
}
