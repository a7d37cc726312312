"""Small layer stacks that more than one network builds from."""

from __future__ import annotations

from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> nn.Sequential:
    """``Conv2d (no bias, "same" padding for an odd kernel) -> BatchNorm2d -> ReLU``.

    Maps ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``; the weights are named ``0.weight``,
    ``1.weight``, ``1.bias``, ... as in the released checkpoints.

    >>> conv_bn_relu(3, 8, 3, dilation=2)[0].padding
    (2, 2)
    """
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )
