"""MobileNetV2 (Sandler et al., 2018) in plain PyTorch, with a dilated last stage for dense prediction.

The stage settings are the paper's ``(t, c, n, s)`` table. Following DeepLab, the stride of the
stage that would bring the features from 1/16 to 1/32 (the 160-channel stage) is set to 1 and that
stage and every later one use a dilation of 2, so the deepest feature stays at 1/16. At width 1.0
the network without its classifier has 2,223,872 parameters.
"""

from __future__ import annotations

from torch import Tensor, nn

# (expansion t, output channels c, repeats n, stride s) of the seven inverted-residual stages.
STAGE_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
DILATED_STAGE = 5  # index of the 160-channel stage: stride 1, dilation 2 from here on
# Stages whose output is a skip feature: 16 ch at 1/2, 24 at 1/4, 32 at 1/8.
SKIP_STAGES = (0, 1, 2)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` without losing more than 10% of it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBNReLU6(nn.Sequential):
    """``Conv2d (no bias) -> BatchNorm2d -> ReLU6`` with "same" padding for odd kernels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, padding, dilation, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> linear projection (1x1), with a residual when shapes match."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, dilation: int, expand_ratio: int
    ) -> None:
        super().__init__()
        hidden = round(in_channels * expand_ratio)
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, 3, stride, dilation, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H / stride, W / stride)``."""
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor returning features at 1/2, 1/4, 1/8 and 1/16.

    Args:
        width_mult: channel multiplier of the stem and every stage (1.0 is the standard network).
        last_channels: channels of the final 1x1 convolution (1280 in the standard network).
        dilated: keep the deepest features at 1/16 (stride 1 and dilation 2 from the 160-channel
            stage on); ``False``: the standard strides, the deepest features at 1/32.

    ``stage_channels`` holds the output channels of the seven stages.

    The input is expected already normalised (ImageNet mean/std); height and width must be
    multiples of 16 for the skip features to align exactly with the decoder's 2x upsampling.
    """

    def __init__(
        self, width_mult: float = 1.0, last_channels: int = LAST_CHANNELS, dilated: bool = True
    ) -> None:
        super().__init__()
        channels = make_divisible(STEM_CHANNELS * width_mult)
        self.stem = ConvBNReLU6(3, channels, 3, stride=2)
        stages = []
        stage_channels = []
        dilation = 1
        for index, (expand, out, repeats, stride) in enumerate(STAGE_SETTINGS):
            out_channels = make_divisible(out * width_mult)
            if dilated and index >= DILATED_STAGE:
                stride, dilation = 1, 2
            blocks = []
            for repeat in range(repeats):
                blocks.append(
                    InvertedResidual(channels, out_channels, stride if repeat == 0 else 1, dilation, expand)
                )
                channels = out_channels
            stages.append(nn.Sequential(*blocks))
            stage_channels.append(out_channels)
        self.stages = nn.ModuleList(stages)
        self.head = ConvBNReLU6(channels, last_channels, kernel_size=1)
        self.stage_channels = tuple(stage_channels)
        self.channels: tuple[int, int, int, int] = (
            *(stage_channels[i] for i in SKIP_STAGES),
            last_channels,
        )
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Extract multi-scale features.

        Args:
            x: ``(B, 3, H, W)`` float, normalised image.

        Returns:
            ``(f_1/2, f_1/4, f_1/8, deepest)`` with ``self.channels`` channels, the deepest at 1/16
            (1/32 when not ``dilated``).
        """
        skips, x = self.run_stages(self.stem(x), SKIP_STAGES)
        return skips[0], skips[1], skips[2], self.head(x)

    def run_stages(self, x: Tensor, taps: tuple[int, ...]) -> tuple[list[Tensor], Tensor]:
        """The seven stages on the stem's output ``x``: the outputs of the stages numbered in ``taps``,
        and the last stage's output (the head's input)."""
        tapped = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in taps:
                tapped.append(x)
        return tapped, x
