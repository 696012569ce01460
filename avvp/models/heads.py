"""Optional heads on the segment features, by name (``model.heads`` in the config).

A head maps ``audio`` and ``visual`` segments (B, T, D) to one tensor, stored under its name in
:attr:`ParserOutput.heads` for the loss terms and training procedures that use it. Its ``reads`` attribute
says which segments: ``"aggregated"`` (the block's output, before the MMIL pooling) or ``"projected"`` (the
input projections, before any attention).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from avvp.models.config import DiscriminatorConfig, HeadsConfig


class GradientReversal(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the gradient by ``-coefficient`` (Ganin et al. 2016)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        """Return ``x`` unchanged (a view), remembering ``coefficient`` for the backward pass."""
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The reversed, scaled gradient for ``x``; none for the coefficient."""
        return -ctx.coefficient * grad, None


def reverse_gradient(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """``x`` in the forward pass; ``-coefficient * grad`` flows back through it."""
    return GradientReversal.apply(x, coefficient)


class ModalityDiscriminator(nn.Module):
    """Tells audio segments from visual ones behind a gradient reversal layer (Lamba et al., eq. 1).

    ``G_m(f) = W_2 ReLU(W_1 f)`` gives one logit per segment feature ``f`` (B, T, D) for "is visual";
    returns the logits (B, T, 2) with the modality axis ordered (audio, visual), like ``frame_prob``.
    """

    reads = "aggregated"

    def __init__(self, d_model: int, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.reversal = config.reversal
        self.classifier = nn.Sequential(
            nn.Linear(d_model, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 1)
        )

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, 2) for aggregated ``audio``, ``visual`` (B, T, D)."""
        stacked = reverse_gradient(torch.stack((audio, visual), dim=2), self.reversal)
        return self.classifier(stacked).squeeze(-1)


def build_heads(config: HeadsConfig, d_model: int) -> nn.ModuleDict:
    """The enabled heads of ``config`` by name (an empty dict when none is)."""
    heads = nn.ModuleDict()
    if config.modality_discriminator is not None:
        heads["modality_discriminator"] = ModalityDiscriminator(d_model, config.modality_discriminator)
    return heads
