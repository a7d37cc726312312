"""Frame sources for the real data sets: a folder of images or a video file, read by frame index.

VideoMatte240K ships foregrounds and alphas both as videos and as JPEG folders, and backgrounds
come as images, image folders or videos; a :class:`FrameSource` hides the difference.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidmatte.errors import VidmatteError
from vidmatte.io.frames import IMAGE_EXTENSIONS, list_frames, read_rgb_u8
from vidmatte.io.reader import VIDEO_EXTENSIONS, open_frames


@dataclass(frozen=True)
class FrameSource:
    """A sequence of frames on disk.

    Attributes:
        path: the folder of images, the video file, or a single image (a one-frame source).
        frames: the image files of a folder (``None`` for a video).
        length: number of frames.
    """

    path: Path
    frames: tuple[Path, ...] | None
    length: int

    def read(self, start: int, count: int) -> np.ndarray:
        """Frames ``start .. start + count - 1`` as ``(count, H, W, 3)`` uint8 RGB.

        Raises:
            VidmatteError: the range passes the end of the source, or frames differ in size.
        """
        if start < 0 or start + count > self.length:
            raise VidmatteError(f"{self.path}: frames {start}..{start + count - 1} asked of {self.length}")
        if self.frames is not None:
            images = [read_rgb_u8(p) for p in self.frames[start : start + count]]
        else:
            images = _decode(self.path, start, count)
        for path_index, image in enumerate(images):
            if image.shape != images[0].shape:
                where = self.frames[start + path_index] if self.frames is not None else self.path
                raise VidmatteError(
                    f"{where}: frame of {image.shape[1]}x{image.shape[0]} in a source of "
                    f"{images[0].shape[1]}x{images[0].shape[0]} frames"
                )
        return np.stack(images)


def open_source(path: str | os.PathLike) -> FrameSource:
    """Open an image folder, a video file or a single image.

    Raises:
        VidmatteError: missing path, unsupported file type, empty or unreadable video.
    """
    path = Path(path)
    if path.is_dir():
        frames = tuple(list_frames(path))
        return FrameSource(path, frames, len(frames))
    if not path.is_file():
        raise VidmatteError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return FrameSource(path, (path,), 1)
    if suffix in VIDEO_EXTENSIONS:
        return FrameSource(path, None, _count_frames(path))
    raise VidmatteError(f"{path}: not an image folder, an image or a video ({', '.join(VIDEO_EXTENSIONS)})")


def _count_frames(path: Path) -> int:
    with open_frames(path) as reader:
        # the container's declared count, else (Matroska, WebM) count by decoding
        count = reader.info.frame_count if reader.info.frame_count is not None else sum(1 for _ in reader)
    if count == 0:
        raise VidmatteError(f"{path}: video without frames")
    return count


def _decode(path: Path, start: int, count: int) -> list[np.ndarray]:
    images = []
    # decoding from the start is slower than seeking but exact for every codec
    with open_frames(path) as reader:
        for frame in reader:
            if frame.index >= start + count:
                break
            if frame.index >= start:
                images.append(frame.image)
    if len(images) < count:
        raise VidmatteError(
            f"{path}: frames {start}..{start + count - 1} asked, the video ends at {start + len(images) - 1}"
        )
    return images
