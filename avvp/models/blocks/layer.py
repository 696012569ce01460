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

    leaving out a term the layer does not own, or the cross term when no ``other`` is given. With
    ``norm: pre`` (VALOR's ``pre_norm``) the norms move in front of the sublayers, and the cross term's
    keys and values are the other modality as given (not normalised)::

        q = LayerNorm(x)
        h = x + Dropout(Att_self(q, q)) + Dropout(Att_cross(q, y))
        out = h + Dropout(W_2 Dropout(ReLU(W_1 LayerNorm(h))))
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
        self.pre_norm = config.norm == "pre"

    def forward(self, query: torch.Tensor, other: torch.Tensor | None = None) -> torch.Tensor:
        """Update ``query`` (B, T, D), attending over ``other`` (B, T, D) too when given; returns (B, T, D)."""
        if self.pre_norm:
            hidden = query + self._attention_update(self.attention_norm(query), other)
            return hidden + self._feedforward(self.feedforward_norm(hidden))
        hidden = self.attention_norm(query + self._attention_update(query, other))
        return self.feedforward_norm(hidden + self._feedforward(hidden))

    def _attention_update(self, query: torch.Tensor, other: torch.Tensor | None) -> torch.Tensor:
        """The sum of the attention terms (B, T, D) the layer owns, after dropout."""
        if self.self_attention is None:
            return self.dropout(self.cross_attention(query, other))
        update = self.dropout(self.self_attention(query, query))
        if other is not None:
            update = update + self.dropout(self.cross_attention(query, other))
        return update

    def _feedforward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``Dropout(W_2 Dropout(ReLU(W_1 hidden)))`` (B, T, D)."""
        return self.dropout(self.feedforward_out(self.dropout(functional.relu(self.feedforward_in(hidden)))))
