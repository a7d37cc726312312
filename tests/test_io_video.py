"""Streaming video I/O: reading any source, writing every output type, atomic outputs, bad input."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidmatte.errors import VidmatteError
from vidmatte.io.atomic import partials_of
from vidmatte.io.frames import list_frames, read_grey_u8, write_image
from vidmatte.io.jsonfile import read_json, write_json
from vidmatte.io.reader import Frame, VideoInfo, open_frames
from vidmatte.io.writers import FrameWriter

W, H, N = 64, 48, 10
RATE = Fraction(25)
SAMPLE_RATE = 44100


def _colour(index: int, height: int = H, width: int = W) -> np.ndarray:
    """A smooth moving colour frame, ``(H, W, 3)`` uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 128 + 80 * np.sin((x + 3 * index) / 16)
    green = 128 + 80 * np.cos((y - 2 * index) / 12)
    blue = np.full_like(x, 40 + 15 * index)
    return np.stack([red, green, blue], -1).clip(0, 255).astype(np.uint8)


def _alpha(index: int, height: int = H, width: int = W) -> np.ndarray:
    """A soft moving disc (every grey level occurs in its edge), ``(H, W)`` uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot(x - width / 2 - index, y - height / 2)
    return (255 * np.clip((height / 3 - distance) / 6 + 0.5, 0, 1)).astype(np.uint8)


def _make_video(
    path: Path,
    *,
    size: tuple[int, int] = (W, H),
    frames: int = N,
    audio: bool = False,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    codec_options: dict[str, str] | None = None,
    pix_fmt: str | None = None,
) -> Path:
    """Encode a test video with PyAV; optional sine audio track and explicit (variable) timestamps."""
    width, height = size
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=RATE, options=codec_options or {})
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt or ("yuv444p" if width % 2 or height % 2 else "yuv420p")
        if time_base is not None:
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=SAMPLE_RATE)
            sound.layout = "stereo"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(_colour(index, height, width), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[index], time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            samples = int(SAMPLE_RATE * frames / RATE)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / SAMPLE_RATE)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = np.ascontiguousarray(np.stack([wave[start : start + 1024]] * 2))
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = SAMPLE_RATE, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path


class Decoded(NamedTuple):
    rgba: list[np.ndarray]  # (H, W, 4) uint8 per frame
    times: list[Fraction]  # seconds
    size: tuple[int, int]  # width, height of the stream
    rate: Fraction | None  # the stream's average rate
    samples: int  # audio samples


def _decode(path: Path) -> Decoded:
    """Every frame of a video, through libvpx for VP9 (whose alpha the native decoder drops)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name == "vp9":
            decoder = av.CodecContext.create("libvpx-vp9", "r")
            frames = (f for packet in container.demux(stream) if packet.size for f in decoder.decode(packet))
        else:
            frames = container.decode(stream)
        # convert at once: a decoder may reuse a frame's buffers once it moves on
        pairs = [
            (f.to_ndarray(format="rgba", src_color_range=f.color_range), f.pts * f.time_base) for f in frames
        ]
        size, rate = (stream.width, stream.height), stream.average_rate
    with av.open(str(path)) as container:
        samples = sum(f.samples for f in container.decode(audio=0)) if container.streams.audio else 0
    return Decoded([p[0] for p in pairs], [p[1] for p in pairs], size, rate, samples)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_video(tmp_path_factory.mktemp("src") / "clip.mp4", audio=True)


@pytest.fixture(scope="module")
def source_frames(source: Path) -> tuple[VideoInfo, list[Frame]]:
    with open_frames(source) as reader:
        return reader.info, list(reader)


def test_reader_reports_the_video_and_streams_its_frames(source: Path, source_frames) -> None:
    info, frames = source_frames
    assert (info.width, info.height, info.frame_rate, info.frame_count) == (W, H, RATE, N)
    assert not info.variable_frame_rate and info.start_time == 0
    assert info.audio is not None and info.audio.codec == "aac" and info.audio.channels == 2
    assert [f.index for f in frames] == list(range(N))
    assert all(f.image.shape == (H, W, 3) and f.image.dtype == np.uint8 for f in frames)
    step = 1 / (RATE * info.time_base)
    assert [f.pts for f in frames] == [round(i * step) for i in range(N)]
    # H.264 at CRF 23 on a smooth picture: close to what was encoded
    assert np.abs(frames[4].image.astype(int) - _colour(4)).mean() < 3


