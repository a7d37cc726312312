"""Anti-aliased rasterisation of smooth shapes and thin strands, in numpy.

Shapes are signed distance fields evaluated on a pixel window (pixel centres at integer
coordinates); coverage is the fraction of a pixel inside the shape, approximated by a one-pixel
linear ramp across the boundary. Strands are splatted point by point with bilinear weights, so a
strand thinner than a pixel leaves a partial alpha, as real hair does.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Window(NamedTuple):
    """A rectangle of pixels ``[y0, y1) x [x0, x1)`` inside a frame."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def empty(self) -> bool:
        return self.y1 <= self.y0 or self.x1 <= self.x0

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``ys (h, 1)`` and ``xs (1, w)``, float32, for broadcasting."""
        ys = np.arange(self.y0, self.y1, dtype=np.float32)[:, None]
        xs = np.arange(self.x0, self.x1, dtype=np.float32)[None, :]
        return ys, xs

    def intersect(self, other: Window) -> Window:
        """The pixels in both windows (possibly empty)."""
        return Window(
            max(self.y0, other.y0), min(self.y1, other.y1), max(self.x0, other.x0), min(self.x1, other.x1)
        )


def box_window(box: tuple[float, float, float, float], margin: float, height: int, width: int) -> Window:
    """The window holding ``box = (x0, y0, x1, y1)`` grown by ``margin`` pixels, clipped to the frame."""
    x0, y0, x1, y1 = box
    return Window(
        max(math.floor(y0 - margin), 0),
        min(math.ceil(y1 + margin) + 1, height),
        max(math.floor(x0 - margin), 0),
        min(math.ceil(x1 + margin) + 1, width),
    )


def union_box(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """The smallest box holding all ``boxes`` (each ``(x0, y0, x1, y1)``)."""
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def capsule_field(
    ys: np.ndarray, xs: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float
) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance to a tapered capsule (segment ``a -> b``, radius ``ra`` to ``rb``), in pixels.

    Args:
        ys, xs: pixel coordinates ``(h, 1)`` and ``(1, w)``.
        a, b: end points ``(2,)`` as (x, y).

    Returns:
        ``(distance, radius)``, both ``(h, w)`` float32: negative inside; the capsule's radius at
        the nearest point of its axis (used for shading).
    """
    dx, dy = float(b[0] - a[0]), float(b[1] - a[1])
    length2 = max(dx * dx + dy * dy, 1e-6)
    px, py = xs - float(a[0]), ys - float(a[1])
    t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
    radius = ra + t * (rb - ra)
    distance = np.sqrt((px - t * dx) ** 2 + (py - t * dy) ** 2) - radius
    return distance, radius


def ellipse_field(
    ys: np.ndarray, xs: np.ndarray, centre: np.ndarray, rx: float, ry: float, angle: float
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate signed distance to a rotated ellipse (first-order, exact on the boundary).

    Returns:
        ``(distance, radius)`` as :func:`capsule_field`, radius being the smaller semi-axis.
    """
    cos, sin = np.cos(angle), np.sin(angle)
    px, py = xs - float(centre[0]), ys - float(centre[1])
    qx = (px * cos + py * sin) / rx
    qy = (-px * sin + py * cos) / ry
    k = np.sqrt(qx * qx + qy * qy)
    gradient = np.sqrt((qx / rx) ** 2 + (qy / ry) ** 2)
    distance = np.where(gradient > 1e-6, (k - 1.0) * k / np.maximum(gradient, 1e-6), -min(rx, ry))
    return distance.astype(np.float32), np.full_like(distance, min(rx, ry), dtype=np.float32)


def coverage(distance: np.ndarray, softness: float = 1.0) -> np.ndarray:
    """Pixel coverage from a signed distance: a linear ramp ``softness`` pixels wide across the edge."""
    return np.clip(0.5 - distance / softness, 0.0, 1.0).astype(np.float32)


def splat_strands(
    points: np.ndarray, weights: np.ndarray, shades: np.ndarray, window: Window
) -> tuple[np.ndarray, np.ndarray]:
    """Accumulate sample points of thin strands into a pixel window with bilinear weights.

    Args:
        points: ``(N, 2)`` float (x, y) in frame coordinates.
        weights: ``(N,)`` coverage each point deposits (strand width x sample spacing, in pixels).
        shades: ``(N,)`` brightness of each point.
        window: the pixel window to fill.

    Returns:
        ``density (h, w)`` (summed coverage, unbounded) and ``shade (h, w)`` (the
        density-weighted mean brightness; zero where the density is zero), float32.
    """
    h, w = window.y1 - window.y0, window.x1 - window.x0
    x = points[:, 0] - window.x0
    y = points[:, 1] - window.y0
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    corners = ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy))
    xi = np.concatenate([x0 + ox for ox, _, _ in corners])
    yi = np.concatenate([y0 + oy for _, oy, _ in corners])
    weight = np.concatenate([share * weights for _, _, share in corners])
    keep = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    index, weight = (yi * w + xi)[keep], weight[keep]
    density = np.bincount(index, weight, minlength=h * w)
    shade = np.bincount(index, weight * np.tile(shades, 4)[keep], minlength=h * w) / np.maximum(density, 1e-8)
    return density.reshape(h, w).astype(np.float32), shade.reshape(h, w).astype(np.float32)
