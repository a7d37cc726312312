"""MSG-VIM's guidance: one mask sequence per instance of a clip, read from PNG folders or YouTube-VIS tracks.

A clip's guidance is a folder ``<instance>/<frame>.png`` (VIM50's ``tg_masks/<clip>``, binarised at
>= 128), whose masks are named like the clip's frames, or for a video by frame index (``0.png`` or
``000000.png``, from 0); or a YouTube-VIS result file, whose tracks of the clip's video are its
instances. :class:`GuidanceSource` is the one place that tells them apart, for ``vidmatte matte``
(one video) and ``vidmatte matte-vim`` (the clips of a data set) alike. An instance's reference mask
is the union of the other instances' masks (:func:`union_of_others`) unless reference masks are given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from vidmatte.errors import VidmatteError
from vidmatte.io.frames import IMAGE_EXTENSIONS, list_frames
from vidmatte.io.masks import Track, check_mask_size, read_mask, read_ytvis_json


class InstanceGuidance(Protocol):
    """Per-instance guidance masks of one clip."""

    names: list[str]

    def masks(self, frame: int, size: tuple[int, int]) -> np.ndarray:
        """``(N, H, W)`` bool masks of every instance at frame index ``frame``."""
        ...

    def check_size(self, size: tuple[int, int]) -> None:
        """Refuse masks that do not fit frames of ``size`` ``(H, W)``, before any frame is matted."""
        ...


class PngGuidance:
    """Guidance from ``<root>/<instance>/<frame>.png`` (VIM50's ``tg_masks/<clip>`` or ``re_masks/<clip>``).

    Frames are paired with the video's by file name without extension; a frame missing for an instance
    is an empty mask (the VIM50 protocol), a mask file with no video frame of its name is refused.

    Args:
        root: the clip's guidance folder, one sub-folder per instance.
        stems: the video's frame names without extension, in order.
        names: instance folders to read, in this order (default: all, sorted; there may be none:
            a clip where the segmenter found nobody).
    """

    def __init__(
        self, root: str | os.PathLike, stems: Sequence[str], names: Sequence[str] | None = None
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise VidmatteError(f"{root}: no such guidance folder")
        self.names = (
            list(names) if names is not None else sorted(p.name for p in root.iterdir() if p.is_dir())
        )
        self._stems = list(stems)
        known = set(stems)
        self._files: list[dict[str, Path]] = []
        for name in self.names:
            folder = root / name
            files = {p.stem: p for p in list_frames(folder)} if folder.is_dir() else {}
            stray = sorted(set(files) - known)
            if stray:
                raise VidmatteError(
                    f"{files[stray[0]]}: no video frame named {stray[0]} ({len(stray)} such guidance frames; "
                    f"the video has {len(stems)} frames)"
                )
            self._files.append(files)

    def masks(self, frame: int, size: tuple[int, int]) -> np.ndarray:
        """``(N, H, W)`` bool; empty where an instance has no mask file for this frame (or past the
        last frame name)."""
        masks = np.zeros((len(self.names), *size), dtype=bool)
        stem = self._stems[frame] if frame < len(self._stems) else None
        for index, files in enumerate(self._files):
            if stem in files:
                masks[index] = self._read(files[stem], size)
        return masks

    def check_size(self, size: tuple[int, int]) -> None:
        """Read each instance's first mask file; every later one is checked when it is read."""
        for files in self._files:
            if files:
                self._read(next(iter(files.values())), size)

    @staticmethod
    def _read(path: Path, size: tuple[int, int]) -> np.ndarray:
        mask = read_mask(path)
        check_mask_size(mask.shape, size, str(path))
        return mask


class TrackGuidance:
    """Guidance from YouTube-VIS tracks; each instance is named by its position among them (``"003"``).

    Args:
        tracks: the tracks of one video.
        frame_count: the video's number of frames; a longer track is refused, a shorter one is empty
            past its end.
        source: a name for messages (the JSON file).
    """

    def __init__(self, tracks: Sequence[Track], frame_count: int, source: str = "tracks") -> None:
        for index, track in enumerate(tracks):
            if len(track.segmentations) > frame_count:
                raise VidmatteError(
                    f"{source}: track {index} has {len(track.segmentations)} frames, the video {frame_count}"
                )
        self.names = [f"{index:03d}" for index in range(len(tracks))]
        self._tracks = list(tracks)
        self._source = source

    def masks(self, frame: int, size: tuple[int, int]) -> np.ndarray:
        """``(N, H, W)`` bool; empty where a track has no segmentation."""
        masks = np.zeros((len(self._tracks), *size), dtype=bool)
        for index, track in enumerate(self._tracks):
            masks[index] = track.mask(frame, size, f"{self._source} track {index}")
        return masks

    def check_size(self, size: tuple[int, int]) -> None:
        """Compare every segmentation's RLE size with ``size`` (nothing is decoded)."""
        for index, track in enumerate(self._tracks):
            track.check_size(size, f"{self._source} track {index}")


class GuidanceSource:
    """Where the guidance of one clip, or of every clip of a data set, comes from.

    Args:
        path: a YouTube-VIS result file (any ``.json`` path; read once, its videos pair with ``clips``
            as :func:`ytvis_video_ids` says), or a clip's folder of PNG masks ``<instance>/<frame>.png``.
        clips: every clip name the file guides (default: the one clip asked for).
        video_id: the file's video that guides the (single) clip.

    Raises:
        VidmatteError: an unreadable file, or videos that do not pair with the clips.
    """

    def __init__(
        self, path: str | os.PathLike, clips: Sequence[str] | None = None, video_id: int | None = None
    ) -> None:
        self.path = Path(path)
        self._video_id = video_id
        is_file = self.path.is_file() or self.path.suffix.lower() == ".json"
        self._tracks = read_ytvis_json(self.path) if is_file else None
        self._video_ids = self._pair(clips) if clips is not None else None

    def clip(self, name: str, stems: Sequence[str] | None, frame_count: int) -> PngGuidance | TrackGuidance:
        """The guidance of clip ``name``.

        Args:
            name: the clip (a folder's name, or a video's file name).
            stems: its frame names without extension, which PNG masks are named after; ``None`` for a
                video, whose masks are named by frame index (:func:`index_stems`).
            frame_count: its number of frames (a longer track is refused).

        Raises:
            VidmatteError: no such file or folder, or masks that do not belong to the clip's frames.
        """
        if self._tracks is not None:
            video = (self._video_ids if self._video_ids is not None else self._pair([name])).get(name)
            videos = {t.video_id for t in self._tracks}
            source = f"{self.path} video {video}" if len(videos) > 1 else str(self.path)
            tracks = [t for t in self._tracks if t.video_id == video]
            return TrackGuidance(tracks, frame_count, source)
        if not self.path.is_dir():
            raise VidmatteError(f"{self.path}: no such masks file or folder")
        return PngGuidance(self.path, stems if stems is not None else index_stems(self.path, frame_count))

    def _pair(self, clips: Sequence[str]) -> dict[str, int]:
        """The file's video of each clip; none where the file holds no track (nobody was found)."""
        if not self._tracks:
            return {}
        return ytvis_video_ids(self.path, self._tracks, clips, self._video_id)


def index_stems(masks: str | os.PathLike, frame_count: int) -> list[str]:
    """The names that the mask files of a video take, by frame index (``0.png`` or ``000000.png``).

    Args:
        masks: the folder ``<instance>/<frame>.png``.
        frame_count: the video's number of frames.

    Returns:
        One name per frame: the one its mask files use, else its index.

    Raises:
        VidmatteError: a mask file not named by a frame index, or past the last frame.
    """
    by_index: dict[int, str] = {}
    for path in sorted(Path(masks).glob("*/*")):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if not path.stem.isdigit():
            raise VidmatteError(
                f"{path}: masks of a video are named by frame index (0.png or 000000.png, from 0)"
            )
        if int(path.stem) >= frame_count:
            raise VidmatteError(f"{path}: mask of frame {int(path.stem)}, the video has {frame_count} frames")
        by_index.setdefault(int(path.stem), path.stem)
    return [by_index.get(i, str(i)) for i in range(frame_count)]


def ytvis_video_ids(
    path: str | os.PathLike, tracks: Sequence[Track], clips: Sequence[str], video_id: int | None = None
) -> dict[str, int]:
    """Which video of a YouTube-VIS result file guides which clip.

    One clip takes ``video_id`` (or the file's only video). Several clips are paired with the file's
    video ids in ascending order (YouTube-VIS numbers the videos of its annotation file from 1, in
    order), which needs as many videos as clips.

    Args:
        path: the file, for messages.
        tracks: its tracks.
        clips: every clip name of the data set, sorted.
        video_id: the video for a single clip.

    Raises:
        VidmatteError: the pairing is ambiguous.
    """
    videos = sorted({t.video_id for t in tracks})
    if video_id is not None:
        if len(clips) != 1:
            raise VidmatteError(f"{path}: a video id selects the tracks of one clip, not {len(clips)}")
        return {clips[0]: video_id}
    if len(videos) == len(clips) or (len(clips) == 1 and len(videos) == 1):
        return dict(zip(clips, videos, strict=True))
    if len(clips) == 1:
        raise VidmatteError(
            f"{path}: tracks of {len(videos)} videos (video_id {', '.join(map(str, videos))}) for one video; "
            "keep only its tracks in the file (matte-vim can pick them with --video-id)"
        )
    raise VidmatteError(
        f"{path}: tracks of {len(videos)} videos for {len(clips)} clips; give a folder of <clip>.json, or "
        "one clip and its video with --clips CLIP --video-id N"
    )


def union_of_others(masks: np.ndarray) -> np.ndarray:
    """Reference masks: for each instance the union of all the other instances' masks.

    Args:
        masks: ``(N, ...)`` bool.

    Returns:
        ``(N, ...)`` bool.

    >>> union_of_others(np.array([[1, 0, 0], [0, 1, 0], [0, 1, 1]], bool)).astype(int).tolist()
    [[0, 1, 1], [1, 1, 1], [1, 1, 0]]
    """
    counts = masks.sum(axis=0, dtype=np.int32)
    return (counts - masks) > 0
