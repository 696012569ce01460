"""The audio-visual grounding losses of Lamba et al. (appendix, eq. 1-3): margins on cosine similarities.

For the snippet embeddings of one clip (``a_i``, ``v_i``, i = 1..10) and its grounding graph ``GT``
(``avvp build-graphs``), a pair of snippets (x_i, y_j) is positive where ``GT(i, j) = 1`` and costs
``[p - cos(x_i, y_j)]_+``; a negative pair costs ``[cos(x_i, y_j) - n]_+``. ``u-avg`` takes the audio-audio
and visual-visual pairs (i != j: a snippet with itself is always at cosine 1), ``x-avg`` the audio-visual
and visual-audio pairs (all i, j: ``(a_i, v_i)`` is a real pair), ``m-avg`` both. Only pairs within a clip
enter: Algorithm 1 defines GT there and nowhere else (docs/pretraining.md says why across-clip pairs are
not taken as negatives). Each sum over pairs of eq. 1-2 is replaced by the mean over the pairs that enter,
so the loss does not scale with the batch size.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional

Variant = Literal["uni", "cross", "multi"]


def cosine_matrix(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cosine similarities (B, T, T) between the snippets of ``x`` (B, T, D) and of ``y`` (B, T, D)."""
    return functional.normalize(x.float(), dim=-1) @ functional.normalize(y.float(), dim=-1).transpose(1, 2)


def margin_loss(
    similarity: torch.Tensor, positive: torch.Tensor, mask: torch.Tensor, p: float, n: float
) -> torch.Tensor:
    """Mean over the pairs in ``mask`` of ``[p - s]_+`` (positive pairs) or ``[s - n]_+`` (negative pairs).

    ``similarity`` (B, T, T) float; ``positive`` and ``mask`` (B, T, T) or (T, T) bool. Returns a scalar.
    """
    costs = torch.where(positive, (p - similarity).clamp(min=0), (similarity - n).clamp(min=0))
    weights = mask.expand_as(costs).float()
    return (costs * weights).sum() / weights.sum().clamp(min=1.0)


def grounding_losses(
    audio: torch.Tensor, visual: torch.Tensor, graphs: torch.Tensor, variant: Variant, p: float, n: float
) -> dict[str, torch.Tensor]:
    """The AVG losses of a batch: ``L_u`` (uni), ``L_x`` (cross) as the variant needs, and ``L_avg`` (their sum).

    ``audio``, ``visual`` (B, T, D) snippet embeddings; ``graphs`` (B, T, T) bool grounding ground truth.
    """
    t = graphs.shape[-1]
    off_diagonal = ~torch.eye(t, dtype=torch.bool, device=graphs.device)
    every_pair = torch.ones(t, t, dtype=torch.bool, device=graphs.device)
    losses: dict[str, torch.Tensor] = {}
    if variant in ("uni", "multi"):
        losses["L_u"] = margin_loss(cosine_matrix(audio, audio), graphs, off_diagonal, p, n) + margin_loss(
            cosine_matrix(visual, visual), graphs, off_diagonal, p, n
        )
    if variant in ("cross", "multi"):
        losses["L_x"] = margin_loss(cosine_matrix(audio, visual), graphs, every_pair, p, n) + margin_loss(
            cosine_matrix(visual, audio), graphs, every_pair, p, n
        )
    losses["L_avg"] = sum(losses.values())
    return losses
