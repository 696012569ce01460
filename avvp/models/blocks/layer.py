"""The attention layer blocks are made of: attention update(s), add & norm, feed-forward, add & norm."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import torch
from torch import nn
from torch.nn import functional

from avvp.models.attention import make_attention
from avvp.models.config import ParserConfig


class AttentionLayer(nn.Module):
    """A transformer layer whose attention update is the sum of self- and/or cross-modal attention.

    ``attends`` says which attention modules the layer owns: ``"self"`` (the query over itself) and
    ``"cross"`` (the query over the other modality). For a query ``x`` and the other modality ``y``::

        h = LayerNorm(x + Dropout(Att_self(x, x)) + Dropout(Att_cross(x, y)))
        out = LayerNorm(h + Dropout(W_2 Dropout(ReLU(W_1 h))))

    leaving out a term the layer does not own, or the cross term when no ``other`` is given.
    """

    def __init__(self, config: ParserConfig, attends: Collection[Literal["self", "cross"]]) -> None:
        super().__init__()
        d = config.d_model

        def attention(kind: str) -> nn.Module | None:
            return (
                make_attention(config.attention, d, config.num_heads, config.dropout)
                if kind in attends
                else None
            )

        self.self_attention = attention("self")
        self.cross_attention = attention("cross")
        self.feedforward_in = nn.Linear(d, config.feedforward)
        self.feedforward_out = nn.Linear(config.feedforward, d)
        self.attention_norm = nn.LayerNorm(d)
        self.feedforward_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, query: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        """Update ``query`` (B, T, D), attending over ``other`` (B, T, D) too when given; returns (B, T, D)."""
        if self.self_attention is not None:
            update = self.dropout(self.self_attention(query, query))
            if other is not None:
                update = update + self.dropout(self.cross_attention(query, other))
        else:
            update = self.dropout(self.cross_attention(query, other))
        hidden = self.attention_norm(query + update)
        expanded = self.dropout(functional.relu(self.feedforward_in(hidden)))
        return self.feedforward_norm(hidden + self.dropout(self.feedforward_out(expanded)))
