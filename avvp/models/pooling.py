"""Attentive multimodal multiple-instance-learning (MMIL) pooling (Tian et al. 2020; eq. 3-5 of Pasi et al.)."""

from __future__ import annotations

import torch
from torch import nn

from avvp.models.output import ParserOutput


class AttentiveMMILPooling(nn.Module):
    """Segment classifier plus temporal and audio-visual attention that pool segments into video scores.

    One shared ``Linear(d_model, C)`` + sigmoid gives segment probabilities ``P``; ``Linear(d_model, C)``
    + softmax over time gives ``W_tp``; another + softmax over the two modalities gives ``W_av``. Then
    ``p_wsl = sum_t sum_m W_tp * W_av * P`` and ``p_a``/``p_v`` = ``sum_t W_tp * P`` of each modality.
    """

    def __init__(self, d_model: int, num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(d_model, num_classes)
        self.temporal_attention = nn.Linear(d_model, num_classes)
        self.modality_attention = nn.Linear(d_model, num_classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> ParserOutput:
        """Pool aggregated features ``audio``, ``visual`` (B, T, D) into a :class:`ParserOutput`."""
        stacked = torch.stack((audio, visual), dim=2)  # (B, T, 2, D)
        frame_logits = self.classifier(stacked)
        frame_prob = torch.sigmoid(frame_logits)
        temporal = torch.softmax(self.temporal_attention(stacked), dim=1)
        modality = torch.softmax(self.modality_attention(stacked), dim=2)
        temporal_prob = temporal * frame_prob
        return ParserOutput(
            global_prob=(temporal_prob * modality).sum(dim=(1, 2)),
            audio_prob=temporal_prob[:, :, 0].sum(dim=1),
            visual_prob=temporal_prob[:, :, 1].sum(dim=1),
            frame_prob=frame_prob,
            temporal_attention=temporal,
            modality_attention=modality,
            audio_embedding=audio,
            visual_embedding=visual,
            frame_logits=frame_logits,
        )
