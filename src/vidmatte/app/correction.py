"""A drawn correction of AdaM's first-frame mask: strokes painted on the first frame that add to the kept
people's union (a missed arm, a bag) or erase from it.

It is kept as one ``(H, W)`` uint8 image of the first frame's size, :data:`UNCHANGED`, :data:`ADDED`
or :data:`ERASED` per pixel; a later stroke wins over an earlier one where they cross.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CORRECTION_FILE = "correction.png"
UNCHANGED, ADDED, ERASED = 0, 1, 2
MODES = {"add": ADDED, "erase": ERASED}
MAX_RADIUS = 256  # pixels of the frame


def paint_stroke(
    correction: np.ndarray, points: Sequence[tuple[float, float]], radius: float, mode: str
) -> np.ndarray:
    """``correction`` with one brush stroke painted on it.

    Args:
        correction: ``(H, W)`` uint8 of :data:`UNCHANGED`, :data:`ADDED`, :data:`ERASED`.
        points: the stroke's path, ``(x, y)`` in pixels of the frame (pixel ``(i, j)``'s centre).
        radius: the brush's radius in pixels, in [0.5, :data:`MAX_RADIUS`].
        mode: ``"add"`` or ``"erase"``.

    Returns:
        A new ``(H, W)`` uint8 correction.

    >>> paint_stroke(np.zeros((5, 9), np.uint8), [(2, 2), (6, 2)], 1.5, "add")
    array([[0, 0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 1, 1, 1, 1, 0, 0],
           [0, 1, 1, 1, 1, 1, 1, 1, 0],
           [0, 0, 1, 1, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=uint8)
    """
    canvas = Image.fromarray(correction)
    draw = ImageDraw.Draw(canvas)
    value = MODES[mode]
    path = [(float(x), float(y)) for x, y in points]
    if len(path) > 1:
        draw.line(path, fill=value, width=max(1, round(2 * radius)))
    reach = radius - 0.5  # the ellipse's box is inclusive of its edge pixels
    for x, y in path:  # round ends and joints
        draw.ellipse((x - reach, y - reach, x + reach, y + reach), fill=value)
    return np.asarray(canvas).copy()


def corrected_mask(mask: np.ndarray, correction: np.ndarray | None) -> np.ndarray:
    """``(H, W)`` bool: ``mask`` with the painted additions and without the erased parts.

    >>> corrected_mask(np.array([True, True, False]), np.array([ERASED, UNCHANGED, ADDED], np.uint8)).tolist()
    [False, True, True]
    """
    if correction is None:
        return mask
    return (mask | (correction == ADDED)) & (correction != ERASED)


def load_correction(folder: Path) -> np.ndarray | None:
    """The session's correction, ``None`` if none was painted."""
    path = folder / CORRECTION_FILE
    return np.asarray(Image.open(path)) if path.is_file() else None


def save_correction(folder: Path, correction: np.ndarray) -> None:
    """Write the correction into ``folder`` (as a PNG of 0, 1 and 2)."""
    partial = folder / f".{CORRECTION_FILE}.partial"
    Image.fromarray(correction).save(partial, format="PNG")
    partial.replace(folder / CORRECTION_FILE)
