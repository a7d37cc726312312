"""Robust Video Matting's network (Lin et al., WACV 2022), written from the paper, for timing only.

RVM is what a user picks instead of AdaM, so the speed benchmarks time AdaM beside it in the same run.
This is its published inference network with random weights, never trained and never shipped; it is
written from the paper's description and the MobileNetV3 paper's layer table (no code of RVM, which
is GPL-3.0, was read). Parts, as the paper describes them:

- Encoder: MobileNetV3-Large (Howard et al., 2019) whose last stage runs with dilation 2 instead of
  stride 2, features at 1/2 (16 channels), 1/4 (24), 1/8 (40) and 1/16 (960), then LR-ASPP to 128.
- Recurrent decoder: a bottleneck block at 1/16 (ConvGRU on half of its 128 channels), upsampling
  blocks at 1/8, 1/4 and 1/2 (80, 40, 32 channels): bilinear 2x upsampling, concatenation with the
  encoder feature and the input image average-pooled to that scale, 3x3 conv + BN + ReLU, ConvGRU on
  half of the channels; an output block at full resolution (image concatenated, two 3x3 conv + BN +
  ReLU to 16 channels) and a 1x1 projection to alpha and a foreground residual.
- Deep guided filter for high resolution: the network runs on the frame downsampled by
  ``downsample_ratio`` and the filter (the same structure as AdaM's, 16-wide) restores full size.

At 512x288 the network has 3.75 M parameters and costs about 4.5 GMACs, the paper's figures.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidmatte.models.adam.encoder import IMAGENET_MEAN, IMAGENET_STD
from vidmatte.models.adam.guided_filter import DeepGuidedFilter
from vidmatte.models.backbones.mobilenetv2 import make_divisible

# MobileNetV3-Large (Howard et al., 2019, table 1): kernel, expansion, output channels, squeeze-and-
# excite, hard-swish (else ReLU), stride.
LARGE_BLOCKS: tuple[tuple[int, int, int, bool, bool, int], ...] = (
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
)
SKIP_BLOCKS = (0, 2, 5)  # the blocks whose outputs are the 1/2, 1/4 and 1/8 features
DILATED_FROM = 12  # the stride-2 block that would reach 1/32: stride 1 and dilation 2 from here on
LAST_CHANNELS = 960
ASPP_CHANNELS = 128
DECODER_CHANNELS = (80, 40, 32, 16)  # upsampling blocks at 1/8, 1/4, 1/2, output block at 1/1


def conv_bn(in_channels: int, out_channels: int, kernel: int, activation: nn.Module, **conv) -> nn.Sequential:
    """``kxk conv (no bias, "same" padding) -> BatchNorm2d -> activation``."""
    padding = conv.get("dilation", 1) * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=False, **conv),
        nn.BatchNorm2d(out_channels),
        activation,
    )


class SqueezeExcite(nn.Module):
    """Channel gates from the global mean: ``x * hardsigmoid(W2 relu(W1 mean(x)))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = make_divisible(channels / 4)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, squeezed, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(squeezed, channels, 1),
            nn.Hardsigmoid(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class Bottleneck(nn.Module):
    """MobileNetV3's block: 1x1 expansion, kxk depthwise, optional SE, linear 1x1 projection."""

    def __init__(self, in_channels: int, block: tuple[int, int, int, bool, bool, int], dilation: int) -> None:
        super().__init__()
        kernel, expansion, out_channels, squeeze, hard_swish, stride = block
        stride = 1 if dilation > 1 else stride

        def act() -> nn.Module:
            return nn.Hardswish(inplace=True) if hard_swish else nn.ReLU(inplace=True)

        layers: list[nn.Module] = []
        if expansion != in_channels:
            layers.append(conv_bn(in_channels, expansion, 1, act()))
        layers.append(
            conv_bn(expansion, expansion, kernel, act(), stride=stride, dilation=dilation, groups=expansion)
        )
        if squeeze:
            layers.append(SqueezeExcite(expansion))
        layers += [nn.Conv2d(expansion, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class MobileNetV3LargeEncoder(nn.Module):
    """ImageNet-normalised MobileNetV3-Large without classifier, last stage dilated (output at 1/16)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16, 3, nn.Hardswish(inplace=True), stride=2)
        blocks, channels = [], 16
        for index, block in enumerate(LARGE_BLOCKS):
            blocks.append(Bottleneck(channels, block, dilation=2 if index >= DILATED_FROM else 1))
            channels = block[2]
        self.blocks = nn.ModuleList(blocks)
        self.last = conv_bn(channels, LAST_CHANNELS, 1, nn.Hardswish(inplace=True))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> features at 1/2, 1/4, 1/8 (16, 24, 40 ch) and 1/16 (960)."""
        x = self.stem((image - self.mean) / self.std)
        skips = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in SKIP_BLOCKS:
                skips.append(x)
        return skips[0], skips[1], skips[2], self.last(x)


class LRASPP(nn.Module):
    """Lite R-ASPP: a 1x1 conv + BN + ReLU branch gated by a sigmoid of the pooled feature."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.branch = conv_bn(in_channels, out_channels, 1, nn.ReLU(inplace=True))
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.branch(x) * self.gate(x)


class ConvGRU(nn.Module):
    """Convolutional GRU with 3x3 kernels: gates ``r, z`` from ``[x, h]``, candidate from ``[x, r h]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gates = nn.Sequential(nn.Conv2d(2 * channels, 2 * channels, 3, padding=1), nn.Sigmoid())
        self.candidate = nn.Sequential(nn.Conv2d(2 * channels, channels, 3, padding=1), nn.Tanh())

    def forward(self, x: Tensor, h: Tensor | None) -> Tensor:
        """``(B, C, H, W)`` input and state (``None``: zeros) -> the new state."""
        if h is None:
            h = torch.zeros_like(x)
        r, z = self.gates(torch.cat([x, h], 1)).chunk(2, 1)
        candidate = self.candidate(torch.cat([x, r * h], 1))
        return (1 - z) * h + z * candidate


def recurrent_half(gru: ConvGRU, x: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
    """The ConvGRU on the second half of ``x``'s channels; returns ``([first half, new state], state)``."""
    kept, recurrent = x.chunk(2, 1)
    h = gru(recurrent, h)
    return torch.cat([kept, h], 1), h


def upsample_to(x: Tensor, like: Tensor) -> Tensor:
    """Bilinear 2x upsampling, cropped to ``like``'s size (odd sizes round up on the way down)."""
    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return x[..., : like.shape[-2], : like.shape[-1]]


class UpsamplingBlock(nn.Module):
    """``[up(x), skip, image] -> 3x3 conv + BN + ReLU -> ConvGRU on half the channels``."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fuse = conv_bn(in_channels + skip_channels + 3, out_channels, 3, nn.ReLU(inplace=True))
        self.gru = ConvGRU(out_channels // 2)

    def forward(self, x: Tensor, skip: Tensor, image: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        x = self.fuse(torch.cat([upsample_to(x, skip), skip, image], 1))
        return recurrent_half(self.gru, x, h)


class RecurrentState(NamedTuple):
    """The ConvGRU states at 1/16, 1/8, 1/4 and 1/2 (``None`` before the first frame)."""

    r16: Tensor | None = None
    r8: Tensor | None = None
    r4: Tensor | None = None
    r2: Tensor | None = None


class RecurrentDecoder(nn.Module):
    """RVM's decoder: bottleneck block, three upsampling blocks, output block (16 channels)."""

    def __init__(self) -> None:
        super().__init__()
        c8, c4, c2, c1 = DECODER_CHANNELS
        self.bottleneck = ConvGRU(ASPP_CHANNELS // 2)
        self.up8 = UpsamplingBlock(ASPP_CHANNELS, 40, c8)
        self.up4 = UpsamplingBlock(c8, 24, c4)
        self.up2 = UpsamplingBlock(c4, 16, c2)
        self.output = nn.Sequential(
            conv_bn(c2 + 3, c1, 3, nn.ReLU(inplace=True)), conv_bn(c1, c1, 3, nn.ReLU(inplace=True))
        )

    def forward(
        self, image: Tensor, f2: Tensor, f4: Tensor, f8: Tensor, f16: Tensor, state: RecurrentState
    ) -> tuple[Tensor, RecurrentState]:
        """Decode one frame; returns the 16-channel full-resolution feature and the new state."""
        i2 = F.avg_pool2d(image, 2, ceil_mode=True, count_include_pad=False)
        i4 = F.avg_pool2d(i2, 2, ceil_mode=True, count_include_pad=False)
        i8 = F.avg_pool2d(i4, 2, ceil_mode=True, count_include_pad=False)
        x, r16 = recurrent_half(self.bottleneck, f16, state.r16)
        x, r8 = self.up8(x, f8, i8, state.r8)
        x, r4 = self.up4(x, f4, i4, state.r4)
        x, r2 = self.up2(x, f2, i2, state.r2)
        hidden = self.output(torch.cat([upsample_to(x, image), image], 1))
        return hidden, RecurrentState(r16, r8, r4, r2)


class RobustVideoMatting(nn.Module):
    """RVM's MobileNetV3 network: encoder, LR-ASPP, recurrent decoder, projection, deep guided filter."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = MobileNetV3LargeEncoder()
        self.aspp = LRASPP(LAST_CHANNELS, ASPP_CHANNELS)
        self.decoder = RecurrentDecoder()
        self.project = nn.Conv2d(DECODER_CHANNELS[-1], 4, 1)
        self.refiner = DeepGuidedFilter(DECODER_CHANNELS[-1], DECODER_CHANNELS[-1])

    def forward(
        self, frame: Tensor, state: RecurrentState, downsample_ratio: float = 1.0
    ) -> tuple[Tensor, Tensor, RecurrentState]:
        """Matte one frame.

        Args:
            frame: ``(B, 3, H, W)`` RGB in ``[0, 1]``.
            state: the previous frame's :class:`RecurrentState` (``RecurrentState()`` to start).
            downsample_ratio: the network works at this fraction of ``H x W``; below 1 the guided
                filter restores the full size.

        Returns:
            ``(alpha (B, 1, H, W), foreground (B, 3, H, W), state)``, both in ``[0, 1]``.
        """
        image = frame
        if downsample_ratio != 1:
            image = F.interpolate(frame, scale_factor=downsample_ratio, mode="bilinear", align_corners=False)
        f2, f4, f8, f16 = self.encoder(image)
        hidden, state = self.decoder(image, f2, f4, f8, self.aspp(f16), state)
        out = self.project(hidden)
        alpha, foreground = out[:, :1].clamp(0, 1), (out[:, 1:] + image).clamp(0, 1)
        if downsample_ratio != 1:
            foreground, alpha = self.refiner(frame, image, foreground, alpha, hidden)
        return alpha, foreground, state
