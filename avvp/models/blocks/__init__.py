"""Blocks, one module per kind, by name (``model.block`` in the config).

A block maps projected audio and visual segments (B, T, D) each to aggregated segments (B, T, D):
``han`` and ``base`` are built of attention layers; ``ave`` (Tian et al. 2018) and ``avslowfast`` (Xiao et
al. 2020) are the two backbones of other audio-visual tasks that JoMoLD's supplementary material runs on LLP.
"""

from __future__ import annotations

from torch import nn

from avvp.models.blocks.ave import AVEBlock
from avvp.models.blocks.avslowfast import AVSlowFastBlock
from avvp.models.blocks.base import BaseBlock
from avvp.models.blocks.han import HANBlock

BLOCKS: dict[str, type[nn.Module]] = {
    "han": HANBlock,
    "base": BaseBlock,
    "ave": AVEBlock,
    "avslowfast": AVSlowFastBlock,
}
"""Block name -> module class (built from the parser config)."""
