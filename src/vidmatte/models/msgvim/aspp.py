"""Atrous spatial pyramid pooling (DeepLabv3) on the deepest encoder feature."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidmatte.models.layers import conv_bn_relu


class ASPP(nn.Module):
    """Parallel branches at several dilations plus image pooling, fused by a 1x1 convolution.

    The first dilation gets a 1x1 convolution, the others 3x3 convolutions; the image-pooling branch
    averages the whole feature map, applies a 1x1 convolution and is broadcast back (nearest).

    Args:
        in_channels: channels of the input feature.
        mid_channels: channels of each branch.
        out_channels: channels of the output.
        dilations: one branch per dilation; MSG-VIM uses 1, 2, 4, 8.
    """

    def __init__(
        self,
        in_channels: int = 512,
        mid_channels: int = 256,
        out_channels: int = 512,
        dilations: tuple[int, ...] = (1, 2, 4, 8),
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            conv_bn_relu(in_channels, mid_channels, 1 if i == 0 else 3, d) for i, d in enumerate(dilations)
        )
        self.pooling = conv_bn_relu(in_channels, mid_channels, 1)
        self.fuse = conv_bn_relu(mid_channels * (len(dilations) + 1), out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_channels, h, w)`` -> ``(N, out_channels, h, w)``."""
        pooled = self.pooling(F.adaptive_avg_pool2d(x, 1)).expand(-1, -1, *x.shape[2:])
        return self.fuse(torch.cat([*(branch(x) for branch in self.branches), pooled], dim=1))
