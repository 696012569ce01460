"""The parser every method is a configuration of: [input encoder ->] projections -> attention block -> MMIL
pooling -> heads."""

from __future__ import annotations

import torch
from torch import nn

from avvp.data.labels import NUM_CLASSES
from avvp.models.avg_encoder import AVGEncoder
from avvp.models.blocks import BLOCKS
from avvp.models.config import ParserConfig
from avvp.models.heads import build_heads
from avvp.models.output import ParserOutput
from avvp.models.pooling import AttentiveMMILPooling
from avvp.models.projections import InputProjections


class Parser(nn.Module):
    """An audio-visual video parser built from the named parts of its :class:`ParserConfig`.

    Inputs (a dict of float tensors), by the kinds of ``config.inputs`` (:attr:`feature_kinds`): audio
    ``vggish`` (B, 10, 128) or ``clap`` feature maps (B, 64, 768); visual ``resnet152`` (B, 10*k, 2048) with
    k frames per second (8 in LLP; k = 1 when the caller already averaged per second) or ``clip``
    (B, 10, 768); motion ``r2plus1d`` (B, 10, 512).
    Returns a :class:`ParserOutput` whose ``heads`` holds each configured head's output. With an input
    encoder, its audio and visual snippet embeddings replace the VGGish and ResNet152 inputs of the
    projections; a frozen encoder (``trainable: false``) has no gradients and always runs in eval mode.
    """

    def __init__(self, config: ParserConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_kinds: tuple[str, ...] = config.inputs.kinds()
        """The feature kinds the parser reads: audio, visual, motion."""
        encoder = config.input_encoder
        self.input_encoder = AVGEncoder(encoder) if encoder is not None else None
        encoder_width = encoder.d_model if encoder is not None else None
        self.projections = InputProjections(config.d_model, config.inputs, encoder_width)
        if encoder is not None:
            self.input_encoder.requires_grad_(encoder.trainable)
        self.block = BLOCKS[config.block](config)
        self.audio_dropout = nn.Dropout(config.segment_dropout.audio)
        self.visual_dropout = nn.Dropout(config.segment_dropout.visual)
        self.pooling = AttentiveMMILPooling(config.d_model, NUM_CLASSES)
        self.heads = build_heads(config.heads, config.d_model)

    def forward(self, features: dict[str, torch.Tensor], cross_modal: bool = True) -> ParserOutput:
        """Parse a batch: ``features`` as in the class docstring; returns a :class:`ParserOutput`.

        ``cross_modal=False`` runs the block without its cross-modal attention (JoMoLD's noise estimation
        and its denoising losses). The aggregated segments feed the heads and the output's embeddings as
        they are; the MMIL pooling sees them after the configured per-modality dropout. Each head reads
        the segments it names: ``projected`` (before the block) or ``aggregated`` (after it).
        """
        audio_kind, visual_kind, motion_kind = self.feature_kinds
        if self.input_encoder is None:
            audio, frames = features[audio_kind], features[visual_kind]
        else:
            audio, frames = self.input_encoder(features)
        projected = self.projections(audio, frames, features[motion_kind])
        aggregated = self.block(*projected, cross_modal=cross_modal)
        audio, visual = aggregated
        output = self.pooling(self.audio_dropout(audio), self.visual_dropout(visual))
        output.audio_embedding, output.visual_embedding = audio, visual
        output.projected_audio, output.projected_visual = projected
        segments = {"projected": projected, "aggregated": aggregated}
        output.heads = {name: head(*segments[head.reads]) for name, head in self.heads.items()}
        return output

    def modality_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The parameters that process one modality only, by modality (``audio``, ``visual``).

        They are the modality-specific submodules (``modality_modules``) of the input encoder, the
        projections and the block: audio the VGGish projection (and the encoder's audio embedding, Base's
        audio self-attention layer), visual the ResNet152 and R(2+1)D projections and their fusion (and the
        encoder's visual embedding, Base's visual self-attention layer). Shared layers, the MMIL pooling
        and the heads belong to neither. Gradient modulation scales exactly these.
        """
        parts = [part for part in (self.input_encoder, self.projections, self.block) if part is not None]
        return {
            modality: [
                parameter
                for part in parts
                for name in part.modality_modules.get(modality, ())
                for parameter in getattr(part, name).parameters()
            ]
            for modality in ("audio", "visual")
        }

    def train(self, mode: bool = True) -> Parser:
        """Set training mode, keeping a frozen input encoder in eval mode (no dropout in fixed features)."""
        super().train(mode)
        if self.input_encoder is not None and not self.config.input_encoder.trainable:
            self.input_encoder.eval()
        return self
