"""MSG-VIM's encoder on a MobileNetV2 instead of its ResNet-D, so that it can start from weights trained
on real people (the shipped MoveNet's backbone, ``backbone_init: movenet``).

The RGB image runs through the MobileNetV2 with its standard strides; the two guidance masks enter at
1/2 through a convolution that starts at zero, so that a pretrained network starts with its own
features and learns how to use the guidance.
"""

from __future__ import annotations

from torch import Tensor, nn

from vidmatte.models.backbones.mobilenetv2 import MobileNetV2
from vidmatte.models.backbones.resnet import ResNetFeatures

# The MobileNetV2 stages whose outputs are MSG-VIM's features at 1/2, 1/4, 1/8 and 1/16 (the head's
# output is the 1/32 one).
FEATURE_STAGES = (0, 1, 2, 4)


class GuidedMobileNetV2(nn.Module):
    """A :class:`ResNetD` stand-in: ``(N, 5, H, W)`` (normalised RGB, target and reference masks) to
    :class:`ResNetFeatures` at 1/2 to 1/32.

    Args:
        width_mult: the MobileNetV2's width (1.5 for MoveNet's).
    """

    in_channels = 5

    def __init__(self, width_mult: float) -> None:
        super().__init__()
        self.network = MobileNetV2(width_mult, dilated=False)
        stem = self.network.stem[0]
        self.guidance = nn.Conv2d(2, stem.out_channels, 3, stride=2, padding=1, bias=False)
        nn.init.zeros_(self.guidance.weight)
        half, quarter, eighth, sixteenth = (self.network.stage_channels[i] for i in FEATURE_STAGES)
        self.half_channels = half
        self.stage_channels = (quarter, eighth, sixteenth, self.network.channels[3])

    def forward(self, x: Tensor) -> ResNetFeatures:
        """``(N, 5, H, W)`` (H, W multiples of 32) -> features at 1/2 to 1/32."""
        stem = self.network.stem(x[:, :3]) + self.guidance(x[:, 3:])
        features, last = self.network.run_stages(stem, FEATURE_STAGES)
        return ResNetFeatures(*features, self.network.head(last))
