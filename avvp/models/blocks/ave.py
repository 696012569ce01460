"""The AVE block: Tian et al.'s audio-visual event localisation network (ECCV 2018) adapted to LLP's features.

AVE's network has three parts, kept here in its order: audio-guided visual attention, one bidirectional LSTM
per modality, and audio-visual fusion. On LLP each second has one pooled feature vector per modality (no
spatial map), so the regions the audio attends over are the clip's visual segments; and a parser needs an
audio and a visual stream, so the fusion is AVE's dual multimodal residual network (DMRN), which updates
both streams, without its final average::

    alpha_t = softmax_u( w^T tanh( W_v ReLU(U_v v_u) + W_g ReLU(U_a a_t) ) )     (audio-guided attention)
    c_t     = sum_u alpha_t[u] v_u
    h^a = BiLSTM_a(a),   h^v = BiLSTM_v(c)                                       (d/2 per direction)
    m   = (MLP_a(h^a) + MLP_v(h^v)) / 2,   a' = tanh(h^a + m),   v' = tanh(h^v + m)   (DMRN, one block)

``visual_aggregation: self`` leaves out the attention (``c = v``) and the fusion of the visual stream
(``v' = h^v``); ``audio_aggregation: self`` the fusion of the audio stream (``a' = h^a``). Without
cross-modal attention (``cross_modal=False``) both are left out: each stream sees its own modality only.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from avvp.models.config import ParserConfig

ATTENTION_WIDTH = 49
"""Width of the additive attention's scores (AVE's ``affine_v``/``affine_g``: its 7x7 = 49 regions)."""


def _two_layer(d_model: int, width: int) -> nn.Sequential:
    """``W ReLU(U x)``: AVE's ``affine_video``/``affine_audio`` (d -> d) then ``affine_v``/``affine_g``."""
    return nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, width, bias=False))


class AudioGuidedAttention(nn.Module):
    """AVE's audio-guided visual attention over the segments of the clip; returns attended visual features."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.visual = _two_layer(d_model, ATTENTION_WIDTH)
        self.audio = _two_layer(d_model, ATTENTION_WIDTH)
        self.score = nn.Linear(ATTENTION_WIDTH, 1, bias=False)
        for layer in (self.visual[0], self.visual[2], self.audio[0], self.audio[2], self.score):
            nn.init.xavier_uniform_(layer.weight)  # as AVE's init_weights

    def weights(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Attention (B, T_audio, T_visual) of each audio segment over the visual segments; rows sum to 1."""
        content = torch.tanh(self.visual(visual).unsqueeze(1) + self.audio(audio).unsqueeze(2))
        return torch.softmax(self.score(content).squeeze(-1), dim=-1)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Audio-guided visual features (B, T, D) of ``audio``, ``visual`` (B, T, D)."""
        return self.weights(audio, visual) @ visual


class ResidualFusion(nn.Module):
    """AVE's dual multimodal residual network, one block: ``m = (MLP_a(a) + MLP_v(v)) / 2``; each stream
    that fuses becomes ``tanh(x + m)``."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.audio = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, d_model))
        self.visual = nn.Sequential(nn.Linear(d_model, d_model), nn.Tanh(), nn.Linear(d_model, d_model))

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """The merged features ``m`` (B, T, D)."""
        return 0.5 * (self.audio(audio) + self.visual(visual))


class AVEBlock(nn.Module):
    """Audio-guided visual attention -> a BiLSTM per modality -> residual audio-visual fusion."""

    modality_modules: ClassVar[dict[str, tuple[str, ...]]] = {
        "audio": ("audio_lstm",),
        "visual": ("visual_lstm",),
    }
    """Submodules that process one modality only; the attention and the fusion mix both."""

    def __init__(self, config: ParserConfig) -> None:
        super().__init__()
        d = config.d_model
        self.guided_attention = AudioGuidedAttention(d)
        self.audio_lstm = nn.LSTM(d, d // 2, batch_first=True, bidirectional=True)
        self.visual_lstm = nn.LSTM(d, d // 2, batch_first=True, bidirectional=True)
        self.fusion = ResidualFusion(d)
        self.audio_cross = config.audio_aggregation == "cross"
        self.visual_cross = config.visual_aggregation == "cross"

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, cross_modal: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregate projected ``audio``, ``visual`` (B, T, D); returns both streams (B, T, D)."""
        visual_cross = self.visual_cross and cross_modal
        audio_cross = self.audio_cross and cross_modal
        attended = self.guided_attention(audio, visual) if visual_cross else visual
        audio_states = self.audio_lstm(audio)[0]
        visual_states = self.visual_lstm(attended)[0]
        if not (audio_cross or visual_cross):
            return audio_states, visual_states
        merged = self.fusion(audio_states, visual_states)
        return (
            torch.tanh(audio_states + merged) if audio_cross else audio_states,
            torch.tanh(visual_states + merged) if visual_cross else visual_states,
        )
