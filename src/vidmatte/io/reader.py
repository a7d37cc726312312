"""Streaming frame reader: any video PyAV decodes, or a folder of images, one frame at a time.

Frames are decoded in a background thread a few frames ahead of the caller (so that the model never
waits) and memory stays bounded whatever the length of the video. Timestamps are kept, so that writers
can reproduce the frame rate exactly, variable frame rates included. Frames come upright, as a player
shows them: a video's display matrix (phone videos: a rotation by 90, 180 or 270 degrees) is applied
(:mod:`.orientation`), and its sizes are the displayed ones.

A video that stops decoding early is truncated (an error unless accepted): fewer frames than its header
declares, a decoding error, or, where the container stores no frame count (Matroska/WebM), frames that
end before the duration the file declares for the video track.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from vidmatte.errors import VidmatteError, VidmatteWarning
from vidmatte.io.frames import alpha_of, list_frames, read_channels, rgb_of
from vidmatte.io.orientation import UPRIGHT, Orientation, display_orientation
from vidmatte.io.threads import Prefetcher

# decision: an image folder carries no rate; 30 fps is the most common one for people videos
VIDEO_EXTENSIONS = (
    ".mp4",
    ".mov",
    ".avi",
    ".mkv",
    ".webm",
    ".m4v",
)  # what folders of videos are searched for
DEFAULT_FOLDER_RATE = Fraction(30)
DEFAULT_QUEUE_SIZE = 4
# decision: a video without a frame count is truncated when its frames end more than half a frame
# before the duration it declares (Matroska stores durations to the millisecond)
TRUNCATION_TOLERANCE_FRAMES = Fraction(1, 2)


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
        width: frame width in pixels, as displayed (a video's display rotation applied; any size, odd
            included).
        height: frame height in pixels, as displayed.
        frame_rate: average frames per second, exact (e.g. ``Fraction(30000, 1001)``).
        time_base: seconds per unit of :attr:`Frame.pts`.
        frame_count: number of frames the container declares, ``None`` when it declares none
            (Matroska/WebM); an image folder knows its count.
        variable_frame_rate: the container's average rate differs from its nominal rate, so frame
            durations vary. Only as far as the container tells (MP4 does; Matroska/WebM, which
            declare no frame count, usually cannot); writers keep the timestamps either way.
        start_time: time of the first frame in the source, seconds (what ``pts == 0`` stands for).
        audio: the audio track, ``None`` for a silent video or an image folder.
        frame_names: an image folder's file names without extension, in frame order (PNG outputs
            take them); ``None`` for a video.
        orientation: how a video's stored frames were turned upright (:data:`UPRIGHT` if not).
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
    frame_names: tuple[str, ...] | None = None
    orientation: Orientation = UPRIGHT


class Frame(NamedTuple):
    """One decoded frame.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB, upright.
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
            folder of images (in natural order of their names, all of one size; see
            :func:`~vidmatte.io.frames.list_frames` and :func:`~vidmatte.io.frames.read_channels`;
            an image's alpha channel is ignored, with a :class:`~vidmatte.errors.VidmatteWarning`
            once per folder).
        frame_rate: rate of an image folder (default :data:`DEFAULT_FOLDER_RATE`); a video's own rate is
            always used.
        accept_truncated: when a video stops decoding early (cut short, corrupt tail), end the iteration
            quietly after the last decodable frame (see :attr:`FrameReader.truncation`) instead of raising.
        queue_size: frames decoded ahead of the caller.

    Returns:
        An open :class:`FrameReader`.

    Raises:
        VidmatteError: missing path, empty or unreadable file, no video stream, no frame, an image
            folder with frames of different sizes (raised while iterating, when that frame is reached)
            or with two files for one frame (``1.png`` and ``01.png``), a truncated video (raised after
            its last decodable frame unless ``accept_truncated``).
    """
    path = Path(path)
    if path.is_dir():
        rate = Fraction(frame_rate) if frame_rate is not None else DEFAULT_FOLDER_RATE
        folder = _FolderDecoder(list_frames(path))
        names = tuple(p.stem for p in folder.paths)
        info = VideoInfo(
            path, folder.width, folder.height, rate, 1 / rate, len(names), False, Fraction(0), None, names
        )
        return FrameReader(info, folder, queue_size)
    info, video = _open_video(path, accept_truncated)
    return FrameReader(info, video, queue_size)


class _FolderDecoder:
    """Frames of an image folder; the first is read on creation for its size."""

    truncation = None

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._alpha_noticed = False
        self._first = self._read(paths[0])
        self.height, self.width = self._first.shape[:2]

    def _read(self, path: Path) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB of one frame; a transparent alpha is noticed once per folder."""
        channels = read_channels(path)
        alpha = alpha_of(channels)
        if alpha is not None and not self._alpha_noticed and alpha.min() < 255:
            self._alpha_noticed = True
            warnings.warn(
                f"{path}: the frames' alpha channel is ignored (they are matted as RGB)",
                VidmatteWarning,
                stacklevel=2,
            )
        return rgb_of(channels)

    def frames(self) -> Iterator[Frame]:
        for index, frame_path in enumerate(self.paths):
            image = self._first if index == 0 else self._read(frame_path)
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
    width, height = decoder.orientation.displayed_size(decoder.first.width, decoder.first.height)
    info = VideoInfo(
        path=path,
        width=width,
        height=height,
        frame_rate=Fraction(rate),
        time_base=decoder.time_base,
        frame_count=_declared_frames(stream),
        variable_frame_rate=bool(stream.average_rate and nominal and stream.average_rate != nominal),
        start_time=decoder.origin * decoder.time_base,
        audio=audio,
        orientation=decoder.orientation,
    )
    return info, decoder


