"""Instance mask sequences: COCO run-length encoding and YouTube-VIS result JSON.

A YouTube-VIS result file is a list of tracks, each
``{"video_id": int, "category_id": int, "score": float, "segmentations": [RLE or null per frame]}``
with ``RLE = {"size": [H, W], "counts": str}`` (COCO compressed RLE, column-major).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as coco_mask

from vidmatte.errors import VidmatteError
from vidmatte.io.frames import read_grey_u8
from vidmatte.io.jsonfile import read_json, write_json

MASK_THRESHOLD = 128  # VIM50 guidance masks are binarised at >= 128
# decision: a 16K frame; a corrupt size field must not allocate gigabytes before the counts are checked
MAX_MASK_PIXELS = 16384 * 8192


def encode_rle(mask: np.ndarray) -> dict:
    """Encode a ``(H, W)`` boolean mask as COCO compressed RLE with a string ``counts``."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict, source: str = "RLE") -> np.ndarray:
    """Decode COCO RLE (compressed string or uncompressed list ``counts``) to a ``(H, W)`` bool mask.

    Raises:
        VidmatteError: malformed RLE; the message starts with ``source``.
    """
    try:
        height, width = (int(s) for s in rle["size"])
        if height < 0 or width < 0 or height * width > MAX_MASK_PIXELS:
            raise ValueError(f"size {height}x{width} out of range")
        counts = rle["counts"]
        if isinstance(counts, list):
            if min(counts, default=0) < 0:
                raise ValueError("negative run length")
            if sum(counts) != height * width:
                raise ValueError(f"run lengths sum to {sum(counts)}, not {height}x{width}")
            coded = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        else:
            coded = {"size": [height, width], "counts": counts.encode("ascii")}
        mask = coco_mask.decode(coded)
    except (KeyError, TypeError, ValueError, UnicodeError, AttributeError, OverflowError) as error:
        raise VidmatteError(f"{source}: malformed RLE ({error})") from None
    if mask.shape != (height, width):
        raise VidmatteError(f"{source}: RLE decodes to {mask.shape}, not its size {height}x{width}")
    return mask.astype(bool)


@dataclass
class Track:
    """One instance's mask sequence from a video instance segmenter.

    Attributes:
        segmentations: one COCO RLE dict per frame, or ``None`` where the instance is absent.
    """

    video_id: int
    category_id: int
    score: float
    segmentations: list[dict | None] = field(default_factory=list)

    def mask(self, frame: int, size: tuple[int, int], source: str = "track") -> np.ndarray:
        """The ``(H, W)`` bool mask at ``frame`` (empty where absent or past the track's end)."""
        rle = self.segmentations[frame] if frame < len(self.segmentations) else None
        if rle is None:
            return np.zeros(size, dtype=bool)
        mask = decode_rle(rle, f"{source} frame {frame}")
        check_mask_size(mask.shape, size, f"{source} frame {frame}")
        return mask

    def check_size(self, size: tuple[int, int], source: str = "track") -> None:
        """Refuse a segmentation whose RLE size is not ``size`` ``(H, W)``, without decoding any.

        Raises:
            VidmatteError: a size that does not fit, or a malformed one; the message starts with ``source``.
        """
        for frame, rle in enumerate(self.segmentations):
            if rle is None:
                continue
            try:
                shape = tuple(int(s) for s in rle["size"])
            except (KeyError, TypeError, ValueError, OverflowError) as error:
                raise VidmatteError(f"{source} frame {frame}: malformed RLE ({error})") from None
            check_mask_size(shape, size, f"{source} frame {frame}")


def check_mask_size(shape: tuple[int, ...], size: tuple[int, int], source: str) -> None:
    """Refuse a mask of ``shape`` ``(H, W)`` for frames of ``size`` ``(H, W)``; the message starts with
    ``source`` (the mask's file, or its track and frame)."""
    if len(shape) != 2:
        raise VidmatteError(f"{source}: malformed mask size {list(shape)}")
    if tuple(shape) != tuple(size):
        raise VidmatteError(
            f"{source}: mask size {shape[1]}x{shape[0]} does not fit frames of {size[1]}x{size[0]}"
        )


def read_ytvis_json(path: str | os.PathLike) -> list[Track]:
    """Read a YouTube-VIS result file.

    Raises:
        VidmatteError: unreadable or malformed file, naming it.
    """
    path = Path(path)
    items = read_json(path)
    if not isinstance(items, list):
        raise VidmatteError(f"{path}: expected a list of tracks, found {type(items).__name__}")
    tracks = []
    for index, item in enumerate(items):
        try:
            segmentations = item["segmentations"]
            if not isinstance(segmentations, list) or not all(
                s is None or isinstance(s, dict) for s in segmentations
            ):
                raise TypeError("segmentations must be a list of RLE objects or null")
            tracks.append(
                Track(
                    video_id=int(item.get("video_id", 0)),
                    category_id=int(item.get("category_id", 1)),
                    score=float(item.get("score", 1.0)),
                    segmentations=segmentations,
                )
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
            raise VidmatteError(f"{path}: track {index} is malformed ({error})") from None
    return tracks


def write_ytvis_json(path: str | os.PathLike, tracks: list[Track]) -> None:
    """Write tracks as a YouTube-VIS result file (atomically, creating parent folders)."""
    payload = [
        {
            "video_id": t.video_id,
            "category_id": t.category_id,
            "score": t.score,
            "segmentations": t.segmentations,
        }
        for t in tracks
    ]
    write_json(path, payload)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a guidance mask PNG, binarised at >= 128 as VIM50 does. Returns ``(H, W)`` bool."""
    return read_grey_u8(path) >= MASK_THRESHOLD
