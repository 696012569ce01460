"""The audio-visual grounding (AVG) encoder of Lamba et al. (Interspeech 2022, section 3.2), UNITER-style.

FC layers embed each second's VGGish and (per-second mean) ResNet152 features; a modality embedding and a
segment-position embedding are added; a multi-layer Transformer encodes the 20 tokens (10 audio, 10 visual)
jointly and returns contextual snippet embeddings ``a_i`` and ``v_i``. ``avvp pretrain`` trains it on the
grounding graphs; a parser can then put it in front of its input projections (``model.input_encoder``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from avvp.data.features import FEATURE_SHAPES
from avvp.data.labels import NUM_SEGMENTS
from avvp.models.projections import per_second


class AVGEncoderConfig(BaseModel):
    """Sizes of the AVG encoder (defaults: a small UNITER, see docs/pretraining.md)."""

    model_config = ConfigDict(extra="forbid")

    d_model: int = Field(512, gt=0, description="width of the token embeddings and of the Transformer")
    layers: int = Field(2, gt=0, description="Transformer encoder layers")
    num_heads: int = Field(8, gt=0, description="attention heads (must divide d_model)")
    feedforward: int = Field(1024, gt=0, description="hidden width of each layer's feed-forward block")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> AVGEncoderConfig:
        if self.d_model % self.num_heads:
            raise ValueError(f"num_heads {self.num_heads} does not divide d_model {self.d_model}")
        return self


class AVGEncoder(nn.Module):
    """Joint Transformer over the 10 audio and 10 visual snippets of a clip.

    ``forward({"vggish": (B, 10, 128), "resnet152": (B, 10*k, 2048)})`` returns ``(a, v)``, (B, 10, d) each;
    ResNet152 frames are averaged per second first (k = 1 when they already are).
    """

    feature_kinds: tuple[str, ...] = ("vggish", "resnet152")
    modality_modules: ClassVar[dict[str, tuple[str, ...]]] = {"audio": ("audio",), "visual": ("visual",)}
    """Submodules that process one modality only: the input embeddings (the Transformer, the modality and
    position embeddings serve both)."""

    def __init__(self, config: AVGEncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.audio = nn.Linear(FEATURE_SHAPES["vggish"][1], d)
        self.visual = nn.Linear(FEATURE_SHAPES["resnet152"][1], d)
        self.modality = nn.Embedding(2, d)
        self.position = nn.Embedding(NUM_SEGMENTS, d)
        self.embedding_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            d, config.num_heads, config.feedforward, config.dropout, batch_first=True, norm_first=False
        )
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Contextual audio and visual snippet embeddings (B, 10, d) each of ``vggish`` and ``resnet152``."""
        frames = per_second(features["resnet152"])
        positions = self.position.weight  # (10, d)
        audio = self.audio(features["vggish"]) + positions + self.modality.weight[0]
        visual = self.visual(frames) + positions + self.modality.weight[1]
        tokens = self.dropout(self.embedding_norm(torch.cat((audio, visual), dim=1)))
        encoded = self.transformer(tokens)
        return encoded[:, :NUM_SEGMENTS], encoded[:, NUM_SEGMENTS:]