def _declared_frames(stream: av.video.stream.VideoStream) -> int | None:
    """The frame count the container stores: its header's, or mkvmerge's ``NUMBER_OF_FRAMES`` tag."""
    if stream.frames:
        return stream.frames
    tag = _track_tag(stream, "NUMBER_OF_FRAMES")
    return int(tag) if tag is not None and tag.isdigit() and int(tag) > 0 else None


def _declared_seconds(stream: av.video.stream.VideoStream) -> Fraction | None:
    """The duration a Matroska/WebM file stores for the track (``DURATION`` tag, ``HH:MM:SS.fraction``,
    written by FFmpeg and mkvmerge); ``None`` when it stores none or an unreadable one."""
    tag = _track_tag(stream, "DURATION")
    try:
        hours, minutes, seconds = tag.split(":") if tag is not None else (None, None, None)
        return (int(hours) * 60 + int(minutes)) * 60 + Fraction(seconds) if hours is not None else None
    except ValueError:
        return None


def _track_tag(stream: av.video.stream.VideoStream, name: str) -> str | None:
    """A track tag, with or without mkvmerge's language suffix (``DURATION-eng``)."""
    for key, value in stream.metadata.items():
        if key.upper().split("-")[0] == name:
            return value.strip()
    return None


def count_frames(path: str | os.PathLike) -> int:
    """The frames of a video, counted from its packets without decoding them (a pass over the file).

    For a video that does not declare its frame count (Matroska/WebM) where the count is needed
    before decoding (MSG-VIM's guidance is checked against it).

    Raises:
        VidmatteError: the file cannot be read.
    """
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, OSError, IndexError) as error:
        raise VidmatteError(f"{path}: not a readable video ({ffmpeg_reason(error)})") from None


class _VideoDecoder:
    """Frames of a video container; the first is decoded on creation.

    Attributes:
        first: the first decoded frame.
        orientation: how frames are turned upright (the first frame's display matrix).
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
        orientation = display_orientation(first)
        if orientation is None:
            warnings.warn(
                f"{path}: its display matrix is no right-angle rotation; frames are used as stored",
                VidmatteWarning,
                stacklevel=2,
            )
        self.orientation = orientation or UPRIGHT
        # AVI stores no presentation times: FFmpeg derives them from the decoding order, and with B-frames
        # they come out shuffled (and the first late); frame i of an AVI shows i frame durations in
        self._by_index = container.format.name == "avi"
        self.origin = first.pts if first.pts is not None and not self._by_index else 0
        rate = self._stream.average_rate or self._stream.guessed_rate or DEFAULT_FOLDER_RATE
        self._frame_seconds = 1 / Fraction(rate)
        self._step = max(1, round(self._frame_seconds / self.time_base))

    def _decode(self) -> Iterator[av.VideoFrame]:
        count = 0
        end = None  # largest pts decoded
        try:
            for frame in self._container.decode(self._stream):
                count += 1
                if frame.pts is not None:
                    end = frame.pts if end is None else max(end, frame.pts)
                yield frame
        except (av.FFmpegError, OSError) as error:
            self.truncation = f"decoding stopped after {count} frames ({ffmpeg_reason(error)})"
            return
        declared = _declared_frames(self._stream)
        if declared:
            if count < declared:
                self.truncation = f"{count} of {declared} frames decodable"
            return
        duration = _declared_seconds(self._stream)
        if duration is not None:
            # from the track's zero, not its first frame: a late first frame never reads as missing time
            decoded = end * self.time_base + self._frame_seconds if end is not None else Fraction(0)
            if duration - decoded > TRUNCATION_TOLERANCE_FRAMES * self._frame_seconds:
                self.truncation = (
                    f"{count} frames decodable, {float(decoded):.2f} s of the {float(duration):.2f} s "
                    "the file declares"
                )

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
                yield Frame(self.orientation.apply(image), index, pts)
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
