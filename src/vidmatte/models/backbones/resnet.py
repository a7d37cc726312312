"""ResNet-D encoder (He et al., "Bag of Tricks", 2019) as modified for matting by MGMatting and MSG-VIM.

Compared with the classic ResNet: a deep stem of three 3x3 convolutions (to 1/2, then 1/4) instead of
one 7x7, no max pooling, and downsampling shortcuts that average-pool before their 1x1 convolution.
With BasicBlock stages of 3, 4, 4, 2 blocks it is the "ResNet-34-style" encoder of MSG-VIM (the
last stage has 2 blocks instead of 3). Spectral normalisation of every convolution is optional, as
in the reference implementation.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


def spectral_norm_convs(module: nn.Module) -> nn.Module:
    """Spectrally normalise every (transposed) convolution inside ``module``, in place.

    The weight is flattened along its first dimension for both kinds (``dim=0``), which is how the
    reference implementation normalises its transposed convolutions too, so checkpoints convert.
    """
    for child in list(module.modules()):
        if isinstance(child, nn.Conv2d | nn.ConvTranspose2d):
            spectral_norm(child, dim=0)
    return module


def init_weights(module: nn.Module) -> None:
    """Xavier-uniform convolutions, unit BatchNorm; call before :func:`spectral_norm_convs`."""
    for child in module.modules():
        if isinstance(child, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.xavier_uniform_(child.weight)
        elif isinstance(child, nn.BatchNorm2d):
            nn.init.ones_(child.weight)
            nn.init.zeros_(child.bias)


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection; the first may stride by 2.

    A strided block's shortcut is ``AvgPool2d(2) -> 1x1 conv -> BN`` (ResNet-D); a block that only
    changes the channel count uses ``1x1 conv -> BN``. The last BatchNorm of the residual branch
    starts at zero, so the block starts as the identity (Goyal et al., 2017).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1:
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(2, stride),
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        elif in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C_out, H / stride, W / stride)``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def make_stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` BasicBlocks, the first one striding and changing the channel count."""
    layers = [BasicBlock(in_channels, out_channels, stride)]
    layers += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNetFeatures(NamedTuple):
    """Features of :class:`ResNetD`, each ``(N, C, H / s, W / s)`` float32.

    Attributes:
        half: 1/2, after the first two stem convolutions (``half_channels``).
        quarter: 1/4, after the first stage (``stage_channels[0]``).
        eighth: 1/8 (``stage_channels[1]``).
        sixteenth: 1/16 (``stage_channels[2]``).
        deepest: 1/32 (``stage_channels[3]``).
    """

    half: Tensor
    quarter: Tensor
    eighth: Tensor
    sixteenth: Tensor
    deepest: Tensor


class ResNetD(nn.Module):
    """ResNet-D with a deep stem; input height and width must be multiples of 32.

    Args:
        in_channels: input channels (5 for MSG-VIM: RGB, target mask, reference mask).
        half_channels: channels of the stem at 1/2.
        stage_channels: channels of the four stages (1/4, 1/8, 1/16, 1/32).
        blocks: BasicBlocks per stage.
        spectral_norm: spectrally normalise every convolution.
        zero_extra_inputs: input channels after the first three (RGB) start with zero weights, so
            that guidance masks start neutral and an RGB-pretrained stem keeps its behaviour.
    """

    def __init__(
        self,
        in_channels: int = 5,
        half_channels: int = 32,
        stage_channels: tuple[int, int, int, int] = (64, 128, 256, 512),
        blocks: tuple[int, int, int, int] = (3, 4, 4, 2),
        spectral_norm: bool = False,
        zero_extra_inputs: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.half_channels = half_channels
        self.stage_channels = stage_channels
        self.stem = nn.Sequential(
            conv3x3(in_channels, half_channels, stride=2),
            nn.BatchNorm2d(half_channels),
            nn.ReLU(inplace=True),
            conv3x3(half_channels, half_channels),
            nn.BatchNorm2d(half_channels),
            nn.ReLU(inplace=True),
        )
        self.stem_down = nn.Sequential(
            conv3x3(half_channels, stage_channels[0], stride=2),
            nn.BatchNorm2d(stage_channels[0]),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.ModuleList(
            make_stage(c_in, c_out, n, stride)
            for c_in, c_out, n, stride in zip(
                (stage_channels[0], *stage_channels[:3]), stage_channels, blocks, (1, 2, 2, 2), strict=True
            )
        )
        init_weights(self)
        for block in self.modules():
            if isinstance(block, BasicBlock):
                nn.init.zeros_(block.bn2.weight)
        if zero_extra_inputs:
            nn.init.zeros_(self.stem[0].weight[:, 3:])
        if spectral_norm:
            spectral_norm_convs(self)

    def forward(self, x: Tensor) -> ResNetFeatures:
        """``(N, in_channels, H, W)`` (H, W multiples of 32) -> features at 1/2 to 1/32."""
        half = self.stem(x)
        quarter = self.stages[0](self.stem_down(half))
        eighth = self.stages[1](quarter)
        sixteenth = self.stages[2](eighth)
        return ResNetFeatures(half, quarter, eighth, sixteenth, self.stages[3](sixteenth))
