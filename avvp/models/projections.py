"""Input projections: audio (VGGish or CLAP feature maps), frame (ResNet152 or CLIP) and R(2+1)D features to
the parser's width ``d`` (Tian et al. 2020; VALOR++'s inputs, Lai et al. 2023)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn
from torch.nn import functional

from avvp.data.features import FEATURE_SHAPES
from avvp.data.labels import NUM_SEGMENTS

if TYPE_CHECKING:
    from avvp.models.config import InputsConfig

FEATURE_MAP_GRID = (2, 32)
"""How VALOR lays out CLAP's 64 feature-map steps: 2 rows of 32 (row-major)."""
FEATURE_MAP_WIDTH = 1024
"""The width VALOR upsamples each row of the feature map to (bicubic)."""


def per_second(frames: torch.Tensor) -> torch.Tensor:
    """Mean of each second's frames: (B, 10*k, D) -> (B, 10, D) (unchanged when k = 1)."""
    b, n, dim = frames.shape
    return frames.reshape(b, NUM_SEGMENTS, n // NUM_SEGMENTS, dim).mean(dim=2)


class FeatureMapProjection(nn.Linear):
    """VALOR's path from a CLAP HTS-AT feature map ``x`` (B, 64, C) to 10 segments (B, 10, d).

    With ``X[c, r, j] = x[32 r + j, c]`` (the 64 steps as 2 rows of 32), ``U = Bicubic(X)`` upsampled to
    2 x 1024 (``F.interpolate``, ``align_corners=False``: the rows are kept, each row is resampled to 1024
    columns) and ``bin_t`` the columns ``floor(1024 t / 10) .. ceil(1024 (t + 1) / 10) - 1`` of
    ``adaptive_avg_pool1d``::

        a_t = W mean_{j in bin_t} (1/2) sum_r U[:, r, j] + b          t = 0 .. 9

    VALOR applies ``W, b`` to every upsampled column before averaging the rows and pooling; bicubic
    interpolation, the row mean and the pooling are weighted averages whose weights sum to 1 (borders
    included, as ``interpolate`` clamps the indices), so they commute with the affine map and projecting
    last gives the same values at 1/200 of the cost. A subclass of :class:`~torch.nn.Linear`, so its
    weights keep the keys of VALOR's ``fc_a``.
    """

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Project ``feature_map`` (B, 64, C) to segments (B, 10, d)."""
        batch, _, channels = feature_map.shape
        grid = feature_map.transpose(1, 2).reshape(batch, channels, *FEATURE_MAP_GRID)
        upsampled = functional.interpolate(
            grid, size=(FEATURE_MAP_GRID[0], FEATURE_MAP_WIDTH), mode="bicubic", align_corners=False
        )
        pooled = functional.adaptive_avg_pool1d(upsampled.mean(dim=2), NUM_SEGMENTS)  # (B, C, 10)
        return super().forward(pooled.transpose(1, 2))


def audio_projection(kind: str, width: int, d_model: int) -> nn.Linear:
    """The projection of audio features of ``kind`` and ``width`` to ``d_model``: VALOR's feature-map path
    for ``clap`` (:class:`FeatureMapProjection`), a linear map of each segment otherwise."""
    return FeatureMapProjection(width, d_model) if kind == "clap" else nn.Linear(width, d_model)


class InputProjections(nn.Module):
    """``a = W_a x_audio``; ``v = W_f [W_r mean_k(x_frames) ; W_m x_motion]`` (B, T, d) each.

    The audio and frame inputs are the kinds of ``inputs``: VGGish (10 x 128) or CLAP feature maps
    (64 x 768, through :class:`FeatureMapProjection`) and ResNet152 (10k x 2048) or CLIP (10 x 768) features
    (widths from :data:`~avvp.data.features.FEATURE_SHAPES`); or an input encoder's snippet embeddings of
    width ``encoder_width``. Frames are averaged per second before their projection, which equals the
    published project-then-average because the projection is linear.
    """

    modality_modules: ClassVar[dict[str, tuple[str, ...]]] = {
        "audio": ("audio",),
        "visual": ("frames", "motion", "visual_fusion"),
    }
    """Submodules that process one modality only (see :meth:`Parser.modality_parameters`)."""

    def __init__(self, d_model: int, inputs: InputsConfig, encoder_width: int | None = None) -> None:
        super().__init__()
        audio_width = encoder_width or FEATURE_SHAPES[inputs.audio][1]
        frames_width = encoder_width or FEATURE_SHAPES[inputs.visual][1]
        self.audio = audio_projection(inputs.audio, audio_width, d_model)
        self.frames = nn.Linear(frames_width, d_model)
        self.motion = nn.Linear(FEATURE_SHAPES[inputs.motion][1], d_model)
        self.visual_fusion = nn.Linear(2 * d_model, d_model)

    def forward(
        self, audio: torch.Tensor, frames: torch.Tensor, motion: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Project ``audio`` (B, 10, Da; CLAP maps (B, 64, 768)), ``frames`` (B, 10*k, Df) and R(2+1)D
        ``motion`` (B, 10, 512).

        Returns audio and visual segments, (B, 10, d) each.
        """
        fused = torch.cat((self.frames(per_second(frames)), self.motion(motion)), dim=-1)
        return self.audio(audio), self.visual_fusion(fused)
