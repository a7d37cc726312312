"""MediaPipe selfie segmentation (Google, Apache-2.0) rebuilt as a plain PyTorch module.

MediaPipe ships two TFLite models of one architecture: ``general`` (input 256x256) and ``landscape``
(input 144x256, height x width). Both take RGB in [0, 1], stretched to the input size without keeping
the aspect ratio, and return a person probability at the input size. Read from the TFLite graph
(``scripts/convert_selfie_segmentation.py`` maps its tensors onto this module), the network is:

- an encoder in the style of MobileNetV3-small: a 3x3 stride-2 stem with hard-swish, then eight
  inverted residual blocks (:data:`ENCODER_BLOCKS`), some with squeeze-and-excitation (a sigmoid
  gate, not the hard-sigmoid of MobileNetV3); its features at 1/2, 1/4, 1/8 and 1/16 of the input;
- an LR-ASPP-like head on the 1/16 feature: a 1x1 ReLU branch times a sigmoid gate computed from the
  feature's global mean;
- a decoder that climbs back to 1/2 in three stages, each: upsample x2 (bilinear, half-pixel
  centres) and 1x1 conv, fuse with the skip feature as ``skip * gate(skip + up) + up``, then a 1x1
  ReLU conv ``a`` refined as ``a + relu(depthwise3x3(a))``;
- a 2x2 stride-2 transposed conv to one channel at full size, then a sigmoid.

TensorFlow's "SAME" padding puts the odd extra row and column of a stride-2 convolution at the
bottom and right; :class:`SameConv2d` reproduces it so that the weights line up with the original.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidmatte.errors import VidmatteError
from vidmatte.models.loading import WEIGHTS_FOLDER, load_weights_into

Variant = Literal["general", "landscape"]
# Network input (height, width) of each variant, as in MediaPipe's selfie_segmentation_cpu graph.
INPUT_SIZES: dict[str, tuple[int, int]] = {"general": (256, 256), "landscape": (144, 256)}
STEM_CHANNELS = 16
HEAD_CHANNELS = 128


def weights_path(variant: str) -> Path:
    """The shipped weights file of ``variant`` (``selfie_segmentation_<variant>.safetensors``)."""
    return WEIGHTS_FOLDER / f"selfie_segmentation_{variant}.safetensors"


def weights_model_name(variant: str) -> str:
    """The model name recorded in the metadata of ``variant``'s weights (tells the two files apart)."""
    return f"selfie-segmentation-{variant}"


@dataclass(frozen=True)
class BlockSpec:
    """One inverted residual block of the encoder.

    Attributes:
        in_channels: channels in.
        expanded: channels after the 1x1 expansion (and through the depthwise conv).
        out_channels: channels after the 1x1 linear projection.
        kernel_size: side of the depthwise kernel.
        stride: of the depthwise conv (1 or 2).
        hard_swish: hard-swish activations instead of ReLU.
        squeeze: hidden channels of the squeeze-and-excitation gate; 0 for none.
    """

    in_channels: int
    expanded: int
    out_channels: int
    kernel_size: int
    stride: int
    hard_swish: bool
    squeeze: int


