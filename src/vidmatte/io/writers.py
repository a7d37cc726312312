"""Streaming writers for mattes, colour frames and transparent frames: videos or PNG sequences.

The output type comes from the path: a video suffix picks the codec, anything else is a folder of PNGs.

============  ==================  ===========================================================
suffix        codec               what it stores
============  ==================  ===========================================================
``.mp4``      H.264 (libx264)     colour, or alpha as full-range grey luma; yuv420p when both
                                  sides are even, yuv444p for odd sizes (kept exactly, no
                                  padding; High 4:4:4 plays in FFmpeg/VLC/Chrome, not Safari);
                                  ``lossless`` sets qp 0 (alpha exact)
``.mov``      ProRes 4444         colour, alpha, or transparent (yuva444p10le); near-lossless
                                  (FFmpeg's prores_aw, or prores_ks for odd widths)
``.webm``     VP9 (libvpx)        colour, alpha, or transparent (yuva420p); ``lossless`` exact
                                  alpha
``.mkv``      FFV1                colour, alpha or transparent, always lossless (exact)
(none)        PNG sequence        colour, alpha or transparent (RGBA), exact
============  ==================  ===========================================================

Every output is locked while written, written under a hidden name unique to the run and renamed when
complete (:mod:`.atomic`);
frames are encoded in a background thread; timestamps from the source are kept, so frame count and
rate (variable ones included) survive, and the source's audio track is copied into video outputs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from vidmatte.errors import VidmatteError
from vidmatte.io.atomic import AtomicOutput, FinishOrAbort
from vidmatte.io.audio import AudioCopier, audio_supported
from vidmatte.io.frames import to_u8, write_image
from vidmatte.io.reader import VideoInfo, ffmpeg_reason
from vidmatte.io.threads import BackgroundWorker

Content = Literal["rgb", "alpha", "rgba"]
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv")
DEFAULT_QUEUE_SIZE = 8
# decision: near-lossless defaults (CRF 18 is the usual "visually lossless" point of H.264; a little
# lower makes up for the fast presets, which keep encoding ahead of the model)
H264_CRF = 16
VP9_CRF = 15
H264_PRESET = "veryfast"

_CHANNELS = {"rgb": 3, "alpha": 1, "rgba": 4}
_NDARRAY_FORMAT = {"rgb": "rgb24", "alpha": "gray", "rgba": "rgba"}


@dataclass(frozen=True)
class _Encoding:
    codec: str
    pix_fmt: str
    options: dict[str, str]
    # alpha as luma in 0..255 rather than 16..235, so that lossless settings keep it exact
    full_range: bool


def _encoding(path: Path, content: Content, width: int, height: int, lossless: bool) -> _Encoding:
    suffix = path.suffix.lower()
    even = width % 2 == 0 and height % 2 == 0
    if suffix in (".mp4", ".m4v"):
        if content == "rgba":
            raise VidmatteError(
                f"{path}: an {suffix} video cannot hold transparency; use .mov (ProRes 4444), "
                ".webm (VP9 with alpha) or a folder of PNGs"
            )
        quality = {"qp": "0"} if lossless else {"crf": str(H264_CRF)}
        return _Encoding(
            "libx264",
            "yuv420p" if even else "yuv444p",
            {"preset": H264_PRESET, **quality},
            content == "alpha",
        )
    if suffix == ".mov":
        if lossless:
            raise VidmatteError(f"{path}: ProRes has no lossless mode; use .mkv (FFV1) or a folder of PNGs")
        pix_fmt = "yuva444p10le" if content == "rgba" else "yuv444p10le"
        # prores_aw is several times faster than prores_ks but takes even widths only
        if width % 2 == 0:
            return _Encoding("prores_aw", pix_fmt, {"profile": "4", "vendor": "apl0"}, False)
        return _Encoding("prores_ks", pix_fmt, {"profile": "4444", "vendor": "apl0"}, False)
    if suffix == ".webm":
        quality = {"lossless": "1"} if lossless else {"crf": str(VP9_CRF), "b": "0"}
        pix_fmt = "yuva420p" if content == "rgba" else "yuv420p"
        return _Encoding(
            "libvpx-vp9",
            pix_fmt,
            {"row-mt": "1", "deadline": "realtime", "cpu-used": "8", **quality},
            content == "alpha",
        )
    if suffix == ".mkv":
        pix_fmt = {"rgb": "bgr0", "alpha": "gray", "rgba": "bgra"}[content]
        return _Encoding("ffv1", pix_fmt, {"level": "3"}, False)
    raise VidmatteError(f"{path}: unknown video type (expected one of {', '.join(VIDEO_SUFFIXES)})")


class _VideoSink:
    """Encoder and muxer of one video file, driven by the writer's thread."""

    def __init__(
        self, target: Path, final: Path, content: Content, info: VideoInfo, lossless: bool, copy_audio: bool
    ) -> None:
        encoding = _encoding(final, content, info.width, info.height, lossless)
        self._encoding = encoding
        self._time_base = info.time_base
        self._container = av.open(str(target), "w")
        self._audio: AudioCopier | None = None
        try:
            self._stream = self._container.add_stream(
                encoding.codec, rate=info.frame_rate, options=encoding.options
            )
            context = self._stream.codec_context
            self._stream.width, self._stream.height = info.width, info.height
            self._stream.pix_fmt = encoding.pix_fmt
            context.time_base = info.time_base
            self._stream.time_base = info.time_base
            self._color_range = ColorRange.JPEG if encoding.full_range else ColorRange.MPEG
            # YUV colour is BT.709 and tagged so, so that players convert back with the same matrix;
            # grey alpha has no colour, only its range matters
            self._yuv_colour = content != "alpha" and encoding.pix_fmt.startswith("yuv")
            if self._yuv_colour:
                context.colorspace = int(Colorspace.ITU709)
                context.color_primaries = 1  # BT.709
                context.color_trc = 1  # BT.709
            context.color_range = self._color_range
            if copy_audio and info.audio is not None and audio_supported(final.suffix.lower()):
                self._audio = AudioCopier(
                    info.path, info.audio, info.start_time, self._container, final.suffix.lower()
                )
        except BaseException:
            self._container.close()
            raise

    def write(self, frame: av.VideoFrame) -> None:
        if self._audio is not None:
            self._audio.copy_until(frame.pts * self._time_base)
        if self._yuv_colour:
            frame = frame.reformat(
                format=self._encoding.pix_fmt,
                dst_colorspace=Colorspace.ITU709,
                dst_color_range=self._color_range,
            )
        elif self._encoding.full_range:
            frame = frame.reformat(format=self._encoding.pix_fmt, dst_color_range=ColorRange.JPEG)
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        if self._audio is not None:
            self._audio.close()
        self._container.close()

    def abandon(self) -> None:
        if self._audio is not None:
            self._audio.abandon()
        # the partial file is removed next; its trailer does not matter
        with contextlib.suppress(av.FFmpegError, OSError):
            self._container.close()


