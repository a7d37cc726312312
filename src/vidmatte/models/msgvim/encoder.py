"""MSG-VIM encoder: a ResNet-D backbone on RGB + guidance masks, plus shortcut features for the decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from vidmatte.models.backbones.resnet import ResNetD, conv3x3, init_weights, spectral_norm_convs
from vidmatte.models.msgvim.mobilenet import GuidedMobileNetV2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EncoderFeatures(NamedTuple):
    """Output of :class:`MsgVimEncoder`; every tensor is ``(N, C, H / s, W / s)`` float32.

    Attributes:
        deepest: the backbone's 1/32 feature, for the ASPP.
        skips: shortcut features at 1/1, 1/2, 1/4, 1/8 and 1/16, finest first.
    """

    deepest: Tensor
    skips: tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def shortcut_convs(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two ``3x3 conv -> ReLU -> BatchNorm`` layers (the reference's order: activation before norm)."""
    return nn.Sequential(
        conv3x3(in_channels, out_channels),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(out_channels),
        conv3x3(out_channels, out_channels),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(out_channels),
    )


class MsgVimEncoder(nn.Module):
    """Backbone plus one pair of shortcut convolutions per skip resolution.

    Args:
        backbone: a :class:`ResNetD` with 5 input channels, or its stand-in
            :class:`~vidmatte.models.msgvim.mobilenet.GuidedMobileNetV2`.
        full_channels: channels of the full-resolution shortcut (from the input itself).
        spectral_norm: spectrally normalise the shortcut convolutions (the backbone decides its own).
    """

    def __init__(
        self, backbone: ResNetD | GuidedMobileNetV2, full_channels: int = 32, spectral_norm: bool = False
    ) -> None:
        super().__init__()
        self.backbone = backbone
        half, stages = backbone.half_channels, backbone.stage_channels
        self.shortcuts = nn.ModuleList(
            shortcut_convs(c_in, c_out)
            for c_in, c_out in zip(
                (backbone.in_channels, half, *stages[:3]), (full_channels, half, *stages[:3]), strict=True
            )
        )
        init_weights(self.shortcuts)
        if spectral_norm:
            spectral_norm_convs(self.shortcuts)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: Tensor, masks: Tensor) -> EncoderFeatures:
        """Encode frames with their guidance.

        Args:
            rgb: ``(N, 3, H, W)`` float32 in [0, 1]; H and W multiples of 32.
            masks: ``(N, 2, H, W)`` float32 in {0, 1}: target instance, then reference (the others).

        Returns:
            The 1/32 feature and the shortcut features at 1/1 to 1/16.
        """
        x = torch.cat([(rgb - self.mean) / self.std, masks], dim=1)
        features = self.backbone(x)
        inputs = (x, features.half, features.quarter, features.eighth, features.sixteenth)
        skips = tuple(shortcut(f) for shortcut, f in zip(self.shortcuts, inputs, strict=True))
        return EncoderFeatures(features.deepest, skips)
