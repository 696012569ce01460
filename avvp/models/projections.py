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


def feature_map_pooling(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """VALOR's resampling of a 64-step feature map to 10 segments as a matrix ``M`` (10, 64).

    The steps are laid out as 2 rows of 32 (row-major), each row is upsampled to 1024 columns by bicubic
    interpolation (``F.interpolate``, ``align_corners=False``), the rows are averaged, and
    ``adaptive_avg_pool1d`` averages the columns ``floor(1024 t / 10) .. ceil(1024 (t + 1) / 10) - 1`` into
    segment ``t``. All three steps are linear, so applying them to the 64 unit maps gives their matrix:
    ``segments = M @ steps``.
    """
    rows, columns = FEATURE_MAP_GRID
    unit_maps = torch.eye(rows * columns, dtype=dtype).reshape(1, rows * columns, rows, columns)
    upsampled = functional.interpolate(
        unit_maps, size=(rows, FEATURE_MAP_WIDTH), mode="bicubic", align_corners=False
    )
    return functional.adaptive_avg_pool1d(upsampled.mean(dim=2), NUM_SEGMENTS)[0].T


class FeatureMapProjection(nn.Linear):
    """VALOR's path from a CLAP HTS-AT feature map ``x`` (B, 64, C) to 10 segments (B, 10, d).

    VALOR reshapes the 64 steps to 2 rows of 32, upsamples them bicubically to 2 x 1024, applies its
    ``fc_a`` (``W``, ``b``) to every upsampled column, averages the 2 rows and pools the 1024 columns
    adaptively into 10 segments. With ``M`` (10, 64) the matrix of the resampling
    (:func:`feature_map_pooling`)::

        a_t = W (sum_s M[t, s] x_s) + b          t = 0 .. 9

    which is VALOR's result: the resampling is linear and each row of ``M`` sums to 1 (the bicubic
    weights of an output column sum to 1, some are negative; ``interpolate`` clamps indices at the borders;
    the row mean and the pooling are averages), so it commutes with the affine map. It costs a (10, 64)
    product instead of ``fc_a`` on 2048 columns and the upsampling itself. A subclass of
    :class:`~torch.nn.Linear`, so its weights keep the keys of ``fc_a``.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.register_buffer("pooling", feature_map_pooling().float(), persistent=False)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Project ``feature_map`` (B, 64, C) to segments (B, 10, d)."""
        return super().forward(self.pooling.to(feature_map.dtype) @ feature_map)


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
