"""The parser every method is a configuration of: projections -> attention block -> MMIL pooling -> heads."""

from __future__ import annotations

import torch
from torch import nn

from avvp.data.labels import NUM_CLASSES
from avvp.models.blocks import BLOCKS
from avvp.models.config import ParserConfig
from avvp.models.heads import build_heads
from avvp.models.output import ParserOutput
from avvp.models.pooling import AttentiveMMILPooling
from avvp.models.projections import InputProjections


class Parser(nn.Module):
    """An audio-visual video parser built from the named parts of its :class:`ParserConfig`.

    Inputs (a dict of float tensors): ``vggish`` (B, 10, 128), ``resnet152`` (B, 10*k, 2048) with k frames
    per second (8 in LLP; k = 1 when the caller already averaged per second), ``r2plus1d`` (B, 10, 512).
    Returns a :class:`ParserOutput` whose ``heads`` holds each configured head's output.
    """

    feature_kinds: tuple[str, ...] = ("vggish", "resnet152", "r2plus1d")

    def __init__(self, config: ParserConfig) -> None:
        super().__init__()
        self.config = config
        self.projections = InputProjections(config.d_model)
        self.block = BLOCKS[config.block](config)
        self.pooling = AttentiveMMILPooling(config.d_model, NUM_CLASSES)
        self.heads = build_heads(config.heads, config.d_model)

    def forward(self, features: dict[str, torch.Tensor]) -> ParserOutput:
        """Parse a batch: ``features`` as in the class docstring; returns a :class:`ParserOutput`."""
        audio, visual = self.block(*self.projections(features))
        output = self.pooling(audio, visual)
        output.heads = {name: head(audio, visual) for name, head in self.heads.items()}
        return output
