"""Progressive refinement (MGMatting): coarse alpha everywhere, finer outputs in its uncertain band."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

UNCERTAIN_LOW = 1 / 255  # alpha in [low, high] is uncertain: neither background nor foreground
UNCERTAIN_HIGH = 1 - 1 / 255
REFINE_WIDTHS = (15, 7)  # ellipse sizes at inference: the reference's widths 30 and 15, halved


def ellipse_kernel(size: int) -> Tensor:
    """``(size, size)`` float32 0/1 ellipse, the same as OpenCV's ``getStructuringElement(MORPH_ELLIPSE)``.

    >>> ellipse_kernel(3).int().tolist()
    [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    """
    radius = centre = size // 2
    kernel = torch.zeros(size, size)
    for row in range(size):
        dy = row - radius
        # OpenCV rounds half to even (cvRound), as Python's round does.
        dx = round(centre * math.sqrt((radius * radius - dy * dy) / (radius * radius))) if radius else 0
        kernel[row, max(centre - dx, 0) : min(centre + dx + 1, size)] = 1
    return kernel


def _windowed_any(window: int, powers: dict[int, Tensor]) -> Tensor:
    """``out[..., j] = any(x[..., j : j + window])`` along the last axis, with ``x = powers[1]``.

    ``powers[p]`` is the any-over-``p`` of ``x``; missing powers of two are added to the cache.
    """
    p = 1
    while 2 * p <= window:
        if 2 * p not in powers:
            powers[2 * p] = powers[p][..., :-p] | powers[p][..., p:]
        p *= 2
    covered = powers[p]
    return covered[..., : covered.shape[-1] - (window - p)] | covered[..., window - p :]


def dilate(mask: Tensor, kernel: Tensor) -> Tensor:
    """Binary dilation of ``(N, C, H, W)`` bool ``mask`` by a ``(k, k)`` 0/1 kernel, centred at ``k // 2``.

    Equals OpenCV's ``cv2.dilate`` (pixels outside the image do not contribute) for kernels whose rows
    are single runs, such as ellipses: each kernel row is a horizontal any-filter, shifted vertically;
    the filters share power-of-two windows, so the cost grows with ``k log k`` rather than ``k^2``.
    """
    size = kernel.shape[-1]
    centre = size // 2
    height, width = mask.shape[-2:]
    powers = {1: F.pad(mask, (centre, centre, centre, centre))}
    out = torch.zeros_like(mask)
    for row in range(size):
        columns = kernel[row].nonzero().flatten().tolist()
        if columns:
            start, window = columns[0], columns[-1] - columns[0] + 1
            out |= _windowed_any(window, powers)[..., row : row + height, start : start + width]
    return out


def uncertain_band(alpha: Tensor, kernel: Tensor) -> Tensor:
    """Where ``alpha`` is strictly between 0 and 1 (``1/255 <= alpha <= 1 - 1/255``), dilated; bool."""
    return dilate((alpha >= UNCERTAIN_LOW) & (alpha <= UNCERTAIN_HIGH), kernel)


class ProgressiveRefinement(nn.Module):
    """Fuse the 1/8, 1/4 and full-resolution outputs into one alpha.

    Start from the 1/8 output; where it is uncertain (dilated by an ellipse of ``widths[0]``) take
    the 1/4 output; where that result is uncertain (dilated by ``widths[1]``) take the full one.
    Has no parameters; the selection passes gradients to the chosen outputs only.

    Args:
        widths: diameters of the two dilation ellipses, in pixels at full resolution.
    """

    def __init__(self, widths: tuple[int, int] = REFINE_WIDTHS) -> None:
        super().__init__()
        self.register_buffer("kernel_os4", ellipse_kernel(widths[0]), persistent=False)
        self.register_buffer("kernel_os1", ellipse_kernel(widths[1]), persistent=False)

    def forward(self, alpha_os8: Tensor, alpha_os4: Tensor, alpha_os1: Tensor) -> Tensor:
        """Three ``(N, C, H, W)`` alphas in [0, 1] -> the refined ``(N, C, H, W)`` alpha in [0, 1]."""
        alpha = torch.where(uncertain_band(alpha_os8.detach(), self.kernel_os4), alpha_os4, alpha_os8)
        return torch.where(uncertain_band(alpha.detach(), self.kernel_os1), alpha_os1, alpha)
