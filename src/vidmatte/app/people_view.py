"""The first frame as the page shows it: every person outlined in their track colour and numbered; the
people kept tinted, the ones dropped dimmed; a painted correction of AdaM's first-frame mask washed white
where it adds and dark where it erases."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from vidmatte.app.correction import ADDED, ERASED
from vidmatte.app.people import FirstFramePeople
from vidmatte.segmentation.preview import render_tracks, track_colours

DROPPED_DIM = 0.35  # brightness left to a dropped person
DROPPED_OUTLINE = (150, 150, 150)
OUTLINE_FRACTION = 1 / 160  # outline width as a fraction of the frame's height
ADDED_WASH = 0.55  # how far painted additions go towards white
ERASED_DIM = 0.2  # brightness left where the painting erases


def render_people(
    image: np.ndarray, people: FirstFramePeople, kept: Sequence[int], correction: np.ndarray | None = None
) -> np.ndarray:
    """The first frame with its people marked.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        people: the people on it.
        kept: the ids of the people kept.
        correction: a painted correction (:mod:`.correction`), ``(H, W)`` uint8, or ``None``.

    Returns:
        ``(H, W, 3)`` uint8 RGB: each person tinted in their colour (:func:`track_colours`) with their
        number on top and outlined; a dropped person's pixels dimmed and outlined in grey; painted
        additions washed white, erased parts darkened.
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
    if correction is not None:
        added, erased = correction == ADDED, correction == ERASED
        view[added] = (view[added] * (1 - ADDED_WASH) + 255 * ADDED_WASH).round().astype(np.uint8)
        view[erased] = (view[erased] * ERASED_DIM).round().astype(np.uint8)
    return view
