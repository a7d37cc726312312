"""Eq. 1 of AdaM: query, key and value of a frame's 1/16 tokens, as three linear projections."""

from __future__ import annotations

from torch import Tensor, nn


class QKVProjection(nn.Module):
    """``Q = Z W_q``, ``K = Z W_k``, ``V = Z W_v`` (with biases) over the tokens of ``Z``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(B, L, dim)`` tokens -> ``(Q, K, V)``, each ``(B, L, dim)``."""
        return self.query(tokens), self.key(tokens), self.value(tokens)
