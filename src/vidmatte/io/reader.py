"""Streaming frame reader: any video PyAV decodes, or a folder of images, one frame at a time.

Frames are decoded in a background thread a few frames ahead of the caller (so that the model never
waits) and memory stays bounded whatever the length of the video. Timestamps are kept, so that writers
can reproduce the frame rate exactly, variable frame rates included.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from vidmatte.errors import VidmatteError
from vidmatte.io.frames import list_frames, read_rgb_u8
from vidmatte.io.threads import Prefetcher

# decision: an image folder carries no rate; 30 fps is the most common one for people videos
DEFAULT_FOLDER_RATE = Fraction(30)
DEFAULT_QUEUE_SIZE = 4


@dataclass(frozen=True)
class AudioInfo:
    """The audio track of a video source (the first audio stream).

    Attributes:
        stream_index: index of the stream in the container (``container.streams[stream_index]``).
        codec: decoder name, e.g. ``"aac"``.
        sample_rate: samples per second.
        channels: number of channels.
    """

    stream_index: int
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a frame source once it is open.

    Attributes:
        path: the video file or image folder.
        width: frame width in pixels (of the decoded frames; any size, odd included).
        height: frame height in pixels.
        frame_rate: average frames per second, exact (e.g. ``Fraction(30000, 1001)``).
        time_base: seconds per unit of :attr:`Frame.pts`.
        frame_count: number of frames the container declares, ``None`` when it declares none
            (Matroska/WebM); an image folder knows its count.
        variable_frame_rate: the container's average rate differs from its nominal rate, so frame
            durations vary. Only as far as the container tells (MP4 does; Matroska/WebM, which
            declare no frame count, usually cannot); writers keep the timestamps either way.
        start_time: time of the first frame in the source, seconds (what ``pts == 0`` stands for).
        audio: the audio track, ``None`` for a silent video or an image folder.
    """

    path: Path
    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    frame_count: int | None
    variable_frame_rate: bool
    start_time: Fraction
    audio: AudioInfo | None


class Frame(NamedTuple):
    """One decoded frame.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        index: position in the source, from 0.
        pts: presentation time in units of :attr:`VideoInfo.time_base`, relative to the first frame.
    """

    image: np.ndarray
    index: int
    pts: int


class FrameReader:
    """An open frame source; iterate over it for :class:`Frame` values, close it (or use ``with``) after.

    Attributes:
        info: size, rate, count and audio of the source.
    """

    def __init__(self, info: VideoInfo, decoder: _VideoDecoder | _FolderDecoder, queue_size: int) -> None:
        self.info = info
        self._decoder = decoder
        self._frames = Prefetcher(decoder.frames(), queue_size, name=f"vidmatte decode {info.path.name}")

    @property
    def truncation(self) -> str | None:
        """Why the video ended early (e.g. ``"7 of 10 frames decodable"``), once iteration has ended;
        ``None`` if it did not. Only an ``accept_truncated`` reader ends early without raising."""
        return self._decoder.truncation

    def __iter__(self) -> Iterator[Frame]:
        return self._frames

    def close(self) -> None:
        """Stop decoding and release the file; idempotent."""
        self._frames.close()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_frames(
    path: str | os.PathLike,
    *,
    frame_rate: Fraction | int | None = None,
    accept_truncated: bool = False,
    queue_size: int = DEFAULT_QUEUE_SIZE,
) -> FrameReader:
    """Open a video file or a folder of images for streaming.

    The first frame is decoded here, so a source that cannot give one fails now, not mid-run.

    Args:
        path: a video (mp4, mov, mkv, avi, webm, ...; H.264, H.265, VP9, AV1, ProRes, MPEG-4, ...) or a
            folder of images (sorted by name, all of one size).
        frame_rate: rate of an image folder (default :data:`DEFAULT_FOLDER_RATE`); a video's own rate is
            always used.
        accept_truncated: when a video stops decoding early (cut short, corrupt tail), end the iteration
            quietly after the last decodable frame (see :attr:`FrameReader.truncation`) instead of raising.
        queue_size: frames decoded ahead of the caller.

    Returns:
        An open :class:`FrameReader`.

    Raises:
        VidmatteError: missing path, empty or unreadable file, no video stream, no frame, an image
            folder with frames of different sizes (raised while iterating, when that frame is reached),
            a truncated video (raised after its last decodable frame unless ``accept_truncated``).
    """
    path = Path(path)
    if path.is_dir():
        rate = Fraction(frame_rate) if frame_rate is not None else DEFAULT_FOLDER_RATE
        folder = _FolderDecoder(list_frames(path))
        info = VideoInfo(
            path, folder.width, folder.height, rate, 1 / rate, len(folder.paths), False, Fraction(0), None
        )
        return FrameReader(info, folder, queue_size)
    info, video = _open_video(path, accept_truncated)
    return FrameReader(info, video, queue_size)


