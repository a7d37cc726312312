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

from vidmatte.models.adam.geometry import unit_range

GUIDE_CHANNELS = 4  # R, G, B guide the foreground channels; the grey level guides alpha
UNTRAINED = (
    "the guided filter of these weights was never trained: downsampled frames are upsampled bilinearly"
)


def window_counts(length: int, like: Tensor) -> Tensor:
    """``(length,)`` pixels of a 3-wide window centred on each position that fall inside ``[0, length)``."""
    index = torch.arange(length, device=like.device)
    return ((index + 1).clamp(max=length - 1) - (index - 1).clamp(min=0) + 1).to(like.dtype)


def box_filter(x: Tensor) -> Tensor:
    """Mean over each 3x3 window (counting only pixels inside the image), ``(B, C, H, W)`` -> same.

    Sums of shifted views of a zero-padded copy, one axis after the other, over the count of pixels
    inside each window: the same means as ``avg_pool2d(count_include_pad=False)`` up to float
    rounding, about 3x faster on CPU.
    """
    height, width = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1))
    rows = padded[..., :-2, :] + padded[..., 1:-1, :] + padded[..., 2:, :]
    sums = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
    return sums / torch.outer(window_counts(height, x), window_counts(width, x))


def guide(image: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB -> ``(B, 4, H, W)``: the RGB channels then their mean."""
    return torch.cat([image, image.mean(1, keepdim=True)], 1)


class DeepGuidedFilter(nn.Module):
    """Guided upsampling of ``(foreground, alpha)``.

    Args:
        hidden_channels: channels of the decoder's hidden feature at the low resolution.
        width: width of the 1x1 convolutions predicting ``A``.
        fused: in CPU inference (no gradient, no export), upsample and apply ``A`` and ``b`` in one
            kernel (:mod:`~vidmatte.models.adam.guided_kernel`, about 3.5x faster at 1080p); ``False``
            keeps PyTorch's operators everywhere, as RVM's published filter (the speed benchmarks' peer).
    """

    def __init__(self, hidden_channels: int, width: int, fused: bool = True) -> None:
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
        self.fused = fused

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
            image: ``(B, 3, H, W)`` full-resolution RGB, float in ``[0, 1]`` or uint8 in ``[0, 255]``.
            low_image: ``(B, 3, h, w)`` the image the network saw.
            low_foreground: ``(B, 3, h, w)`` its foreground in ``[0, 1]``.
            low_alpha: ``(B, 1, h, w)`` its alpha in ``[0, 1]``.
            low_hidden: ``(B, C, h, w)`` the decoder's hidden feature.

        Returns:
            ``(foreground (B, 3, H, W), alpha (B, 1, H, W))`` float32, both clamped to ``[0, 1]``.
        """
        size = image.shape[-2:]
        # float32 NCHW whatever the session runs: the full-resolution arithmetic is memory-bound and runs
        # about 1.4x faster on planes than channels-last, and bfloat16 would only round A and b
        with torch.autocast(image.device.type, enabled=False):
            low_image, low_foreground, low_alpha = (
                t.float().contiguous() for t in (low_image, low_foreground, low_alpha)
            )
            fused = (
                self.fused
                and image.device.type == "cpu"
                and not torch.is_grad_enabled()
                and not torch.jit.is_tracing()
            )
            if not fused:
                image = unit_range(image).float().contiguous()
            if not self.enabled:
                warnings.warn(UNTRAINED, stacklevel=2)
                up = F.interpolate(torch.cat([low_foreground, low_alpha], 1), size, mode="bilinear")
                return up[:, :3].clamp(0, 1), up[:, 3:].clamp(0, 1)
            x = guide(low_image)
            y = torch.cat([low_foreground, low_alpha], 1)
            means = box_filter(torch.cat([x, y, x * y, x * x], 1))  # one pass for the four statistics
            mean_x, mean_y, mean_xy, mean_xx = means.split(GUIDE_CHANNELS, 1)
            covariance = mean_xy - mean_x * mean_y
            variance = mean_xx - mean_x * mean_x
            features = torch.cat([covariance, variance, low_hidden.float()], 1)
            # oneDNN's 1x1 convolutions run fastest channels-last, whatever the weights' layout
            a = self.predict_a(features.contiguous(memory_format=torch.channels_last)).contiguous()
            b = mean_y - a * mean_x
            if fused:
                from vidmatte.models.adam.guided_kernel import apply_coefficients  # numba: imported on use

                return apply_coefficients(a, b, image)
            up = F.interpolate(torch.cat([a, b], 1), size, mode="bilinear", align_corners=False)
            a, b = up[:, :GUIDE_CHANNELS], up[:, GUIDE_CHANNELS:]
            # y = A x + b per channel, the grey level guiding alpha, without a full-size copy of the guide
            foreground = torch.addcmul(b[:, :3], a[:, :3], image).clamp_(0, 1)
            alpha = torch.addcmul(b[:, 3:], a[:, 3:], image.mean(1, keepdim=True)).clamp_(0, 1)
        return foreground, alpha