@pytest.mark.parametrize(
    ("name", "codec", "options", "pix_fmt"),
    [
        ("hevc.mkv", "libx265", {"x265-params": "log-level=none"}, None),
        ("av1.mkv", "libsvtav1", {}, None),
        ("vp9.webm", "libvpx-vp9", {}, None),
        ("prores.mov", "prores_ks", {}, "yuv422p10le"),
        ("mpeg4.avi", "mpeg4", {}, None),
    ],
)
def test_reader_decodes_common_codecs(tmp_path: Path, name, codec, options, pix_fmt) -> None:
    # SVT-AV1 needs at least 64x64
    path = _make_video(tmp_path / name, size=(W, 64), codec=codec, codec_options=options, pix_fmt=pix_fmt)
    with open_frames(path) as reader:
        frames = list(reader)
    assert (reader.info.width, reader.info.height, reader.info.frame_rate) == (W, 64, RATE)
    assert len(frames) == N and frames[-1].pts * reader.info.time_base == Fraction(N - 1) / RATE
    assert np.abs(frames[3].image.astype(int) - _colour(3, 64, W)).mean() < 6


def test_reader_reads_an_image_folder(tmp_path: Path) -> None:
    for index in range(3):
        write_image(tmp_path / f"{index:04d}.png", _colour(index))
    with open_frames(tmp_path, frame_rate=24) as reader:
        frames = list(reader)
    assert reader.info.frame_rate == 24 and reader.info.time_base == Fraction(1, 24)
    assert reader.info.frame_count == 3 and reader.info.audio is None
    assert [f.pts for f in frames] == [0, 1, 2]
    assert all(np.array_equal(f.image, _colour(i)) for i, f in enumerate(frames))


def test_reader_stops_its_thread_when_closed_early(source: Path) -> None:
    before = threading.active_count()
    with open_frames(source, queue_size=1) as reader:
        first = next(iter(reader))
    assert first.index == 0
    assert threading.active_count() == before


# suffix, content, lossless, largest alpha error allowed, mean colour error allowed
OUTPUTS = [
    ("alpha.mp4", "alpha", True, 0, None),
    ("alpha_crf.mp4", "alpha", False, 12, None),
    ("alpha.webm", "alpha", True, 0, None),
    ("alpha.mkv", "alpha", False, 0, None),
    ("alpha.mov", "alpha", False, 3, None),
    ("colour.mp4", "rgb", False, None, 3),
    ("colour.webm", "rgb", False, None, 2.5),
    ("colour.mkv", "rgb", False, None, 0),
    ("colour.mov", "rgb", False, None, 1.5),
    ("rgba.mov", "rgba", False, 3, 1.5),
    ("rgba.webm", "rgba", True, 1, 2.5),
    ("rgba.mkv", "rgba", False, 0, 0),
]


def _content(kind: str, index: int, height: int = H, width: int = W) -> np.ndarray:
    if kind == "alpha":
        return _alpha(index, height, width)
    if kind == "rgb":
        return _colour(index, height, width)
    return np.dstack([_colour(index, height, width), _alpha(index, height, width)])


@pytest.mark.parametrize(("name", "kind", "lossless", "alpha_tolerance", "colour_tolerance"), OUTPUTS)
def test_every_video_output_decodes_back(
    tmp_path: Path, source_frames, name, kind, lossless, alpha_tolerance, colour_tolerance
) -> None:
    info, frames = source_frames
    out = tmp_path / "out" / name
    with FrameWriter(out, kind, info, lossless=lossless) as writer:
        for frame in frames:
            writer.write(_content(kind, frame.index), frame.pts)
    assert out.is_file() and not partials_of(out)
    decoded = _decode(out)
    assert len(decoded.rgba) == N
    assert decoded.size == (W, H)
    assert decoded.rate == RATE
    assert decoded.times == [Fraction(i) / RATE for i in range(N)]
    assert decoded.samples > 0  # the source's audio track came along
    for index, rgba in enumerate(decoded.rgba):
        if alpha_tolerance is not None:
            channel = rgba[..., 0] if kind == "alpha" else rgba[..., 3]
            assert np.abs(channel.astype(int) - _alpha(index)).max() <= alpha_tolerance
        if colour_tolerance is not None:
            assert np.abs(rgba[..., :3].astype(int) - _colour(index)).mean() <= colour_tolerance


