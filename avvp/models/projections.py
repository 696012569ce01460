"""Input projections: VGGish, ResNet152 and R(2+1)D features to the parser's width ``d`` (Tian et al. 2020)."""

from __future__ import annotations

import torch
from torch import nn

from avvp.data.features import FEATURE_SHAPES
from avvp.data.labels import NUM_SEGMENTS


class InputProjections(nn.Module):
    """``a = W_a x_vggish``; ``v = W_f [W_r mean_8(x_resnet) ; W_m x_r2plus1d]`` (B, T, d) each.

    ResNet152 frames are averaged per second before their projection, which equals the published
    project-then-average because the projection is linear; ``resnet152`` may also come already averaged.
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.audio = nn.Linear(FEATURE_SHAPES["vggish"][1], d_model)
        self.frames = nn.Linear(FEATURE_SHAPES["resnet152"][1], d_model)
        self.motion = nn.Linear(FEATURE_SHAPES["r2plus1d"][1], d_model)
        self.visual_fusion = nn.Linear(2 * d_model, d_model)

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Project ``vggish`` (B, 10, 128), ``resnet152`` (B, 10*k, 2048), ``r2plus1d`` (B, 10, 512).

        Returns audio and visual segments, (B, 10, d) each.
        """
        frames = features["resnet152"]
        b, n, dim = frames.shape
        per_second = frames.reshape(b, NUM_SEGMENTS, n // NUM_SEGMENTS, dim).mean(dim=2)
        fused = torch.cat((self.frames(per_second), self.motion(features["r2plus1d"])), dim=-1)
        return self.audio(features["vggish"]), self.visual_fusion(fused)
