"""AdaM's Fg/Bg structuring network Ξ: a 3-layer post-LN transformer reading the memory.

Each layer attends from the current frame's tokens to the memory's keys and Fg/Bg embedded values
concatenated with the current frame's own keys and values (a decision: the frame can then also
attend to itself, which is what lets the network segment frame 0 without any memory). Following
Algorithm 1, the keys and values are the ones projected once per frame by Eq. 1 and stored in
memory; every layer has its own query and output projections and MLP. No positional encoding:
matching is by appearance, as in memory-based video segmentation (STM and its successors).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``(B, L, heads * d)`` -> ``(B, heads, L, d)``."""
    batch, length, dim = x.shape
    return x.view(batch, length, heads, dim // heads).transpose(1, 2)


class MemoryAttentionLayer(nn.Module):
    """``x <- LN(x + Attn(x W_q, K, V) W_o)``, then ``x <- LN(x + MLP(x))`` with a GeLU MLP."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.query = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm_attention = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))
        self.norm_mlp = nn.LayerNorm(dim)

    def forward(self, x: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        """One layer.

        Args:
            x: ``(B, L, dim)`` current-frame tokens.
            keys: ``(B, heads, S, dim / heads)`` keys, already split into heads.
            values: ``(B, heads, S, dim / heads)`` values, already split into heads.

        Returns:
            ``(B, L, dim)`` updated tokens.
        """
        attended = F.scaled_dot_product_attention(split_heads(self.query(x), self.heads), keys, values)
        x = self.norm_attention(x + self.out(attended.transpose(1, 2).flatten(2)))
        return self.norm_mlp(x + self.mlp(x))


class FgBgStructuringTransformer(nn.Module):
    """Stack of :class:`MemoryAttentionLayer` sharing one set of keys and values.

    Args:
        dim: token width (256 in the paper).
        heads: attention heads.
        mlp_dim: hidden width of each layer's MLP.
        layers: number of layers (3 in the paper).
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int, layers: int) -> None:
        super().__init__()
        self.heads = heads
        self.layers = nn.ModuleList(MemoryAttentionLayer(dim, heads, mlp_dim) for _ in range(layers))

    def forward(self, query: Tensor, keys: Tensor, values: Tensor) -> Tensor:
        """Propagate Fg/Bg information from memory to the current frame.

        Args:
            query: ``(B, L, dim)`` the current frame's queries ``Q``.
            keys: ``(B, S, dim)`` memory keys followed by the frame's own keys.
            values: ``(B, S, dim)`` memory values ``V_fb`` followed by the frame's own values ``V``.

        Returns:
            ``(B, L, dim)`` the propagated tokens ``Z'``.
        """
        keys, values = split_heads(keys, self.heads), split_heads(values, self.heads)
        x = query
        for layer in self.layers:
            x = layer(x, keys, values)
        return x
