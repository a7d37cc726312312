"""How a video asks to be shown: the right-angle rotation (and mirroring) of its display matrix.

Phone videos are stored as the sensor recorded them (often sideways) with a display matrix, in the
MP4/MOV track header or the Matroska track, or as a frame's side data, which tells players how to
turn them. FFmpeg's display matrix maps a stored pixel ``(x, y)`` to the displayed ``(x', y')`` by

    x' = a x + c y + u,    y' = b x + d y + v

(``libavutil/display.h``; 16.16 fixed point). For right angles ``a, b, c, d`` are 0 or +-1: the
frame is transposed when ``a = d = 0``, and mirrored along each axis whose coefficient is negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

_ONE = 1 << 16  # 1.0 in the matrix's 16.16 fixed point
_TOLERANCE = _ONE // 100


@dataclass(frozen=True)
class Orientation:
    """A right-angle rotation with optional mirroring: transpose first, then flip.

    Attributes:
        transpose: swap rows and columns (a rotation by 90 or 270 degrees, with a flip).
        flip_rows: reverse the order of the rows (upside down) after transposing.
        flip_columns: reverse the order of the columns (left-right) after transposing.
    """

    transpose: bool = False
    flip_rows: bool = False
    flip_columns: bool = False

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Stored ``(H, W, ...)`` -> displayed, contiguous (``(W, H, ...)`` when transposed)."""
        if self.transpose:
            image = image.swapaxes(0, 1)
        if self.flip_rows:
            image = image[::-1]
        if self.flip_columns:
            image = image[:, ::-1]
        return np.ascontiguousarray(image)

    def displayed_size(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` of the displayed frames of stored frames of ``width x height``."""
        return (height, width) if self.transpose else (width, height)


UPRIGHT = Orientation()


def display_orientation(frame: av.VideoFrame) -> Orientation | None:
    """The orientation a decoded frame's display matrix asks for.

    Returns:
        :data:`UPRIGHT` without a matrix; ``None`` for a matrix that is no right-angle rotation (a
        rotation by 30 degrees, a scaling), which this module does not apply.
    """
    side_data = frame.side_data.get("DISPLAYMATRIX")
    if side_data is None:
        return UPRIGHT
    matrix = np.frombuffer(bytes(side_data), dtype=np.int32)
    a, b, c, d = (int(matrix[i]) for i in (0, 1, 3, 4))

    def unit(value: int) -> int | None:
        """-1, 0 or 1 for a coefficient within the tolerance of one; None otherwise."""
        for target in (-1, 0, 1):
            if abs(value - target * _ONE) <= _TOLERANCE:
                return target
        return None

    a, b, c, d = (unit(v) for v in (a, b, c, d))
    if None in (a, b, c, d):
        return None
    if b == 0 and c == 0 and a and d:
        return Orientation(False, flip_rows=d < 0, flip_columns=a < 0)
    if a == 0 and d == 0 and b and c:
        # transposed, rows are indexed by the stored x (y' = b x) and columns by the stored y (x' = c y)
        return Orientation(True, flip_rows=b < 0, flip_columns=c < 0)
    return None