class _PngSink:
    """A folder of PNGs named as the input's frames (an image folder's file names), else by frame index
    (``000000.png``, ...), written by the writer's thread."""

    DIGITS = 6

    def __init__(self, folder: Path, names: tuple[str, ...] | None) -> None:
        folder.mkdir()
        self._folder = folder
        self._names = names
        self._count = 0

    def write(self, image: np.ndarray) -> None:
        name = self._names[self._count] if self._names is not None else f"{self._count:0{self.DIGITS}d}"
        write_image(self._folder / f"{name}.png", image)
        self._count += 1

    def close(self) -> None:
        """Nothing is buffered: every frame is complete once written."""

    def abandon(self) -> None:
        """The folder is removed by the caller."""


class FrameWriter(FinishOrAbort):
    """A streaming output; :meth:`write` frames, then :meth:`finish` (or use ``with``).

    Leaving a ``with`` block by an exception (``KeyboardInterrupt`` included) calls :meth:`abort`, so the
    output only ever appears at its final name complete.

    Attributes:
        path: the final output path.
        content: ``"rgb"``, ``"alpha"`` or ``"rgba"``.
        frames_written: frames accepted so far.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        content: Content,
        info: VideoInfo,
        *,
        lossless: bool = False,
        copy_audio: bool = True,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        overwrite: bool = True,
    ) -> None:
        """Open an output for frames like those of ``info`` (same size, rate and timestamps).

        Args:
            path: a video file (suffix in :data:`VIDEO_SUFFIXES`) or, without a video suffix, a folder
                of PNGs.
            content: what each frame holds: ``"rgb"`` ``(H, W, 3)``, ``"alpha"`` ``(H, W)`` or
                ``"rgba"`` ``(H, W, 4)``.
            info: the source's size, frame rate, time base and audio track.
            lossless: exact alpha in .mp4 (qp 0) and .webm (VP9 lossless); .mkv and PNG always are.
            copy_audio: copy the source's audio track into a video output.
            queue_size: frames queued for the encoding thread.
            overwrite: replace an existing output at ``path``; ``False`` refuses one.

        Raises:
            VidmatteError: the folder cannot be written, another run is writing ``path``, ``path`` exists
                and ``overwrite`` is false, the type cannot hold ``content``.
        """
        if content not in _CHANNELS:
            raise ValueError(f"content must be one of {sorted(_CHANNELS)}, got {content!r}")
        self.path = Path(path)
        self.content = content
        self.frames_written = 0
        self._info = info
        self._output = AtomicOutput(self.path, overwrite=overwrite)
        self._video = self.path.suffix.lower() in VIDEO_SUFFIXES
        self._last_pts: int | None = None
        try:
            if self._video:
                self._sink: _VideoSink | _PngSink = _VideoSink(
                    self._output.partial, self.path, content, info, lossless, copy_audio
                )
            else:
                self._sink = _PngSink(self._output.partial, info.frame_names)
        except (av.FFmpegError, OSError) as error:
            self._output.discard()
            raise VidmatteError(f"{self.path}: cannot write ({ffmpeg_reason(error)})") from None
        except BaseException:
            self._output.discard()
            raise
        self._worker: BackgroundWorker = BackgroundWorker(
            self._sink.write, queue_size, name=f"vidmatte encode {self.path.name}"
        )
        self._open = True
        self._encoded = False

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Queue one frame for encoding.

        Args:
            image: ``(H, W, 3)`` uint8 RGB for ``"rgb"``; ``(H, W)`` uint8, or float in [0, 1], for
                ``"alpha"``; ``(H, W, 4)`` uint8 RGBA (straight, not premultiplied) for ``"rgba"``.
                It is copied before this returns, so the caller may reuse the buffer.
            pts: the source frame's :attr:`Frame.pts` (in ``info.time_base``); ``None`` places the frame
                one nominal frame after the previous one. Timestamps must increase; a repeated one is
                moved one tick later so that the muxer accepts it.

        Raises:
            VidmatteError: encoding failed (disk full, ...); the output is removed.
        """
        if not self._open:
            raise RuntimeError(f"{self.path}: the writer is closed")
        expected = (self._info.height, self._info.width) + (
            (_CHANNELS[self.content],) if self.content != "alpha" else ()
        )
        if image.shape != expected:
            raise ValueError(f"{self.path}: frame of shape {image.shape}, expected {expected}")
        if image.dtype != np.uint8:
            image = to_u8(image)
        if pts is None:
            pts = round(self.frames_written / (self._info.frame_rate * self._info.time_base))
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        if self._video:
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(image), format=_NDARRAY_FORMAT[self.content]
            )
            frame.pts = pts
            frame.time_base = self._info.time_base
            item: av.VideoFrame | np.ndarray = frame
        else:
            item = image.copy()
        self._guarded(lambda: self._worker.submit(item))
        self.frames_written += 1

    def encode(self) -> None:
        """Encode what is queued and complete the file, still under its partial name; idempotent.

        The first half of :meth:`finish`: a caller with several outputs encodes them all before it
        renames any, so that a failure in one leaves none of them behind.

        Raises:
            VidmatteError: encoding failed; the output is removed.
        """
        if not self._open or self._encoded:
            return
        self._guarded(self._worker.join)
        self._guarded(self._sink.close)
        self._encoded = True

    def finish(self) -> None:
        """Encode what is queued, complete the file and rename it into place; idempotent.

        Raises:
            VidmatteError: encoding or renaming failed; the output is removed.
        """
        if not self._open:
            return
        self.encode()
        self._open = False
        try:
            self._output.commit()
        except BaseException:
            self._output.discard()
            raise

    def abort(self) -> None:
        """Stop encoding and remove the partial output; never raises, idempotent."""
        if not self._open:
            return
        self._open = False
        if not self._encoded:
            self._worker.cancel()
            self._sink.abandon()
        self._output.discard()

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except (av.FFmpegError, OSError) as error:
            self.abort()
            raise VidmatteError(f"{self.path}: cannot write ({ffmpeg_reason(error)})") from None
        except BaseException:
            self.abort()
            raise
