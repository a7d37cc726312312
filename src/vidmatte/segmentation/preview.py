"""A colour-coded preview of person tracks: each track tinted in its own colour, its number on top."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vidmatte.io.render import instance_colours, visualise_instances

LABEL_HEIGHT_FRACTION = 1 / 24  # label size as a fraction of the frame's height
MIN_LABEL_PIXELS = 12


def track_colours(ids: Sequence[int]) -> np.ndarray:
    """A stable, distinct colour per track id, for any number of tracks: track ``i`` takes instance ``i``'s
    colour of ``vidmatte matte`` (:func:`~vidmatte.io.render.instance_colours`).

    Args:
        ids: track ids (non-negative).

    Returns:
        ``(N, 3)`` float32 RGB in [0, 1].

    >>> (track_colours([0, 1, 2]) * 255).round().astype(int).tolist()
    [[242, 48, 83], [36, 103, 178], [196, 242, 48]]
    """
    ids = np.asarray(ids, np.int64)
    return instance_colours(int(ids.max(initial=-1)) + 1)[ids] / 255


def render_tracks(
    image: np.ndarray, masks: np.ndarray, ids: Sequence[int], tinted: Sequence[bool] | None = None
) -> np.ndarray:
    """One preview frame: each mask tinted in its track's colour, the track's id at the mask's top.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        masks: ``(N, H, W)`` bool, track ``ids[i]``'s mask (empty where the track is absent).
        ids: the tracks' ids.
        tinted: which masks are tinted (default all); the others get their number only.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    colours = track_colours(ids)
    weights = np.ones(len(ids), np.float32) if tinted is None else np.asarray(tinted, np.float32)
    painted = visualise_instances(image, masks.astype(np.float32) * weights[:, None, None], colours * 255)
    height, width = image.shape[:2]
    size = max(MIN_LABEL_PIXELS, round(height * LABEL_HEIGHT_FRACTION))
    canvas = Image.fromarray(painted)
    draw = ImageDraw.Draw(canvas)
    for mask, track_id, colour in zip(masks, ids, colours, strict=True):
        rows = np.flatnonzero(mask.any(axis=1))
        if not len(rows):
            continue
        top = int(rows[0])
        # centred over the mask's top part (the head), above it where there is room, else just inside
        x = float(np.nonzero(mask[top : top + size])[1].mean())
        x = min(max(x, size), width - size)
        above = top >= size + 2
        draw.text(
            (x, top - 2 if above else top + 2),
            str(track_id),
            fill=tuple(int(c * 255) for c in colour),
            font=_font(size),
            anchor="md" if above else "ma",
            stroke_width=max(1, size // 8),
            stroke_fill=(0, 0, 0),
        )
    return np.asarray(canvas)


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)
