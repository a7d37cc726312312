"""The first frame as the page shows it: every person outlined in their track colour and numbered; the
people kept tinted, the ones dropped dimmed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from vidmatte.app.people import FirstFramePeople
from vidmatte.segmentation.preview import render_tracks, track_colours

DROPPED_DIM = 0.35  # brightness left to a dropped person
DROPPED_OUTLINE = (150, 150, 150)
OUTLINE_FRACTION = 1 / 160  # outline width as a fraction of the frame's height


def render_people(image: np.ndarray, people: FirstFramePeople, kept: Sequence[int]) -> np.ndarray:
    """The first frame with its people marked.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        people: the people on it.
        kept: the ids of the people kept.

    Returns:
        ``(H, W, 3)`` uint8 RGB: each person tinted in their colour (:func:`track_colours`) with their
        number on top and outlined; a dropped person's pixels dimmed and outlined in grey.
    """
    is_kept = [person in kept for person in people.ids]
    dimmed = image.astype(np.float32)
    for mask, keep in zip(people.masks, is_kept, strict=True):
        if not keep:
            dimmed[mask] *= DROPPED_DIM
    view = render_tracks(dimmed.round().astype(np.uint8), people.masks, people.ids, tinted=is_kept).copy()
    width = max(1, round(image.shape[0] * OUTLINE_FRACTION))
    colours = track_colours(people.ids) * 255
    for mask, keep, colour in zip(people.masks, is_kept, colours, strict=True):
        edge = mask & ~ndimage.binary_erosion(mask, iterations=width, border_value=0)
        view[edge] = colour.round().astype(np.uint8) if keep else DROPPED_OUTLINE
    return view
