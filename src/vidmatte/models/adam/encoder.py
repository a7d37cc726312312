"""AdaM's encoder Φ: ImageNet normalisation, a backbone, and a 1x1 reduction of the deepest feature."""

from __future__ import annotations

import torch
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class AdamEncoder(nn.Module):
    """Multi-scale features of a frame, the deepest reduced to the transformer's width.

    Args:
        backbone: module mapping a normalised ``(B, 3, H, W)`` image to four features at 1/2, 1/4,
            1/8 and 1/16, exposing their channel counts as ``backbone.channels``.
        dim: channels of the reduced 1/16 feature ``Z`` (256 in the paper).
    """

    def __init__(self, backbone: nn.Module, dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.reduce = nn.Conv2d(backbone.channels[3], dim, kernel_size=1)
        self.skip_channels: tuple[int, int, int] = tuple(backbone.channels[:3])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: Tensor) -> tuple[tuple[Tensor, Tensor, Tensor], Tensor]:
        """Encode frames.

        Args:
            image: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, ``H`` and ``W`` multiples of 16.

        Returns:
            ``((f_1/2, f_1/4, f_1/8), z)``: the skip features with ``skip_channels`` channels and
            ``z``, ``(B, dim, H/16, W/16)``.
        """
        f2, f4, f8, f16 = self.backbone((image - self.mean) / self.std)
        return (f2, f4, f8), self.reduce(f16)
