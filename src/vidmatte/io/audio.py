"""Copy the audio track of a source video into an output video, interleaved with its frames.

The packets are remuxed untouched when the output container accepts the codec; otherwise they are
re-encoded (AAC for MP4/MOV, Opus for WebM). Audio keeps its place relative to the frames: both are
shifted by the time of the source's first frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from vidmatte.io.reader import AudioInfo

# audio codecs each container takes as they are (None: any); anything else is re-encoded
_REMUXABLE: dict[str, frozenset[str] | None] = {
    ".mp4": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}),
    ".m4v": frozenset({"aac", "mp3", "alac", "ac3", "eac3"}),
    ".mov": frozenset({"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"}),
    ".mkv": None,
    ".webm": frozenset({"opus", "vorbis"}),
}
_REENCODE_TO = {".mp4": "aac", ".m4v": "aac", ".mov": "aac", ".webm": "libopus"}
_OPUS_RATE = 48000


def audio_supported(suffix: str) -> bool:
    """Whether an output of this suffix can carry an audio track."""
    return suffix in _REMUXABLE


class AudioCopier:
    """Streams one audio track from ``source`` into ``output``; used by a video writer's thread.

    Create it before the first packet is muxed (it adds its stream to ``output``), call
    :meth:`copy_until` before each video frame and :meth:`close` before closing ``output``.
    """

    def __init__(
        self,
        source: Path,
        audio: AudioInfo,
        start_time: Fraction,
        output: av.container.OutputContainer,
        suffix: str,
    ) -> None:
        self._output = output
        self._input = av.open(str(source), metadata_errors="ignore")
        try:
            self._source_stream = self._input.streams[audio.stream_index]
            self._time_base = Fraction(self._source_stream.time_base)
            self._offset = round(start_time / self._time_base)
            allowed = _REMUXABLE[suffix]
            self.remuxed = allowed is None or audio.codec in allowed
            if self.remuxed:
                self._stream = output.add_stream_from_template(self._source_stream)
            else:
                codec = _REENCODE_TO[suffix]
                rate = _OPUS_RATE if codec == "libopus" else audio.sample_rate
                self._stream = output.add_stream(codec, rate=rate)
                self._stream.layout = "stereo" if audio.channels >= 2 else "mono"
        except BaseException:
            self._input.close()
            raise
        self._packets = self._demux()
        self._pending: av.Packet | None = None

    def _demux(self) -> Iterator[av.Packet]:
        try:
            for packet in self._input.demux(self._source_stream):
                if packet.size:
                    yield packet
        except (av.FFmpegError, OSError):
            # a damaged audio tail ends the track; the video is what the caller asked about
            return

    def copy_until(self, seconds: Fraction | None) -> None:
        """Mux the packets that start at or before ``seconds`` (output time; ``None``: all the rest)."""
        while True:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                return
            start = packet.pts if packet.pts is not None else packet.dts
            if start is None:
                self._write(packet)
                continue
            start -= self._offset
            if seconds is not None and start * self._time_base > seconds:
                self._pending = packet
                return
            # a packet wholly before the first frame (an encoder's priming) would shift the video in
            # containers that cannot start below 0 (Matroska)
            if start >= 0 or start + (packet.duration or 0) > 0:
                self._write(packet)

    def _write(self, packet: av.Packet) -> None:
        if self.remuxed:
            if packet.pts is not None:
                packet.pts -= self._offset
            if packet.dts is not None:
                packet.dts -= self._offset
            packet.stream = self._stream
            self._output.mux(packet)
            return
        for frame in packet.decode():
            # the encoder numbers its own samples from 0, which is where the shifted track starts
            frame.pts = None
            self._output.mux(self._stream.encode(frame))

    def close(self) -> None:
        """Copy what is left, flush the encoder and release the source."""
        try:
            self.copy_until(None)
            if not self.remuxed:
                self._output.mux(self._stream.encode(None))
        finally:
            self._packets.close()
            self._input.close()

    def abandon(self) -> None:
        """Release the source without writing anything more; never raises."""
        self._packets.close()
        self._input.close()
