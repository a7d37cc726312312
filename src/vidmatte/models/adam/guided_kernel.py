"""The deep guided filter's full-resolution step as one CPU kernel: upsample ``A`` and ``b`` and apply them.

PyTorch upsamples the eight low-resolution coefficient planes to full size, then multiplies and adds:
at 1920x1080 that writes and reads again 16.6 M floats that serve once, 62-70 ms of a frame on two
threads. This kernel interpolates a pixel's coefficients where it applies them, reads the frame as it
was decoded (``(H, W, 3)`` uint8 needs no float copy) and writes the foreground channels-last, as the
writers want it: 17-19 ms. The interpolation is PyTorch's (bilinear, ``align_corners=False``, the same
float32 source positions and weights); the results agree with it to float rounding.

Rows are split between threads that the kernel runs in without the GIL: sessions running in several
threads at once stay safe, which numba's own parallel loops (its workqueue layer) are not.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numba
import numpy as np
import torch
from torch import Tensor


def source_positions(size: int, low_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each of ``size`` output positions reads ``low_size`` inputs, as PyTorch's bilinear resize.

    Returns:
        ``(lower, upper, weight)``: int64 input indices and the float32 weight of ``upper``, each
        ``(size,)``; computed in float32 as PyTorch does (``align_corners=False``).
    """
    scale = np.float32(low_size) / np.float32(size)
    position = (np.arange(size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    position = np.maximum(position, np.float32(0))
    lower = np.minimum(position.astype(np.int64), low_size - 1)
    upper = np.minimum(lower + 1, low_size - 1)
    weight = np.clip(position - lower, 0, 1).astype(np.float32)
    return lower, upper, weight


@numba.njit(nogil=True, cache=True, fastmath=True)
def _apply_rows(a, b, pixels, scale, rows, columns, foreground, alpha, start, stop):
    """Rows ``start:stop`` of one frame: ``a, b`` ``(4, h, w)``, ``pixels`` ``(H, W, 3)`` times ``scale``
    in [0, 1], ``rows`` / ``columns`` :func:`source_positions`; writes ``foreground`` ``(H, W, 3)`` and
    ``alpha`` ``(H, W)``, clamped to [0, 1]."""
    row_lower, row_upper, row_weight = rows
    column_lower, column_upper, column_weight = columns
    channels, low_width = a.shape[0], a.shape[2]
    row_a = np.empty((channels, low_width), np.float32)
    row_b = np.empty((channels, low_width), np.float32)
    third = np.float32(1 / 3)
    zero, one = np.float32(0), np.float32(1)
    for y in range(start, stop):
        t, top, bottom = row_weight[y], row_lower[y], row_upper[y]
        for c in range(channels):  # the two low rows, interpolated once per output row
            for i in range(low_width):
                row_a[c, i] = (one - t) * a[c, top, i] + t * a[c, bottom, i]
                row_b[c, i] = (one - t) * b[c, top, i] + t * b[c, bottom, i]
        for x in range(pixels.shape[1]):
            s, left, right = column_weight[x], column_lower[x], column_upper[x]
            grey = zero
            for c in range(3):
                value = np.float32(pixels[y, x, c]) * scale
                grey += value
                slope = (one - s) * row_a[c, left] + s * row_a[c, right]
                offset = (one - s) * row_b[c, left] + s * row_b[c, right]
                foreground[y, x, c] = min(max(slope * value + offset, zero), one)
            slope = (one - s) * row_a[3, left] + s * row_a[3, right]
            offset = (one - s) * row_b[3, left] + s * row_b[3, right]
            alpha[y, x] = min(max(slope * grey * third + offset, zero), one)


@functools.cache
def _threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="vidmatte-guided-filter")


def apply_coefficients(a: Tensor, b: Tensor, image: Tensor) -> tuple[Tensor, Tensor]:
    """``y = A x + b`` at full size, ``A`` and ``b`` upsampled bilinearly, the grey level guiding alpha.

    Args:
        a, b: ``(B, 4, h, w)`` float32 coefficients on the CPU, guided by R, G, B then the grey level.
        image: ``(B, 3, H, W)`` CPU frame, uint8 in [0, 255] or float32 in [0, 1], in any layout
            (channels-last is read in place).

    Returns:
        ``(foreground (B, 3, H, W) channels-last, alpha (B, 1, H, W))`` float32, clamped to [0, 1].
        The work is split by rows over ``torch.get_num_threads()`` threads.
    """
    batch, _, height, width = image.shape
    rows = source_positions(height, a.shape[-2])
    columns = source_positions(width, a.shape[-1])
    scale = np.float32(1 / 255 if image.dtype == torch.uint8 else 1)
    pixels = (image if image.dtype == torch.uint8 else image.float()).permute(0, 2, 3, 1).numpy()
    a, b = (x.float().contiguous().numpy() for x in (a, b))
    foreground = torch.empty(batch, height, width, 3)
    alpha = torch.empty(batch, 1, height, width)
    outputs, alphas = foreground.numpy(), alpha.numpy()
    bounds = np.linspace(0, height, min(torch.get_num_threads(), height) + 1).astype(int)

    def run(job: tuple[int, int, int]) -> None:
        i, start, stop = job
        _apply_rows(a[i], b[i], pixels[i], scale, rows, columns, outputs[i], alphas[i, 0], start, stop)

    jobs = [(i, int(start), int(stop)) for i in range(batch) for start, stop in pairwise(bounds)]
    list(_threads().map(run, jobs))  # list() re-raises a job's error here
    return foreground.permute(0, 3, 1, 2), alpha