@pytest.mark.parametrize("kind", ["alpha", "rgb", "rgba"])
def test_png_sequences_are_exact(tmp_path: Path, source_frames, kind: str) -> None:
    info, frames = source_frames
    out = tmp_path / kind
    with FrameWriter(out, kind, info) as writer:
        for frame in frames:
            writer.write(_content(kind, frame.index))
    paths = list_frames(out)
    assert [p.name for p in paths] == [f"{i:06d}.png" for i in range(N)]
    for index, path in enumerate(paths):
        if kind == "alpha":
            assert np.array_equal(read_grey_u8(path), _alpha(index))
        else:
            with av.open(str(path)) as image:
                pixels = next(image.decode(video=0)).to_ndarray(format="rgba" if kind == "rgba" else "rgb24")
            assert np.array_equal(pixels, _content(kind, index))


@pytest.mark.parametrize(("name", "codec", "remuxed"), [("a.mp4", "aac", True), ("a.webm", "opus", False)])
def test_audio_is_remuxed_or_reencoded(tmp_path: Path, source_frames, name, codec, remuxed) -> None:
    info, frames = source_frames
    out = tmp_path / name
    with FrameWriter(out, "alpha", info) as writer:
        for frame in frames:
            writer.write(_alpha(frame.index), frame.pts)
    with av.open(str(out)) as result, av.open(str(info.path)) as original:
        track = result.streams.audio[0]
        assert track.codec_context.name == codec
        rate = track.rate
        if remuxed:
            copied = [bytes(p) for p in result.demux(track) if p.size]
            # the encoder's priming packet lies wholly before the first frame and is left out
            kept = [bytes(p) for p in original.demux(audio=0) if p.size and p.pts + p.duration > 0]
            assert copied == kept
    assert abs(_decode(out).samples / rate - N / RATE) < 0.1


def test_odd_sizes_are_kept_exactly(tmp_path: Path) -> None:
    width, height = 33, 25
    source = _make_video(tmp_path / "odd.mkv", size=(width, height), codec="ffv1")
    with open_frames(source) as reader:
        info, frames = reader.info, list(reader)
    assert (info.width, info.height) == (width, height) and len(frames) == N
    for name, kind in [("c.mp4", "rgb"), ("a.mp4", "alpha"), ("t.webm", "rgba"), ("t.mov", "rgba")]:
        with FrameWriter(tmp_path / name, kind, info) as writer:
            for frame in frames:
                writer.write(_content(kind, frame.index, height, width), frame.pts)
        decoded = _decode(tmp_path / name)
        assert len(decoded.rgba) == N and decoded.size == (width, height), name
        channel = 0 if kind == "alpha" else 3
        if kind != "rgb":
            errors = [
                np.abs(d[..., channel].astype(int) - _alpha(i, height, width)).mean()
                for i, d in enumerate(decoded.rgba)
            ]
            assert max(errors) < 2, name


def test_variable_frame_rate_keeps_its_timestamps(tmp_path: Path) -> None:
    milliseconds = [0, 40, 120, 130, 200, 260, 400, 410, 420, 500]
    source = _make_video(tmp_path / "vfr.mkv", pts=milliseconds, time_base=Fraction(1, 1000))
    with open_frames(source) as reader:
        info, frames = reader.info, list(reader)
    assert [f.pts * info.time_base for f in frames] == [Fraction(t, 1000) for t in milliseconds]
    for name in ("vfr.mp4", "vfr.mov", "vfr_out.mkv"):
        with FrameWriter(tmp_path / name, "rgb", info) as writer:
            for frame in frames:
                writer.write(frame.image, frame.pts)
        assert _decode(tmp_path / name).times == [Fraction(t, 1000) for t in milliseconds], name
    # MP4 declares its frame count, so its average rate shows the variation (Matroska cannot tell)
    with open_frames(tmp_path / "vfr.mp4") as reader:
        assert reader.info.variable_frame_rate
        assert reader.info.frame_rate == Fraction(len(milliseconds) * 1000, 570)


@pytest.mark.parametrize("error", [RuntimeError("model failed"), KeyboardInterrupt()])
@pytest.mark.parametrize("name", ["out.mp4", "out.webm", "pngs"])
def test_an_interrupted_write_leaves_no_output(tmp_path: Path, source_frames, error, name) -> None:
    info, frames = source_frames
    out = tmp_path / name
    with pytest.raises(type(error)), FrameWriter(out, "alpha", info) as writer:
        for frame in frames[:4]:
            writer.write(_alpha(frame.index), frame.pts)
        raise error
    assert list(tmp_path.iterdir()) == []


