"""Attention modules a block can be built with, by name (``model.attention`` in the config).

Both take a query sequence (B, Tq, D) and a source sequence (B, Tk, D) and return (B, Tq, D); self-attention
passes the same tensor twice. ``dot`` is the multi-head scaled dot-product attention of HAN; ``gcaa`` is the
global context-aware attention of Lamba et al. (Interspeech 2022, section 3.1), as docs/models.md derives it.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

AttentionKind = Literal["dot", "gcaa"]


class DotProductAttention(nn.MultiheadAttention):
    """``softmax(Q K^T / sqrt(d_h)) V`` over heads: :class:`torch.nn.MultiheadAttention` (batch first).

    A subclass rather than a wrapper, so its weights keep the state-dict keys of the original HAN.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__(d_model, num_heads, dropout=dropout, batch_first=True)

    def forward(self, query: torch.Tensor, source: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Attend from ``query`` (B, Tq, D) over ``source`` (B, Tk, D); returns (B, Tq, D)."""
        return super().forward(query, source, source, need_weights=False)[0]


class GlobalContextAttention(nn.Module):
    """Global context-aware attention (GCAA): queries and keys mixed with their sequence's mean by a gate.

    With ``Q = x W_Q``, ``K = s W_K``, ``V = s W_V`` and the global contexts ``c_x = mean_t x_t``,
    ``c_s = mean_t s_t`` (means over the segments of the query and of the source sequence)::

        lambda_Q = sigmoid(Q v_Q + (c_x U_Q) g_Q + b_Q)  Q^ = (1 - lambda_Q) Q + lambda_Q (c_x U_Q)
        lambda_K = sigmoid(K v_K + (c_s U_K) g_K + b_K)  K^ = (1 - lambda_K) K + lambda_K (c_s U_K)
        out = W_O softmax(Q^ K^T / sqrt(d_h)) V        (per head, heads concatenated)

    ``lambda`` is one gate per segment (shared by the heads). Dropout acts on the attention weights.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.query_context = nn.Linear(d_model, d_model, bias=False)
        self.key_context = nn.Linear(d_model, d_model, bias=False)
        self.query_gate = nn.Linear(2 * d_model, 1)
        self.key_gate = nn.Linear(2 * d_model, 1)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    @staticmethod
    def _contextualise(
        projected: torch.Tensor, sequence: torch.Tensor, context: nn.Linear, gate: nn.Linear
    ) -> torch.Tensor:
        """Mix ``projected`` (B, T, D) with the projected mean of ``sequence`` (B, T, D) by a per-segment gate."""
        global_context = context(sequence.mean(dim=1, keepdim=True)).expand_as(projected)
        weight = torch.sigmoid(gate(torch.cat((projected, global_context), dim=-1)))
        return (1.0 - weight) * projected + weight * global_context

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.reshape(b, t, self.num_heads, d // self.num_heads).transpose(1, 2)

    def weights(self, query: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Attention weights (B, H, Tq, Tk) of ``query`` (B, Tq, D) over ``source`` (B, Tk, D); rows sum to 1."""
        q = self._contextualise(self.query(query), query, self.query_context, self.query_gate)
        k = self._contextualise(self.key(source), source, self.key_context, self.key_gate)
        q, k = self._heads(q), self._heads(k)
        return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)

    def forward(self, query: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """Attend from ``query`` (B, Tq, D) over ``source`` (B, Tk, D); returns (B, Tq, D)."""
        attended = self.dropout(self.weights(query, source)) @ self._heads(self.value(source))
        b, _, t, _ = attended.shape
        return self.out(attended.transpose(1, 2).reshape(b, t, -1))


def make_attention(kind: AttentionKind, d_model: int, num_heads: int, dropout: float) -> nn.Module:
    """The attention module named ``kind`` (``dot`` or ``gcaa``)."""
    classes = {"dot": DotProductAttention, "gcaa": GlobalContextAttention}
    return classes[kind](d_model, num_heads, dropout)
