"""Attention blocks, one module per kind, by name (``model.block`` in the config).

A block maps projected audio and visual segments (B, T, D) each to aggregated segments (B, T, D).
"""

from __future__ import annotations

from torch import nn

from avvp.models.blocks.base import BaseBlock
from avvp.models.blocks.han import HANBlock

BLOCKS: dict[str, type[nn.Module]] = {"han": HANBlock, "base": BaseBlock}
"""Block name -> module class (built from the parser config)."""
