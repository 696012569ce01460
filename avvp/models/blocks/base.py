"""The Base block of Lamba et al. (Interspeech 2022, section 4 and its footnote), with their skip connections.

Base differs from HAN in two places: each modality has its own self-attention layer (HAN shares one), and
the cross-modal fusion attends over the self-attended features (HAN attends over the projected features)::

    a_s = SelfLayer_a(a)          v_s = SelfLayer_v(v)
    a'  = CrossLayer(a_s, v_s) [+ a_s with skip.audio]
    v'  = CrossLayer(v_s, a_s) [+ v_s with skip.visual]

The cross-modal layer is shared by the two directions, as HAN's layer is. A modality that aggregates
``self`` keeps its self-attended features (``a' = a_s``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from avvp.models.blocks.layer import AttentionLayer
from avvp.models.config import ParserConfig


class BaseBlock(nn.Module):
    """Separate self-attention per modality, then a shared cross-modal layer with optional skip connections."""

    modality_modules: ClassVar[dict[str, tuple[str, ...]]] = {
        "audio": ("audio_self",),
        "visual": ("visual_self",),
    }
    """Submodules that process one modality only; the cross-modal layer serves both."""

    def __init__(self, config: ParserConfig) -> None:
        super().__init__()
        self.audio_self = AttentionLayer(config, ("self",))
        self.visual_self = AttentionLayer(config, ("self",))
        self.cross = AttentionLayer(config, ("cross",))
        self.config = config

    def _fuse(
        self, query: torch.Tensor, other: torch.Tensor, modality: str, cross_modal: bool
    ) -> torch.Tensor:
        """Cross-modal update of the self-attended ``query`` from ``other`` (B, T, D), as configured."""
        if not cross_modal or getattr(self.config, f"{modality}_aggregation") != "cross":
            return query
        fused = self.cross(query, other)
        return fused + query if getattr(self.config.skip, modality) else fused

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, cross_modal: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregate projected ``audio``, ``visual`` (B, T, D); returns both streams (B, T, D).

        ``cross_modal=False`` skips the cross-modal layer: each stream keeps its self-attended features.
        """
        audio_self, visual_self = self.audio_self(audio), self.visual_self(visual)
        return (
            self._fuse(audio_self, visual_self, "audio", cross_modal),
            self._fuse(visual_self, audio_self, "visual", cross_modal),
        )
