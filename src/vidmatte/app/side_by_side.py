"""The side-by-side preview of a running job: input | alpha | composite, small.

Every matted frame goes into ``preview.mp4`` (H.264, which browsers play; complete only when the job
is) and into ``live/<frame>.jpg``, which the page plays while the job runs; only the latest
:data:`LIVE_KEEP` of those are kept (MSG-VIM gives its frames a chunk at a time, and the page plays a
chunk's frames at the video's rate).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

import numpy as np
from PIL import Image

from vidmatte.inference.backgrounds import open_background
from vidmatte.inference.outputs import MattedFrame
from vidmatte.io.atomic import FinishOrAbort
from vidmatte.io.composite import composite
from vidmatte.io.frames import to_u8
from vidmatte.io.reader import VideoInfo
from vidmatte.io.writers import FrameWriter

PANEL_HEIGHT = 240  # preview panels are at most this tall (never enlarged)
LIVE_FOLDER = "live"
LIVE_KEEP = 48  # live frames kept on disk: more than an MSG-VIM chunk, a few seconds of video
VIDEO_FILE = "preview.mp4"
JPEG_QUALITY = 85


def panel_size(width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` of one panel for frames of ``width x height``: at most :data:`PANEL_HEIGHT`
    tall, both even (H.264's 4:2:0 needs them).

    >>> panel_size(1920, 1080), panel_size(256, 144), panel_size(161, 99)
    ((426, 240), (256, 144), (160, 98))
    """
    scale = min(1.0, PANEL_HEIGHT / height)
    return max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2)


def live_path(folder: Path, index: int) -> Path:
    """Where live frame ``index`` of the preview in ``folder`` is."""
    return folder / LIVE_FOLDER / f"{index}.jpg"


class SideBySide(FinishOrAbort):
    """Writes a job's preview; :meth:`add` each matted frame, then :meth:`finish` (or use ``with``).

    Args:
        folder: where ``preview.mp4`` and ``live/`` go.
        info: the input video's size, rate and time base.
        background: the composite's background (as :func:`~vidmatte.inference.backgrounds.open_background`).

    Attributes:
        live_frames: the first and last frame in ``live/``, ``None`` before the first.
    """

    def __init__(self, folder: Path, info: VideoInfo, background: str | os.PathLike) -> None:
        self.folder = folder
        self.size = panel_size(info.width, info.height)
        width, height = self.size
        self.live_frames: tuple[int, int] | None = None
        (folder / LIVE_FOLDER).mkdir(parents=True, exist_ok=True)
        self._background = open_background(background, width, height)
        preview = dataclasses.replace(info, width=3 * width, height=height, audio=None)
        try:
            self._writer = FrameWriter(folder / VIDEO_FILE, "rgb", preview, copy_audio=False)
        except BaseException:
            self._background.close()
            raise

    def add(self, matted: MattedFrame) -> None:
        """Add one frame to the preview."""
        image = self._resize(matted.frame.image)
        alpha = self._resize(to_u8(matted.alphas.max(axis=0))).astype(np.float32) / 255
        # MSG-VIM predicts no colour: its composites show the input's, as its outputs do
        colour = image if matted.foreground is None else self._resize(to_u8(matted.foreground))
        over = composite(colour.astype(np.float32) / 255, alpha, self._background.next_frame())
        row = np.concatenate([image, np.repeat(to_u8(alpha)[..., None], 3, axis=2), to_u8(over)], axis=1)
        self._writer.write(row, matted.frame.pts)
        index = matted.frame.index
        partial = self.folder / LIVE_FOLDER / f".{index}.jpg.partial"
        Image.fromarray(row).save(partial, format="JPEG", quality=JPEG_QUALITY)
        os.replace(partial, live_path(self.folder, index))
        first = index if self.live_frames is None else self.live_frames[0]
        while first <= index - LIVE_KEEP:
            live_path(self.folder, first).unlink(missing_ok=True)
            first += 1
        self.live_frames = (first, index)

    def _resize(self, image: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(image).resize(self.size, Image.BILINEAR))

    def finish(self) -> None:
        """Complete ``preview.mp4``."""
        try:
            self._writer.finish()
        finally:
            self._background.close()

    def abort(self) -> None:
        """Remove the unfinished ``preview.mp4``; never raises."""
        self._writer.abort()
        with contextlib.suppress(Exception):
            self._background.close()