def test_a_failing_encoder_is_reported_and_leaves_no_output(
    tmp_path: Path, source_frames, monkeypatch
) -> None:
    info, frames = source_frames
    out = tmp_path / "full.mp4"

    def disk_full(self, frame) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("vidmatte.io.writers._VideoSink.write", disk_full)
    message = r"full\.mp4: cannot write \(No space left on device\)"
    with pytest.raises(VidmatteError, match=message), FrameWriter(out, "alpha", info) as writer:
        for frame in frames:
            writer.write(_alpha(frame.index), frame.pts)
    assert list(tmp_path.iterdir()) == []


def test_an_output_folder_that_cannot_be_written_is_reported(tmp_path: Path, source_frames) -> None:
    info, _ = source_frames
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(VidmatteError, match=r"file\.txt/alpha\.mp4: cannot write there"):
        FrameWriter(blocker / "alpha.mp4", "alpha", info)


def test_json_results_are_written_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "new" / "results.json"
    write_json(path, {"old": 1})
    write_json(path, {"mean": [0.5, 1]}, indent=2)
    assert read_json(path) == {"mean": [0.5, 1]} and path.read_text().endswith("]\n}\n")
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no partial file left
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(VidmatteError, match=r"file\.txt/r\.json: cannot write there"):
        write_json(blocker / "r.json", [])
    with pytest.raises(VidmatteError, match=r"gone/state\.json: cannot write there"):
        write_json(tmp_path / "gone" / "state.json", {}, make_parents=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "new"]


def test_mp4_refuses_transparency(tmp_path: Path, source_frames) -> None:
    with pytest.raises(VidmatteError, match=r"t\.mp4: an \.mp4 video cannot hold transparency"):
        FrameWriter(tmp_path / "t.mp4", "rgba", source_frames[0])
    assert list(tmp_path.iterdir()) == []


def _header_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=RATE)
        stream.width, stream.height = W, H
        container.start_encoding()
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    return path


def _file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _mixed_sizes(folder: Path) -> Path:
    folder.mkdir()
    write_image(folder / "0000.png", _colour(0))
    write_image(folder / "0001.png", _colour(1, H + 2, W))
    return folder


BAD_INPUTS = {
    "missing": (lambda d: d / "missing.mp4", r"missing\.mp4: no such file or folder"),
    "empty": (lambda d: _file(d / "empty.mp4", ""), r"empty\.mp4: empty file"),
    "text": (lambda d: _file(d / "text.mp4", "hello\n"), r"text\.mp4: not a readable video \(Invalid data"),
    "no video stream": (lambda d: _audio_only(d / "sound.mp4"), r"sound\.mp4: no video stream"),
    "zero frames": (lambda d: _header_only(d / "zero.mkv"), r"zero\.mkv: video without frames"),
    "mixed sizes": (
        lambda d: _mixed_sizes(d / "frames"),
        r"frames/0001\.png: frame of 64x50 in a folder of 64x48",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_line_naming_the_file(tmp_path: Path, case: str) -> None:
    make, message = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(VidmatteError, match=message) as caught, open_frames(path) as reader:
        for _ in reader:
            pass
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))


def test_a_truncated_video_yields_its_frames_then_fails_unless_accepted(tmp_path: Path) -> None:
    whole = _make_video(tmp_path / "whole.mp4", frames=20, options={"movflags": "faststart"})
    with av.open(str(whole)) as container:
        # cut inside the 13th packet (in file order)
        starts = sorted(p.pos for p in container.demux(video=0) if p.size)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: starts[12] + 10])
    seen = []
    message = r"cut\.mp4: truncated video: \d+ of 20 frames decodable"
    with pytest.raises(VidmatteError, match=message), open_frames(cut) as reader:
        seen.extend(frame.index for frame in reader)
    assert 0 < len(seen) < 20 and seen == list(range(len(seen)))
    with open_frames(cut, accept_truncated=True) as reader:
        assert [frame.index for frame in reader] == seen
    assert reader.truncation == f"{len(seen)} of 20 frames decodable"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=4096),
    header=st.sampled_from([b"", b"\x1aE\xdf\xa3", b"\x00\x00\x00\x18ftypmp42"]),
)
def test_arbitrary_bytes_give_frames_or_a_clear_error(tmp_path: Path, data: bytes, header: bytes) -> None:
    path = tmp_path / "fuzz.mp4"
    path.write_bytes(header + data)
    try:
        with open_frames(path) as reader:
            for frame in reader:
                assert frame.image.shape == (reader.info.height, reader.info.width, 3)
    except VidmatteError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error)
