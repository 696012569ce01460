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

from avvp.data.labels import NUM_CLASSES
from avvp.models.config import DiscriminatorConfig, HeadsConfig, ModalitySeparatedConfig


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


class ModalitySeparatedDecision(nn.Module):
    """The modality-separated decision unit (MSDU, paper 004 eq. 11) on the projected segments ``e_a``, ``e_v``.

    Each modality ``m`` has its own classifier and temporal attention, ``Linear(d, C)`` each:
    ``P_m = sigmoid(phi_m(e_m))`` and ``A_m = softmax_t(Atn_m(e_m))`` (B, T, C); its video-level probability
    is ``p_m = sum_t A_m * P_m``. Returns (B, 2, C), the modality axis ordered (audio, visual). With
    ``detach``, no gradient flows from these heads into the projections.
    """

    reads = "projected"

    def __init__(self, d_model: int, config: ModalitySeparatedConfig) -> None:
        super().__init__()
        self.detach = config.detach
        self.classifiers = nn.ModuleList(nn.Linear(d_model, NUM_CLASSES) for _ in range(2))
        self.attentions = nn.ModuleList(nn.Linear(d_model, NUM_CLASSES) for _ in range(2))

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Video-level probabilities (B, 2, C) of projected ``audio``, ``visual`` (B, T, D)."""
        probabilities = []
        for segments, classifier, attention in zip(
            (audio, visual), self.classifiers, self.attentions, strict=True
        ):
            if self.detach:
                segments = segments.detach()
            weights = torch.softmax(attention(segments), dim=1)
            probabilities.append((weights * torch.sigmoid(classifier(segments))).sum(dim=1))
        return torch.stack(probabilities, dim=1)


def build_heads(config: HeadsConfig, d_model: int) -> nn.ModuleDict:
    """The enabled heads of ``config`` by name (an empty dict when none is)."""
    heads = nn.ModuleDict()
    if config.modality_discriminator is not None:
        heads["modality_discriminator"] = ModalityDiscriminator(d_model, config.modality_discriminator)
    if config.modality_separated is not None:
        heads["modality_separated"] = ModalitySeparatedDecision(d_model, config.modality_separated)
    return heads
