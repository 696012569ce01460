"""Parsing models: one :class:`Parser` built from a validated :class:`ParserConfig` (``model:`` of a training
config). Every method (HAN and its variants, Base, GCAA, skip connections, the adversarial head) is a
configuration of named parts: the block (:mod:`avvp.models.blocks`), the attention
(:mod:`avvp.models.attention`), the heads (:mod:`avvp.models.heads`). Trainer, losses and predictor only see
:class:`~avvp.models.output.ParserOutput`.
"""

from __future__ import annotations

from avvp.models.config import ParserConfig
from avvp.models.output import ParserOutput
from avvp.models.parser import Parser

ModelConfig = ParserConfig
"""The config of every parsing model."""

__all__ = ["ModelConfig", "Parser", "ParserConfig", "ParserOutput", "build_model"]


def build_model(config: ParserConfig) -> Parser:
    """Instantiate the parser ``config`` describes."""
    return Parser(config)
