"""A mask stored as its bounding box's contents, so that people cost memory and time by their own size."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BoxMask:
    """A non-empty mask cropped to its bounding box.

    Attributes:
        mask: ``(h, w)`` bool, with a pixel set on each border row and column.
        top: row of ``mask[0, 0]`` in the frame.
        left: column of ``mask[0, 0]`` in the frame.
        area: number of pixels set.
    """

    mask: np.ndarray
    top: int
    left: int
    area: int

    @staticmethod
    def of(mask: np.ndarray, top: int = 0, left: int = 0) -> BoxMask | None:
        """Crop a bool mask whose ``[0, 0]`` lies at ``(top, left)`` in the frame; ``None`` if empty.

        >>> BoxMask.of(np.array([[0, 0, 0], [0, 1, 1]], bool), 10, 20)
        BoxMask(mask=array([[ True,  True]]), top=11, left=21, area=2)
        """
        rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if not len(rows):
            return None
        crop = mask[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
        return BoxMask(crop, top + int(rows[0]), left + int(columns[0]), int(np.count_nonzero(crop)))

    def full(self, size: tuple[int, int]) -> np.ndarray:
        """The ``(H, W)`` bool mask of a frame of ``size``."""
        out = np.zeros(size, bool)
        out[self.top : self.top + self.mask.shape[0], self.left : self.left + self.mask.shape[1]] = self.mask
        return out

    @functools.cached_property
    def centroid(self) -> np.ndarray:
        """``(2,)`` float64 ``(x, y)``, the mean pixel position."""
        rows, columns = self.mask.sum(axis=1), self.mask.sum(axis=0)
        return np.array(
            [
                columns @ np.arange(len(columns)) / self.area + self.left,
                rows @ np.arange(len(rows)) / self.area + self.top,
            ]
        )

    @property
    def size(self) -> float:
        """Square root of the bounding box's area, in pixels."""
        return float(np.sqrt(self.mask.shape[0] * self.mask.shape[1]))

    def iou(self, other: BoxMask, shift: tuple[int, int] = (0, 0)) -> float:
        """Intersection over union with ``other`` once this mask is moved by ``shift`` ``(dx, dy)``.

        >>> a, b = BoxMask(np.ones((2, 2), bool), 0, 0, 4), BoxMask(np.ones((2, 2), bool), 0, 1, 4)
        >>> a.iou(b), a.iou(b, (1, 0))
        (0.3333333333333333, 1.0)
        """
        top, left = self.top + shift[1], self.left + shift[0]
        y0, y1 = max(top, other.top), min(top + self.mask.shape[0], other.top + other.mask.shape[0])
        x0, x1 = max(left, other.left), min(left + self.mask.shape[1], other.left + other.mask.shape[1])
        if y0 >= y1 or x0 >= x1:
            return 0.0
        mine = self.mask[y0 - top : y1 - top, x0 - left : x1 - left]
        theirs = other.mask[y0 - other.top : y1 - other.top, x0 - other.left : x1 - other.left]
        intersection = int(np.count_nonzero(mine & theirs))
        return intersection / (self.area + other.area - intersection)
