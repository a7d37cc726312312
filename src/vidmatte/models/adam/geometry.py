"""Where a frame of any size meets a network that needs multiples of 16: resize, pad, crop back."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

PAD_MULTIPLE = 16  # the encoder's deepest stride
AUTO_LONG_SIDE = 512  # automatic downsampling brings the long side to about this many pixels
TOKEN_STRIDE = 16
# decision: below 64 pixels on the short side a person covers a handful of 1/16 tokens and the mattes are
# noise; a frame smaller than that is taken at full size
MIN_NETWORK_SIDE = 64


def min_downsample_ratio(height: int, width: int) -> float:
    """The smallest ratio that leaves the network :data:`MIN_NETWORK_SIDE` pixels on the short side of a
    ``height x width`` frame (1 for a frame shorter than that), rounded up to 3 decimals."""
    short = min(height, width)
    needed = min(MIN_NETWORK_SIDE, short)
    return -(-needed * 1000 // short) / 1000


def auto_downsample_ratio(height: int, width: int, long_side: int = AUTO_LONG_SIDE) -> float:
    """The ratio that brings the long side of a ``height x width`` frame to ``long_side`` (never above 1)."""
    return min(1.0, long_side / max(height, width))


def unit_range(image: Tensor) -> Tensor:
    """A uint8 image in [0, 255] as float32 in [0, 1] (the same layout); a float image unchanged."""
    return image.float().div_(255) if image.dtype == torch.uint8 else image


@dataclass(frozen=True)
class FrameGeometry:
    """Sizes of one video's frames on their way through the network.

    Attributes:
        height, width: size of the input frames.
        low_height, low_width: size the network works at (``downsample_ratio`` times the input).
    """

    height: int
    width: int
    low_height: int
    low_width: int

    @classmethod
    def for_size(cls, height: int, width: int, downsample_ratio: float | None = None) -> FrameGeometry:
        """Geometry for ``height x width`` frames; a ``None`` ratio is :func:`auto_downsample_ratio`'s."""
        ratio = auto_downsample_ratio(height, width) if downsample_ratio is None else downsample_ratio
        if not 0 < ratio <= 1:
            raise ValueError(f"downsample ratio must be in (0, 1], got {ratio}")
        return cls(height, width, max(1, round(height * ratio)), max(1, round(width * ratio)))

    @property
    def downsampled(self) -> bool:
        """Whether the network works below the input size (the guided filter then upsamples)."""
        return (self.low_height, self.low_width) != (self.height, self.width)

    @property
    def padded_size(self) -> tuple[int, int]:
        """The network's input size: the low size rounded up to multiples of 16."""
        return (
            math.ceil(self.low_height / PAD_MULTIPLE) * PAD_MULTIPLE,
            math.ceil(self.low_width / PAD_MULTIPLE) * PAD_MULTIPLE,
        )

    def downsample(self, x: Tensor) -> Tensor:
        """``(N, C, height, width)`` -> ``(N, C, low_height, low_width)`` (antialiased bilinear).

        ``x`` is float, or uint8 in [0, 255] (a decoded frame), which comes out float32 in [0, 1]:
        resized as uint8, channels-last, about 4x faster than as float32 (4 against 16 ms from
        1920x1080 to 512x288), at the cost of rounding the small frame to 1/255.
        """
        size = (self.low_height, self.low_width)
        if x.dtype == torch.uint8:
            if self.downsampled:
                x = F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=True)
            return unit_range(x)
        if not self.downsampled:
            return x
        # antialiased resizing has no bfloat16 kernel on CPU; a mask made under autocast may be one
        low = F.interpolate(x.float(), size, mode="bilinear", align_corners=False, antialias=True)
        return low.to(x.dtype)

    def pad(self, x: Tensor) -> Tensor:
        """``(N, C, low_height, low_width)`` -> the padded size, repeating the border."""
        padded_height, padded_width = self.padded_size
        bottom, right = padded_height - self.low_height, padded_width - self.low_width
        return F.pad(x, (0, right, 0, bottom), mode="replicate") if bottom or right else x

    def crop(self, x: Tensor, scale: int = 1) -> Tensor:
        """Crop a network output at ``1/scale`` of the padded size to cover the low size."""
        return x[..., : math.ceil(self.low_height / scale), : math.ceil(self.low_width / scale)]

    def mask_tokens(self, mask: Tensor) -> Tensor:
        """Foreground probability per 1/16 token of a full-size mask.

        Args:
            mask: ``(N, 1, height, width)`` float in ``[0, 1]``.

        Returns:
            ``(N, L)`` with ``L = (padded_height / 16) * (padded_width / 16)``, row-major.
        """
        return F.avg_pool2d(self.pad(self.downsample(mask)), TOKEN_STRIDE).flatten(1)
