"""The AVSlowFast block: Xiao et al.'s Audiovisual SlowFast network (2020) on per-second features.

Three pathways over time, each a stack of residual temporal-convolution stages, with lateral connections
after every stage, in SlowFast's directions only (Fast -> Slow, and AVSlowFast's Audio -> Slow and Fast):

- **Slow**: the visual segments sampled every ``alpha`` seconds (SlowFast's low frame rate), width d; its
  first stage has temporal kernel 1, later stages kernel 3 (SlowFast's Slow pathway);
- **Fast**: every visual segment, width ``beta * d`` (SlowFast's thin, high-rate pathway), kernel 3;
- **Audio**: every audio segment, width d, kernel 3.

A lateral connection is a time-strided convolution (kernel 5, stride the ratio of the two rates) whose output
is added to the receiving pathway. DropPathway (AVSlowFast): during training, each step leaves out the
Audio -> visual connections with probability ``drop_pathway`` (the audio pathway still runs: it gives the
audio stream). Outputs: the audio stream is the Audio pathway; the visual stream is
``Linear([upsampled Slow ; Fast])``, the Slow steps repeated ``alpha`` times. With
``visual_aggregation: self`` or without cross-modal attention (``cross_modal=False``) no audio reaches the
visual pathways; the audio pathway never receives visual features.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional

from avvp.models.config import AVSlowFastConfig, ParserConfig

LATERAL_KERNEL = 5
"""Temporal kernel of the lateral connections (SlowFast's time-strided convolution, 5x1x1)."""


class TemporalStage(nn.Module):
    """A residual stage over time: ``ReLU(x + LN(Conv(ReLU(LN(Conv(x))))))`` on (B, T, W)."""

    def __init__(self, width: int, kernel: int) -> None:
        super().__init__()
        self.first = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.second = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.first_norm = nn.LayerNorm(width)
        self.second_norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, W) -> (B, T, W)."""
        hidden = functional.relu(self.first_norm(self.first(x.transpose(1, 2)).transpose(1, 2)))
        return functional.relu(x + self.second_norm(self.second(hidden.transpose(1, 2)).transpose(1, 2)))


class Lateral(nn.Module):
    """A lateral connection: a time-strided convolution from one pathway's width and rate to another's."""

    def __init__(self, source: int, target: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(source, target, LATERAL_KERNEL, stride=stride, padding=LATERAL_KERNEL // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, source) -> (B, T / stride, target)."""
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


class AVSlowFastBlock(nn.Module):
    """Audio, Slow and Fast pathways with Fast -> Slow and Audio -> Slow/Fast lateral connections."""

    modality_modules: ClassVar[dict[str, tuple[str, ...]]] = {
        "audio": ("audio_pathway",),
        "visual": ("slow_pathway", "fast_stem", "fast_pathway", "fast_to_slow", "visual_fusion"),
    }
    """Submodules that process one modality only; the Audio -> visual connections carry audio into the
    visual pathways and belong to neither."""

    def __init__(self, config: ParserConfig) -> None:
        super().__init__()
        settings = config.avslowfast or AVSlowFastConfig()
        d, alpha = config.d_model, settings.alpha
        fast = max(1, round(settings.beta * d))
        self.alpha = alpha
        self.drop_pathway = settings.drop_pathway
        self.visual_cross = config.visual_aggregation == "cross"
        stages = range(settings.stages)
        self.slow_pathway = nn.ModuleList(TemporalStage(d, 1 if i == 0 else 3) for i in stages)
        self.fast_stem = nn.Linear(d, fast)
        self.fast_pathway = nn.ModuleList(TemporalStage(fast, 3) for _ in stages)
        self.audio_pathway = nn.ModuleList(TemporalStage(d, 3) for _ in stages)
        self.fast_to_slow = nn.ModuleList(Lateral(fast, d, alpha) for _ in stages)
        self.audio_to_slow = nn.ModuleList(Lateral(d, d, alpha) for _ in stages)
        self.audio_to_fast = nn.ModuleList(Lateral(d, fast, 1) for _ in stages)
        self.visual_fusion = nn.Linear(d + fast, d)

    def _audio_reaches_visual(self, cross_modal: bool) -> bool:
        """Whether this forward pass connects audio to the visual pathways (DropPathway draws in training)."""
        if not (self.visual_cross and cross_modal):
            return False
        return not (self.training and float(torch.rand(())) < self.drop_pathway)

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, cross_modal: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregate projected ``audio``, ``visual`` (B, T, D); returns both streams (B, T, D)."""
        with_audio = self._audio_reaches_visual(cross_modal)
        slow, fast = visual[:, :: self.alpha], self.fast_stem(visual)
        for i, (slow_stage, fast_stage, audio_stage) in enumerate(
            zip(self.slow_pathway, self.fast_pathway, self.audio_pathway, strict=True)
        ):
            slow, fast, audio = slow_stage(slow), fast_stage(fast), audio_stage(audio)
            slow = slow + self.fast_to_slow[i](fast)
            if with_audio:
                slow = slow + self.audio_to_slow[i](audio)
                fast = fast + self.audio_to_fast[i](audio)
        upsampled = slow.repeat_interleave(self.alpha, dim=1)
        return audio, self.visual_fusion(torch.cat((upsampled, fast), dim=-1))
