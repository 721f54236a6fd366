"""Losses over adapted query vectors and fixed document vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
