"""The HAN block (Tian et al. 2020) with the aggregation variants of Pasi et al. (Interspeech 2022), stacked
and ordered as VALOR's encoder (Lai et al. 2023) when configured so.

One :class:`~avvp.models.blocks.layer.AttentionLayer` is shared by the audio and the visual stream. For the
stream being updated it adds self-attention over its own segments and, when that stream aggregates
``cross``, cross-modal attention over the other stream (eq. 1, 2 of Pasi et al.); with ``self`` the cross
term is left out (eq. 7, 8). With ``num_layers`` N > 1 the block stacks N such layers, each with its own
weights, layer ``l`` reading the streams layer ``l - 1`` returned::

    parallel (HAN):     a_l = L_l(a_{l-1}, v_{l-1})    v_l = L_l(v_{l-1}, a_{l-1})
    sequential (VALOR): a_l = L_l(a_{l-1}, v_{l-1})    v_l = L_l(v_{l-1}, a_l)

With ``norm: pre`` the layers normalise before their sublayers and the block ends with a LayerNorm per
stream, ``a' = LN_a(a_N)``, ``v' = LN_v(v_N)`` (VALOR's ``final_norm_a``, ``final_norm_v``).
"""

from __future__ import annotations

import torch
from torch import nn

from avvp.models.blocks.layer import AttentionLayer
from avvp.models.config import ParserConfig


class HANBlock(nn.Module):
    """``a' = Layer(a, v)``, ``v' = Layer(v, a)`` with one shared layer per depth (cross terms as configured).

    One layer keeps HAN's state-dict name ``layer``; a stack of N is ``layers.0`` ... ``layers.N-1``
    (:meth:`layer_name`). Pre-norm blocks own ``audio_norm`` and ``visual_norm``.
    """

    def __init__(self, config: ParserConfig) -> None:
        super().__init__()
        layers = [AttentionLayer(config, ("self", "cross")) for _ in range(config.num_layers)]
        if len(layers) == 1:
            self.layer = layers[0]
        else:
            self.layers = nn.ModuleList(layers)
        self.sequential = config.stream_order == "sequential"
        self.final_norms = config.norm == "pre"
        if self.final_norms:
            self.audio_norm = nn.LayerNorm(config.d_model)
            self.visual_norm = nn.LayerNorm(config.d_model)
        self.audio_cross = config.audio_aggregation == "cross"
        self.visual_cross = config.visual_aggregation == "cross"

    @staticmethod
    def layer_name(config: ParserConfig, index: int) -> str:
        """The state-dict prefix of layer ``index`` (from 0) in the block ``config`` describes."""
        return "layer" if config.num_layers == 1 else f"layers.{index}"

    @property
    def stack(self) -> list[AttentionLayer]:
        """The layers, first to last."""
        return [self.layer] if hasattr(self, "layer") else list(self.layers)

    @property
    def modality_modules(self) -> dict[str, tuple[str, ...]]:
        """Submodules that process one modality only: the final norms of a pre-norm block (the layers serve
        both modalities)."""
        return {"audio": ("audio_norm",), "visual": ("visual_norm",)} if self.final_norms else {}

    def forward(
        self, audio: torch.Tensor, visual: torch.Tensor, cross_modal: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregate projected ``audio``, ``visual`` (B, T, D); returns both streams (B, T, D).

        ``cross_modal=False`` leaves out every cross-modal term (self-attention only, as with ``self``
        aggregation for both modalities).
        """
        audio_cross, visual_cross = self.audio_cross and cross_modal, self.visual_cross and cross_modal
        for layer in self.stack:
            updated_audio = layer(audio, visual if audio_cross else None)
            source = updated_audio if self.sequential else audio
            visual = layer(visual, source if visual_cross else None)
            audio = updated_audio
        if self.final_norms:
            return self.audio_norm(audio), self.visual_norm(visual)
        return audio, visual
