"""Deep guided filter (Wu et al., 2018) that lifts low-resolution alpha and foreground to full size.

For large frames the network runs on a downsampled copy. A guided filter then fits, in every
3x3 window of the low-resolution result, a linear model ``y = A x + b`` from the guide ``x``
(the low-resolution image, plus its grey level for the alpha channel) to the output ``y``
(foreground RGB and alpha); 1x1 convolutions predict ``A`` from the window statistics and the
decoder's hidden feature ("deep" guided filter), ``b = mean(y) - A mean(x)``. ``A`` and ``b`` are
upsampled bilinearly and applied to the full-resolution guide.

A filter whose BatchNorm statistics were never updated was never trained (no training stage ran at a
downsample ratio below 1): its output would be noise, so :func:`vidmatte.models.loading.load_model`
disables it (``enabled = False``) and low-resolution results are then upsampled bilinearly, with a
warning the first time.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

GUIDE_CHANNELS = 4  # R, G, B guide the foreground channels; the grey level guides alpha
UNTRAINED = (
    "the guided filter of these weights was never trained: downsampled frames are upsampled bilinearly"
)


def box_filter(x: Tensor) -> Tensor:
    """Mean over each 3x3 window (counting only pixels inside the image), ``(B, C, H, W)`` -> same."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def guide(image: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB -> ``(B, 4, H, W)``: the RGB channels then their mean."""
    return torch.cat([image, image.mean(1, keepdim=True)], 1)


class DeepGuidedFilter(nn.Module):
    """Guided upsampling of ``(foreground, alpha)``.

    Args:
        hidden_channels: channels of the decoder's hidden feature at the low resolution.
        width: width of the 1x1 convolutions predicting ``A``.
    """

    def __init__(self, hidden_channels: int, width: int) -> None:
        super().__init__()
        self.predict_a = nn.Sequential(
            nn.Conv2d(2 * GUIDE_CHANNELS + hidden_channels, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, GUIDE_CHANNELS, 1),
        )
        self.enabled = True

    def is_trained(self) -> bool:
        """Whether training ever updated the BatchNorm statistics (fresh ones are mean 0, variance 1)."""
        norms = [m for m in self.predict_a if isinstance(m, nn.BatchNorm2d)]
        return any(bool((m.running_mean != 0).any() or (m.running_var != 1).any()) for m in norms)

    def forward(
        self,
        image: Tensor,
        low_image: Tensor,
        low_foreground: Tensor,
        low_alpha: Tensor,
        low_hidden: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Upsample a low-resolution result.

        Args:
            image: ``(B, 3, H, W)`` full-resolution RGB in ``[0, 1]``.
            low_image: ``(B, 3, h, w)`` the image the network saw.
            low_foreground: ``(B, 3, h, w)`` its foreground in ``[0, 1]``.
            low_alpha: ``(B, 1, h, w)`` its alpha in ``[0, 1]``.
            low_hidden: ``(B, C, h, w)`` the decoder's hidden feature.

        Returns:
            ``(foreground (B, 3, H, W), alpha (B, 1, H, W))``, both clamped to ``[0, 1]``.
        """
        size = image.shape[-2:]
        if not self.enabled:
            warnings.warn(UNTRAINED, stacklevel=2)
            up = F.interpolate(torch.cat([low_foreground, low_alpha], 1), size, mode="bilinear")
            return up[:, :3].clamp(0, 1), up[:, 3:].clamp(0, 1)
        x = guide(low_image)
        y = torch.cat([low_foreground, low_alpha], 1)
        mean_x, mean_y = box_filter(x), box_filter(y)
        covariance = box_filter(x * y) - mean_x * mean_y
        variance = box_filter(x * x) - mean_x * mean_x
        a = self.predict_a(torch.cat([covariance, variance, low_hidden], 1))
        b = mean_y - a * mean_x
        a = F.interpolate(a, size, mode="bilinear", align_corners=False)
        b = F.interpolate(b, size, mode="bilinear", align_corners=False)
        # one fused multiply-add and an in-place clamp: the full-resolution tensors dominate HD cost
        out = torch.addcmul(b, a, guide(image)).clamp_(0, 1)
        return out[:, :3], out[:, 3:]
