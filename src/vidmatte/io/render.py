"""Instances drawn over a frame: a distinct colour per instance for any number of them, and a tint.

Used by ``vidmatte matte``'s colour-coded instance view and by the person tracks' preview, so that
instance ``i`` has the same colour in both.
"""

from __future__ import annotations

import colorsys

import numpy as np

from vidmatte.io.frames import to_u8

# Instance colours: hues a golden-ratio turn apart (every new hue falls in the largest gap left, so none
# repeats however many instances), brightness alternating so that neighbours in hue differ more.
_GOLDEN_TURN = (5**0.5 - 1) / 2
_FIRST_HUE = 0.97  # instance 0 is a red
_SATURATION = 0.8
_VALUES = (0.95, 0.7)
TINT = 0.65  # how strongly an instance's colour replaces the frame where its alpha is 1


def instance_colours(count: int) -> np.ndarray:
    """The colours of instances ``0 .. count - 1``; instance ``i``'s colour depends on ``i`` alone.

    Returns:
        ``(count, 3)`` float32 RGB in [0, 255], all different.

    >>> instance_colours(3).round().tolist()
    [[242.0, 48.0, 83.0], [36.0, 103.0, 178.0], [196.0, 242.0, 48.0]]
    """
    colours = [
        colorsys.hsv_to_rgb((_FIRST_HUE + i * _GOLDEN_TURN) % 1, _SATURATION, _VALUES[i % len(_VALUES)])
        for i in range(count)
    ]
    return np.array(colours, np.float32).reshape(count, 3) * 255


def visualise_instances(
    image: np.ndarray, alphas: np.ndarray, colours: np.ndarray | None = None
) -> np.ndarray:
    """Every instance tinted in its colour (default :func:`instance_colours`) over the frame (as the VIM50
    figures show them).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        alphas: ``(N, H, W)`` float32 in [0, 1]; instance ``i`` keeps colour ``i`` on every frame.
        colours: ``(N, 3)`` RGB in [0, 255]; default: :func:`instance_colours`.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    if colours is None:
        colours = instance_colours(len(alphas))
    colours = np.asarray(colours, np.float32) / 255
    total = alphas.sum(axis=0)
    # where instances overlap past 1, their colours mix in proportion
    weights = alphas / np.maximum(total, 1.0)
    tint = np.einsum("nhw,nc->hwc", weights, colours)
    cover = TINT * np.minimum(total, 1.0)[..., None]
    return to_u8(image.astype(np.float32) / 255 * (1 - cover) + TINT * tint)
