"""What composites are laid over: a colour, an image, or another video (looped), fitted to the frames.

An image or video of another size is scaled to cover the frame and cropped at the centre, so it is
never distorted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from vidmatte.errors import VidmatteError
from vidmatte.io.frames import IMAGE_EXTENSIONS, read_rgb_u8
from vidmatte.io.reader import open_frames

GREEN = (0, 177, 64)  # chroma-key green, far from skin and hair colours
NAMED_COLOURS = {"green": GREEN, "black": (0, 0, 0), "white": (255, 255, 255)}


class Background(Protocol):
    """Background frames for one video, asked for in frame order."""

    def next_frame(self) -> np.ndarray:
        """The next background, ``(H, W, 3)`` float32 RGB in [0, 1]."""
        ...

    def close(self) -> None:
        """Release files; idempotent."""
        ...


def parse_colour(text: str) -> tuple[int, int, int] | None:
    """``"green"`` or ``"#RRGGBB"`` -> ``(r, g, b)`` in 0..255; ``None`` if ``text`` is not a colour.

    >>> parse_colour("#ff8000"), parse_colour("green"), parse_colour("beach.jpg")
    ((255, 128, 0), (0, 177, 64), None)
    """
    if text.lower() in NAMED_COLOURS:
        return NAMED_COLOURS[text.lower()]
    if len(text) == 7 and text.startswith("#"):
        try:
            value = int(text[1:], 16)
        except ValueError:
            return None
        return (value >> 16) & 255, (value >> 8) & 255, value & 255
    return None


def fit_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``(h, w, 3)`` uint8 to cover ``width x height`` (bilinear) and crop the centre.

    Returns:
        ``(height, width, 3)`` uint8.
    """
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    scale = max(width / w, height / h)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    scaled = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    top, left = (size[1] - height) // 2, (size[0] - width) // 2
    return scaled[top : top + height, left : left + width]


class ConstantBackground:
    """The same background on every frame (a colour or a still image)."""

    def __init__(self, image: np.ndarray) -> None:
        """``image``: ``(H, W, 3)`` uint8, already of the frames' size."""
        self._image = image.astype(np.float32) / 255

    def next_frame(self) -> np.ndarray:
        return self._image

    def close(self) -> None:
        """Nothing to release."""


class VideoBackground:
    """The frames of a video (or image folder), started again from the first when it ends."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        self._path = path
        self._size = (width, height)
        self._reader = open_frames(path)
        self._frames: Iterator = iter(self._reader)

    def next_frame(self) -> np.ndarray:
        frame = next(self._frames, None)
        if frame is None:
            self._reader.close()
            self._reader = open_frames(self._path)
            self._frames = iter(self._reader)
            frame = next(self._frames)
        return fit_to(frame.image, *self._size).astype(np.float32) / 255

    def close(self) -> None:
        self._reader.close()


def open_background(spec: str | os.PathLike, width: int, height: int) -> Background:
    """The background ``spec`` names, for frames of ``width x height``.

    Args:
        spec: ``"green"`` (also ``"black"``, ``"white"``), ``"#RRGGBB"``, an image file, or a video
            file or folder of images (looped).

    Raises:
        VidmatteError: ``spec`` is neither a colour nor a readable image or video.
    """
    colour = parse_colour(str(spec))
    if colour is not None:
        return ConstantBackground(np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)))
    path = Path(spec)
    if not path.exists():
        raise VidmatteError(f"{path}: no such background (expected green, #RRGGBB, an image or a video)")
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        return ConstantBackground(fit_to(read_rgb_u8(path), width, height))
    return VideoBackground(path, width, height)
