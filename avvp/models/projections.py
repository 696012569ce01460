"""Input projections: VGGish, ResNet152 and R(2+1)D features to the parser's width ``d`` (Tian et al. 2020)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from avvp.data.features import FEATURE_SHAPES
from avvp.data.labels import NUM_SEGMENTS


def per_second(frames: torch.Tensor) -> torch.Tensor:
    """Mean of each second's frames: (B, 10*k, D) -> (B, 10, D) (unchanged when k = 1)."""
    b, n, dim = frames.shape
    return frames.reshape(b, NUM_SEGMENTS, n // NUM_SEGMENTS, dim).mean(dim=2)


class InputProjections(nn.Module):
    """``a = W_a x_audio``; ``v = W_f [W_r mean_k(x_frames) ; W_m x_motion]`` (B, T, d) each.

    The audio and frame inputs are VGGish and ResNet152 features (widths 128 and 2048, the defaults), or an
    input encoder's snippet embeddings. Frames are averaged per second before their projection, which
    equals the published project-then-average because the projection is linear.
    """

    modality_modules: ClassVar[dict[str, tuple[str, ...]]] = {
        "audio": ("audio",),
        "visual": ("frames", "motion", "visual_fusion"),
    }
    """Submodules that process one modality only (see :meth:`Parser.modality_parameters`)."""

    def __init__(
        self,
        d_model: int,
        audio_width: int = FEATURE_SHAPES["vggish"][1],
        frames_width: int = FEATURE_SHAPES["resnet152"][1],
    ) -> None:
        super().__init__()
        self.audio = nn.Linear(audio_width, d_model)
        self.frames = nn.Linear(frames_width, d_model)
        self.motion = nn.Linear(FEATURE_SHAPES["r2plus1d"][1], d_model)
        self.visual_fusion = nn.Linear(2 * d_model, d_model)

    def forward(
        self, audio: torch.Tensor, frames: torch.Tensor, motion: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Project ``audio`` (B, 10, Da), ``frames`` (B, 10*k, Df) and R(2+1)D ``motion`` (B, 10, 512).

        Returns audio and visual segments, (B, 10, d) each.
        """
        fused = torch.cat((self.frames(per_second(frames)), self.motion(motion)), dim=-1)
        return self.audio(audio), self.visual_fusion(fused)
