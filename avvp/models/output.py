"""The structured output every parsing model returns, so losses and diagnostics never depend on a model."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ParserOutput:
    """What a parsing model predicts for a batch of ``B`` clips (``T`` = 10 segments, ``C`` = 25 classes).

    - ``global_prob`` (B, C): fused video-level probability (``p_wsl``, eq. 3 of the modality-bias paper).
    - ``audio_prob`` / ``visual_prob`` (B, C): modality video-level probabilities (eq. 4, 5).
    - ``frame_prob`` (B, T, 2, C): segment probabilities, modality axis ordered (audio, visual).
    - ``frame_logits`` (B, T, 2, C): their logits (``frame_prob = sigmoid(frame_logits)``), for losses on
      segment-level targets (None when the model producing the output has none).
    - ``temporal_attention`` (B, T, 2, C): ``W_tp``, sums to 1 over T.
    - ``modality_attention`` (B, T, 2, C): ``W_av``, sums to 1 over the modality axis.
    - ``audio_embedding`` / ``visual_embedding`` (B, T, D): aggregated segment features that fed the
      classifier, for losses and components that work on representations.
    - ``heads``: the output of each configured head by name, e.g. ``modality_discriminator`` logits
      (B, T, 2).
    - ``projected_audio`` / ``projected_visual`` (B, T, D): the input projections' segments, before the
      block (None when the model producing the output has none), for losses that compare the two levels.
    """

    global_prob: torch.Tensor
    audio_prob: torch.Tensor
    visual_prob: torch.Tensor
    frame_prob: torch.Tensor
    temporal_attention: torch.Tensor
    modality_attention: torch.Tensor
    audio_embedding: torch.Tensor
    visual_embedding: torch.Tensor
    heads: dict[str, torch.Tensor] = field(default_factory=dict)
    projected_audio: torch.Tensor | None = None
    projected_visual: torch.Tensor | None = None
    frame_logits: torch.Tensor | None = None