ENCODER_BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec(16, 16, 16, 3, 2, False, 8),  # -> 1/4, skip
    BlockSpec(16, 72, 24, 3, 2, False, 0),
    BlockSpec(24, 88, 24, 3, 1, False, 0),  # -> 1/8, skip
    BlockSpec(24, 96, 32, 5, 2, True, 24),
    BlockSpec(32, 128, 32, 5, 1, True, 32),
    BlockSpec(32, 128, 32, 5, 1, True, 32),
    BlockSpec(32, 96, 32, 5, 1, True, 24),
    BlockSpec(32, 96, 32, 5, 1, True, 24),  # -> 1/16
)
SKIP_BLOCKS = (0, 2)  # encoder blocks whose outputs feed the decoder (besides the stem)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "SAME" padding: output side ``ceil(side / stride)``.

    The total padding ``max((out - 1) * stride + kernel - side, 0)`` is split with the smaller half
    on the top and left, as TensorFlow does (PyTorch's symmetric padding would shift a stride-2
    output by one input pixel).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, groups=groups)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, ceil(H / stride), ceil(W / stride))``."""
        pads = []
        for side, kernel, stride in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max((math.ceil(side / stride) - 1) * stride + kernel - side, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class ChannelGate(nn.Module):
    """Per-channel sigmoid gate from the global mean: ``sigmoid(W2 relu(W1 mean(x) + b1) + b2)``."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> gate ``(B, C, 1, 1)`` in (0, 1)."""
        pooled = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.expand(F.relu(self.reduce(pooled))))


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise kxk -> optional squeeze-excitation -> project (1x1), residual if it fits."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        self.expand = nn.Conv2d(spec.in_channels, spec.expanded, 1)
        self.depthwise = SameConv2d(
            spec.expanded, spec.expanded, spec.kernel_size, spec.stride, groups=spec.expanded
        )
        self.excite = ChannelGate(spec.expanded, spec.squeeze) if spec.squeeze else None
        self.project = nn.Conv2d(spec.expanded, spec.out_channels, 1)
        self.activation: nn.Module = nn.Hardswish() if spec.hard_swish else nn.ReLU()
        self.residual = spec.stride == 1 and spec.in_channels == spec.out_channels

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, ceil(H / stride), ceil(W / stride))``."""
        hidden = self.activation(self.depthwise(self.activation(self.expand(x))))
        if self.excite is not None:
            hidden = hidden * self.excite(hidden)
        out = self.project(hidden)
        return x + out if self.residual else out


class SelfieEncoder(nn.Module):
    """Stem and inverted residual blocks; returns the features at 1/2, 1/4, 1/8 and 1/16."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self.blocks = nn.ModuleList(InvertedResidual(spec) for spec in ENCODER_BLOCKS)

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, 3, H, W)`` -> ``(B, C, H/s, W/s)`` at strides s = 2, 4, 8, 16 with C = 16, 16, 24, 32.

        Sides are rounded up at each stride-2 step (TensorFlow's "SAME").
        """
        x = F.hardswish(self.stem(x))
        features = [x]
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in SKIP_BLOCKS:
                features.append(x)
        return [*features, x]


class GatedHead(nn.Module):
    """LR-ASPP-like head: ``relu(W_b x + b_b) * sigmoid(W_g mean(x) + b_g)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.branch = nn.Conv2d(in_channels, out_channels, 1)
        self.gate = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``."""
        gate = torch.sigmoid(self.gate(x.mean(dim=(2, 3), keepdim=True)))
        return F.relu(self.branch(x)) * gate


class UpProject(nn.Module):
    """Bilinear upsampling to the skip feature's size (half-pixel centres), then a 1x1 conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        """``(B, C_in, h, w)`` -> ``(B, C_out, *size)``."""
        return self.conv(F.interpolate(x, size=size, mode="bilinear", align_corners=False))


class DecoderStage(nn.Module):
    """Fuse a skip feature with the upsampled path, then refine with a residual depthwise conv.

    ``fused = skip * gate(skip + up) + up``; ``a = relu(W fused + b)``; ``out = a + relu(dw3x3(a))``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.attention = ChannelGate(channels, channels)
        self.refine = nn.Conv2d(channels, channels, 1)
        self.depthwise = SameConv2d(channels, channels, 3, groups=channels)

    def forward(self, skip: Tensor, up: Tensor) -> Tensor:
        """``(B, C, H, W)`` twice -> ``(B, C, H, W)``."""
        fused = skip * self.attention(skip + up) + up
        refined = F.relu(self.refine(fused))
        return refined + F.relu(self.depthwise(refined))


class SelfieSegmentation(nn.Module):
    """MediaPipe's selfie segmentation network (module docstring: the architecture).

    Args:
        input_size: ``(height, width)`` the weights were trained at, used by :func:`segment_people`
            (``INPUT_SIZES[variant]``). ``forward`` accepts other sizes, but the probabilities match
            the original only at this one.
    """

    def __init__(self, input_size: tuple[int, int] = INPUT_SIZES["general"]) -> None:
        super().__init__()
        self.input_size = input_size
        self.encoder = SelfieEncoder()
        self.head = GatedHead(ENCODER_BLOCKS[-1].out_channels, HEAD_CHANNELS)
        skip_channels = [STEM_CHANNELS] + [ENCODER_BLOCKS[i].out_channels for i in SKIP_BLOCKS]
        # coarse to fine: 1/8, 1/4, 1/2
        self.ups = nn.ModuleList()
        self.stages = nn.ModuleList()
        channels = HEAD_CHANNELS
        for skip in reversed(skip_channels):
            self.ups.append(UpProject(channels, skip))
            self.stages.append(DecoderStage(skip))
            channels = skip
        self.output = nn.ConvTranspose2d(channels, 1, kernel_size=2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        """Person probability.

        Args:
            x: ``(B, 3, h, w)`` float RGB in [0, 1] at :attr:`input_size`.

        Returns:
            ``(B, 1, h, w)`` probability in [0, 1] that a pixel shows a person.
        """
        # channels-last runs the many small depthwise and 1x1 convolutions faster on CPU (oneDNN)
        *skips, deepest = self.encoder(x.contiguous(memory_format=torch.channels_last))
        y = self.head(deepest)
        for up, stage, skip in zip(self.ups, self.stages, reversed(skips), strict=True):
            y = stage(skip, up(y, skip.shape[-2:]))
        return torch.sigmoid(self.output(y))


def load_selfie_segmentation(
    variant: Variant = "general",
    device: str | torch.device = "cpu",
    *,
    weights: str | os.PathLike | None = None,
) -> SelfieSegmentation:
    """The selfie segmentation network with MediaPipe's weights, in evaluation mode.

    Args:
        variant: ``"general"`` (256x256 input, any framing) or ``"landscape"`` (144x256, faster,
            for wide frames).
        device: where to put the network.
        weights: a weights file to load instead of the shipped one (same layout).

    Raises:
        VidmatteError: unknown variant; a missing, corrupt or mismatched weights file (named).
    """
    if variant not in INPUT_SIZES:
        raise VidmatteError(
            f"selfie segmentation: unknown variant {variant!r} (choose from {list(INPUT_SIZES)})"
        )
    path = weights if weights is not None else weights_path(variant)
    model = SelfieSegmentation(INPUT_SIZES[variant])
    load_weights_into(model, path, expected_model=weights_model_name(variant))
    return model.to(device=device, memory_format=torch.channels_last).eval()


def resize_images(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(B, C, H, W)`` images to ``size`` (height, width), antialiased when shrinking.

    (PyTorch's antialiasing filter reduces to plain bilinear interpolation along a side that grows.)
    """
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def segment_people(model: SelfieSegmentation, images: Tensor) -> Tensor:
    """Person probability of images of any size (stretched to the network's input and back).

    Args:
        model: from :func:`load_selfie_segmentation`.
        images: ``(B, 3, H, W)`` float RGB in [0, 1], any ``H, W``.

    Returns:
        ``(B, 1, H, W)`` float32 probability in [0, 1], on ``images``' device.

    Raises:
        VidmatteError: ``images`` is not ``(B, 3, H, W)``.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise VidmatteError(
            f"segment_people: expected images of shape (B, 3, H, W), got {tuple(images.shape)}"
        )
    parameter = next(model.parameters())
    x = resize_images(images.to(parameter.device, parameter.dtype), model.input_size)
    probability = model(x).float()
    return resize_images(probability, tuple(images.shape[-2:])).clamp(0.0, 1.0).to(images.device)
