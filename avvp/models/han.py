"""The hybrid attention network (HAN, Tian et al. 2020) with the aggregation variants of Pasi et al.

One HAN layer is shared by the audio and the visual stream. For the stream being updated (the query) it
adds self-attention over its own segments and, when that stream aggregates ``cross``, cross-modal
attention over the other stream's segments (eq. 1, 2 of Pasi et al.); with ``self`` the cross term is left
out (eq. 7, 8). ``audio_aggregation=cross, visual_aggregation=cross`` is the published HAN.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional

from avvp.data.labels import NUM_CLASSES, NUM_SEGMENTS
from avvp.models.output import ParserOutput
from avvp.models.pooling import AttentiveMMILPooling

Aggregation = Literal["self", "cross"]


class HANConfig(BaseModel):
    """Sizes and aggregation variant of :class:`HybridAttentionParser` (defaults: the published recipe)."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["han"] = "han"
    d_model: int = Field(512, gt=0, description="width of the projected features and the HAN layer")
    num_heads: int = Field(1, gt=0, description="attention heads (must divide d_model)")
    feedforward: int = Field(512, gt=0, description="hidden width of the HAN feed-forward block")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout in attention and feed-forward")
    audio_aggregation: Aggregation = Field("cross", description="A_cross (eq. 1) or A_self (eq. 8)")
    visual_aggregation: Aggregation = Field("cross", description="V_cross (eq. 2) or V_self (eq. 7)")


class HANLayer(nn.Module):
    """One hybrid attention layer: (self + optional cross-modal attention), add & norm, feed-forward, add & norm."""

    def __init__(self, d_model: int, num_heads: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_attention = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.cross_attention = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.feedforward_in = nn.Linear(d_model, feedforward)
        self.feedforward_out = nn.Linear(feedforward, d_model)
        self.attention_norm = nn.LayerNorm(d_model)
        self.feedforward_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, other: torch.Tensor, cross: bool) -> torch.Tensor:
        """Update ``query`` (B, T, D) from itself and, if ``cross``, from ``other`` (B, T, D); returns (B, T, D)."""
        update = self.dropout(self.self_attention(query, query, query, need_weights=False)[0])
        if cross:
            update = update + self.dropout(self.cross_attention(query, other, other, need_weights=False)[0])
        hidden = self.attention_norm(query + update)
        expanded = self.dropout(functional.relu(self.feedforward_in(hidden)))
        return self.feedforward_norm(hidden + self.dropout(self.feedforward_out(expanded)))


class HybridAttentionParser(nn.Module):
    """HAN + attentive MMIL pooling over VGGish audio and fused ResNet152 / R(2+1)D visual features.

    Inputs (a dict of float tensors): ``vggish`` (B, 10, 128), ``resnet152`` (B, 10*k, 2048) with k frames
    per second (8 in LLP; k = 1 when the caller already averaged per second), ``r2plus1d`` (B, 10, 512).
    ResNet152 frames are averaged per second before their projection, which equals the published
    project-then-average because the projection is linear. Returns a :class:`ParserOutput`.
    """

    feature_kinds: tuple[str, ...] = ("vggish", "resnet152", "r2plus1d")

    def __init__(self, config: HANConfig) -> None:
        super().__init__()
        if config.d_model % config.num_heads:
            raise ValueError(f"d_model {config.d_model} is not divisible by num_heads {config.num_heads}")
        self.config = config
        d = config.d_model
        self.audio_projection = nn.Linear(128, d)
        self.frame_projection = nn.Linear(2048, d)
        self.motion_projection = nn.Linear(512, d)
        self.visual_fusion = nn.Linear(2 * d, d)
        self.han_layer = HANLayer(d, config.num_heads, config.feedforward, config.dropout)
        self.pooling = AttentiveMMILPooling(d, NUM_CLASSES)

    def embed_visual(self, frames: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """Fuse ResNet152 ``frames`` (B, 10*k, 2048) and R(2+1)D ``motion`` (B, 10, 512) into (B, 10, D)."""
        b, n, dim = frames.shape
        per_second = frames.reshape(b, NUM_SEGMENTS, n // NUM_SEGMENTS, dim).mean(dim=2)
        fused = torch.cat((self.frame_projection(per_second), self.motion_projection(motion)), dim=-1)
        return self.visual_fusion(fused)

    def forward(self, features: dict[str, torch.Tensor]) -> ParserOutput:
        """Parse a batch: ``features`` as in the class docstring; returns a :class:`ParserOutput`."""
        audio = self.audio_projection(features["vggish"])
        visual = self.embed_visual(features["resnet152"], features["r2plus1d"])
        audio_cross = self.config.audio_aggregation == "cross"
        visual_cross = self.config.visual_aggregation == "cross"
        aggregated_audio = self.han_layer(audio, visual, cross=audio_cross)
        aggregated_visual = self.han_layer(visual, audio, cross=visual_cross)
        return self.pooling(aggregated_audio, aggregated_visual)
