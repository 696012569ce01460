"""The HAN block (Tian et al. 2020) with the aggregation variants of Pasi et al. (Interspeech 2022).

One :class:`~avvp.models.blocks.layer.AttentionLayer` is shared by the audio and the visual stream. For the
stream being updated it adds self-attention over its own segments and, when that stream aggregates
``cross``, cross-modal attention over the other stream's projected segments (eq. 1, 2 of Pasi et al.); with
``self`` the cross term is left out (eq. 7, 8).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from avvp.models.blocks.layer import AttentionLayer
from avvp.models.config import ParserConfig


class HANBlock(nn.Module):
    """``a' = Layer(a, v)``, ``v' = Layer(v, a)`` with one shared layer (cross terms as configured)."""

    modality_modules: ClassVar[dict[str, tuple[str, ...]]] = {}
    """None: the one layer serves both modalities."""

    def __init__(self, config: ParserConfig) -> None:
        super().__init__()
        self.layer = AttentionLayer(config, ("self", "cross"))
        self.audio_cross = config.audio_aggregation == "cross"
        self.visual_cross = config.visual_aggregation == "cross"

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, cross_modal: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregate projected ``audio``, ``visual`` (B, T, D); returns both streams (B, T, D).

        ``cross_modal=False`` leaves out every cross-modal term (self-attention only, as with ``self``
        aggregation for both modalities).
        """
        aggregated_audio = self.layer(audio, visual if self.audio_cross and cross_modal else None)
        aggregated_visual = self.layer(visual, audio if self.visual_cross and cross_modal else None)
        return aggregated_audio, aggregated_visual
