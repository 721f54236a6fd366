"""Losses over adapted query vectors and fixed document vectors, and the registry the trainer reads.

:data:`LOSSES` maps a loss name to a :class:`LossSpec`: how one batch of adapted queries becomes a loss, in two
halves (``prepare``: what does not depend on the adapter, drawn once per batch and shared by the adapters trained
together; ``finish``: the loss of one adapter's queries), and whether it needs the negative plan. Adding a loss = a
prepare and a finish function + one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    return softmax_loss(q @ d.T / temperature, target, mask, label_smoothing)


def softmax_loss(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy of ``logits`` (B, C) with the positive at ``target``; ``mask`` True = not a candidate."""
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
    _unit_docs: torch.Tensor | None = None

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.docs.device)

    @property
    def unit_docs(self) -> torch.Tensor:
        """The documents normalised once (row-wise, so a gathered row equals the gathered row normalised)."""
        if self._unit_docs is None:
            self._unit_docs = F.normalize(self.docs, dim=-1)
        return self._unit_docs


#: the half of a step that does not depend on the adapter: negatives drawn, masks, documents gathered
LossPrepare = Callable[[BatchInputs, np.ndarray], Any]
#: the half that does: (inputs, prepared, adapted queries) -> loss
LossFinish = Callable[[BatchInputs, Any, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LossSpec:
    """A loss as two halves, so that adapters trained together on the same batches share the first."""

    prepare: LossPrepare
    finish: LossFinish
    #: it reads ``BatchInputs.plan`` (always built for it; other losses get one with ``negatives="corpus"``)
    needs_plan: bool

    def step(self, inputs: BatchInputs, batch: np.ndarray, adapted: torch.Tensor) -> torch.Tensor:
        """The loss of one batch for one adapter."""
        return self.finish(inputs, self.prepare(inputs, batch), adapted)


def _false_negative_mask(plan: NegativePlan, batch: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(batch, cols) True where a column is one of the pair's false negatives (``cols`` sorted)."""
    mask = np.zeros((len(batch), len(cols)), dtype=bool)
    rows, excl = excluded_pairs(plan, batch)
    if len(excl) and plan.full:
        mask[rows, excl] = True
    elif len(excl):
        where = np.searchsorted(cols, excl)
        ok = (where < len(cols)) & (cols[np.minimum(where, len(cols) - 1)] == excl)
        mask[rows[ok], where[ok]] = True
    return mask


def _hard_mask(plan: NegativePlan, batch: np.ndarray, hard: np.ndarray, shared: np.ndarray) -> np.ndarray:
    """(batch, n_hard) True where a pair's own hard negative must not count: one of its false negatives, its
    positive, or a column already among the shared candidates (it would be counted twice)."""
    n_cols = np.int64(max(len(plan.columns), 1))
    rows, excl = excluded_pairs(plan, batch)
    codes = np.arange(len(batch), dtype=np.int64)[:, None] * n_cols + hard
    masked = np.isin(codes, rows * n_cols + excl) if len(excl) else np.zeros(hard.shape, dtype=bool)
    return masked | (hard == plan.pair_pos_col[batch][:, None]) | np.isin(hard, shared)


@dataclass
class ContrastiveBatch:
    """What the contrastive loss of a batch needs besides the adapted queries (prepared once, shared by the adapters
    trained together): the candidate documents (normalised), each pair's target, the mask, and the hard negatives."""

    docs: torch.Tensor  # (candidates, dim) shared by the batch
    target: torch.Tensor
    mask: torch.Tensor  # (batch, candidates [+ n_hard]) True = not a candidate
    hard_docs: torch.Tensor | None  # (batch, n_hard, dim) each pair's own hard negatives, sampled mode only
    pos_cols: np.ndarray


def contrastive_prepare(inputs: BatchInputs, batch: np.ndarray) -> ContrastiveBatch:
    """Candidates: all training documents (full plan) or, for large corpora, columns shared by the batch (its
    positives and ``random_negatives`` random documents) plus each query's own hard negatives; false negatives
    (other positives, near-duplicates of the positive) and hard negatives already shared are masked."""
    plan, config = inputs.plan, inputs.config
    assert plan is not None
    pos_cols = plan.pair_pos_col[batch]
    if plan.full:
        cols, target = np.arange(inputs.docs.shape[0]), pos_cols
        docs = inputs.unit_docs  # normalised once per fit, not once per step
        return ContrastiveBatch(
            docs,
            inputs.tensor(target),
            inputs.tensor(_false_negative_mask(plan, batch, cols)),
            None,
            pos_cols,
        )
    extra = inputs.rng.integers(inputs.docs.shape[0], size=config.random_negatives)
    cols = np.unique(np.concatenate([pos_cols, extra]))
    target, docs = np.searchsorted(cols, pos_cols), inputs.unit_docs.index_select(0, inputs.tensor(cols))
    mask = _false_negative_mask(plan, batch, cols)
    with torch.no_grad():  # near-duplicates of each positive among the shared columns
        near = inputs.unit_docs.index_select(0, inputs.tensor(pos_cols)) @ docs.T >= plan.threshold
    near[torch.arange(len(batch), device=near.device), inputs.tensor(target)] = False
    mask |= near.cpu().numpy()
    assert plan.hard is not None
    hard = plan.hard[plan.pair_query[batch]]
    # (batch, n_hard, dim) gathered rows (index_select: ~4x faster than fancy indexing on CPU)
    hard_docs = inputs.unit_docs.index_select(0, inputs.tensor(hard.ravel())).view(*hard.shape, -1)
    mask = np.concatenate([mask, _hard_mask(plan, batch, hard, cols)], axis=1)
    return ContrastiveBatch(docs, inputs.tensor(target), inputs.tensor(mask), hard_docs, pos_cols)


def contrastive_finish(
    inputs: BatchInputs, prepared: ContrastiveBatch, adapted: torch.Tensor
) -> torch.Tensor:
    """Softmax cross-entropy over the prepared candidates; plus ``symmetric`` x the reverse (document -> query)
    softmax over the batch."""
    config = inputs.config
    q = F.normalize(adapted, dim=-1)
    logits = q @ prepared.docs.T
    if prepared.hard_docs is not None:
        logits = torch.cat([logits, torch.einsum("bd,bhd->bh", q, prepared.hard_docs)], dim=1)
    loss = softmax_loss(logits / config.temperature, prepared.target, prepared.mask, config.label_smoothing)
    if config.symmetric > 0:
        pos_cols = prepared.pos_cols
        same_doc = inputs.tensor(pos_cols[:, None] == pos_cols[None, :])
        same_doc.fill_diagonal_(False)
        arange = torch.arange(len(pos_cols), device=adapted.device)
        reverse = contrastive_loss(
            prepared.docs[prepared.target], adapted, arange, same_doc, config.temperature
        )
        loss = loss + config.symmetric * reverse
    return loss


def _random_negatives(n_cols: int, pos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random training-document column per pair that is not its positive (triplet loss, corpus negatives)."""
    picks = rng.integers(n_cols, size=len(pos))
    clash = picks == pos
    picks[clash] = (picks[clash] + 1) % max(n_cols, 1)
    return picks


def triplet_prepare(inputs: BatchInputs, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The notebook's triplet: each pair's positive and one negative (a pool row, or a random training document)."""
    pos = inputs.pair_pos_col[batch]
    positive = inputs.docs[inputs.tensor(pos)]
    if inputs.config.negatives == "pool":
        assert inputs.pool is not None
        negative = inputs.pool[inputs.tensor(inputs.rng.integers(len(inputs.pool), size=len(batch)))]
    else:
        negative = inputs.docs[inputs.tensor(_random_negatives(inputs.docs.shape[0], pos, inputs.rng))]
    return positive, negative


def triplet_finish(
    inputs: BatchInputs, prepared: tuple[torch.Tensor, torch.Tensor], adapted: torch.Tensor
) -> torch.Tensor:
    return triplet_loss(adapted, *prepared, inputs.config.margin)


#: every training loss: name -> its two halves (TrainConfig.loss names one of these)
LOSSES: dict[str, LossSpec] = {
    "contrastive": LossSpec(contrastive_prepare, contrastive_finish, needs_plan=True),
    "triplet": LossSpec(triplet_prepare, triplet_finish, needs_plan=False),
}