class _FolderDecoder:
    """Frames of an image folder; the first is read on creation for its size."""

    truncation = None

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._first = read_rgb_u8(paths[0])
        self.height, self.width = self._first.shape[:2]

    def frames(self) -> Iterator[Frame]:
        for index, frame_path in enumerate(self.paths):
            image = self._first if index == 0 else read_rgb_u8(frame_path)
            if image.shape[:2] != (self.height, self.width):
                raise VidmatteError(
                    f"{frame_path}: frame of {image.shape[1]}x{image.shape[0]} in a folder of "
                    f"{self.width}x{self.height} frames"
                )
            yield Frame(image, index, index)


def _open_video(path: Path, accept_truncated: bool) -> tuple[VideoInfo, _VideoDecoder]:
    if not path.exists():
        raise VidmatteError(f"{path}: no such file or folder")
    if path.stat().st_size == 0:
        raise VidmatteError(f"{path}: empty file")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.EOFError:
        # a header and nothing after it: FFmpeg cannot even probe a stream
        raise VidmatteError(f"{path}: video without frames (the file ends after its header)") from None
    except (av.FFmpegError, OSError) as error:
        raise VidmatteError(f"{path}: not a readable video ({ffmpeg_reason(error)})") from None
    try:
        if not container.streams.video:
            raise VidmatteError(f"{path}: no video stream")
        decoder = _VideoDecoder(path, container, accept_truncated)
    except BaseException:
        container.close()
        raise
    stream = container.streams.video[0]
    nominal = stream.base_rate or stream.guessed_rate
    rate = stream.average_rate or nominal or DEFAULT_FOLDER_RATE
    audio_streams = container.streams.audio
    audio = None
    if audio_streams:
        track = audio_streams[0]
        audio = AudioInfo(track.index, track.codec_context.name, track.rate, track.channels)
    info = VideoInfo(
        path=path,
        width=decoder.first.width,
        height=decoder.first.height,
        frame_rate=Fraction(rate),
        time_base=decoder.time_base,
        frame_count=stream.frames or None,
        variable_frame_rate=bool(stream.average_rate and nominal and stream.average_rate != nominal),
        start_time=decoder.origin * decoder.time_base,
        audio=audio,
    )
    return info, decoder


class _VideoDecoder:
    """Frames of a video container; the first is decoded on creation.

    Attributes:
        first: the first decoded frame.
        time_base: of the video stream.
        origin: pts of the first frame (subtracted from every pts).
        truncation: why decoding ended early, once it has (``None`` before or if it did not).
    """

    def __init__(self, path: Path, container: av.container.InputContainer, accept_truncated: bool) -> None:
        self._path = path
        self._container = container
        self._stream = container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._accept_truncated = accept_truncated
        self.truncation: str | None = None
        self.time_base = Fraction(self._stream.time_base or Fraction(1, 90000))
        self._decoded = self._decode()
        first = next(self._decoded, None)
        if first is None:
            if self.truncation is not None:
                raise VidmatteError(f"{path}: no decodable frame ({self.truncation})")
            raise VidmatteError(f"{path}: video without frames")
        self.first = first
        # AVI stores no presentation times: FFmpeg derives them from the decoding order, and with B-frames
        # they come out shuffled (and the first late); frame i of an AVI shows i frame durations in
        self._by_index = container.format.name == "avi"
        self.origin = first.pts if first.pts is not None and not self._by_index else 0
        rate = self._stream.average_rate or self._stream.guessed_rate or DEFAULT_FOLDER_RATE
        self._step = max(1, round(1 / (Fraction(rate) * self.time_base)))

    def _decode(self) -> Iterator[av.VideoFrame]:
        count = 0
        try:
            for frame in self._container.decode(self._stream):
                count += 1
                yield frame
        except (av.FFmpegError, OSError) as error:
            self.truncation = f"decoding stopped after {count} frames ({ffmpeg_reason(error)})"
            return
        declared = self._stream.frames
        if declared and count < declared:
            self.truncation = f"{count} of {declared} frames decodable"

    def frames(self) -> Iterator[Frame]:
        try:
            previous = None
            for index, frame in enumerate(_chain_first(self.first, self._decoded)):
                # a frame without a timestamp follows its predecessor by one nominal frame duration
                pts = frame.pts - self.origin if frame.pts is not None and not self._by_index else None
                if pts is None:
                    pts = 0 if previous is None else previous + self._step
                previous = pts
                image = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range)
                yield Frame(image, index, pts)
            if self.truncation is not None and not self._accept_truncated:
                raise VidmatteError(f"{self._path}: truncated video: {self.truncation}")
        finally:
            self._decoded.close()
            self._container.close()


def _chain_first(first: av.VideoFrame, rest: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    yield first
    yield from rest


def ffmpeg_reason(error: BaseException) -> str:
    """FFmpeg's own words for an error, without the errno and file name that PyAV adds."""
    return getattr(error, "strerror", None) or str(error)
