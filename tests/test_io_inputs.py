"""Inputs people have: rotated phone videos, frame folders of every image type, cut-short Matroska/WebM,
and MSG-VIM guidance checked before any frame is matted. Through the command line where users meet them:
exit code, the one-line message, and inputs left unchanged."""

from __future__ import annotations

import hashlib
import json
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from vidmatte import build_model
from vidmatte.cli import main
from vidmatte.inference import video as video_module
from vidmatte.inference.msgvim import MsgVimSession
from vidmatte.inference.torch_engine import prepare_network
from vidmatte.io.frames import list_frames, read_channels, read_grey_u8, write_image
from vidmatte.io.masks import Track, encode_rle, write_ytvis_json
from vidmatte.io.orientation import Orientation
from vidmatte.io.reader import count_frames, open_frames
from vidmatte.models.loading import save_weights
from vidmatte.models.msgvim.factory import msgvim_tiny

W, H, N = 64, 48, 6  # displayed width and height: not square, so a quarter turn shows in the size
RATE = Fraction(25)
ALPHA_HEAD_GAIN = 20


def _frame(index: int, width: int = W, height: int = H) -> np.ndarray:
    """A gradient with a blob left of centre: nothing about it is symmetric. ``(H, W, 3)`` uint8."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x / width * 220, y / height * 180, np.full_like(x, 60 + 10 * index)], -1)
    blob = np.hypot(x - width / 3 - index, (y - height / 2) * 1.3) < height / 4
    image[blob] = (230, 180, 150)
    return image.astype(np.uint8)


def _hashes(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file under ``roots`` (files or folders)."""
    files = [p for root in roots for p in ([root] if root.is_file() else sorted(root.rglob("*")))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def _matte(capsys, *args: str) -> tuple[int, str]:
    """``vidmatte matte ARGS``: exit code and stderr."""
    code = main(["matte", *args])
    return code, capsys.readouterr().err


def _one_error(error: str, pattern: str) -> None:
    assert error.count("\n") == 1 and error.startswith("vidmatte: error: "), error
    assert re.search(pattern, error.removeprefix("vidmatte: error: ")), error


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight checkpoints. AdaM's alpha heads are scaled up, so that its matte follows the
    picture (0.3 to 0.7 rather than 0.47 to 0.49) and is far from rotation-invariant."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    adam = build_model("adam-tiny")
    with torch.no_grad():
        adam.decoder.coarse_head.weight.mul_(ALPHA_HEAD_GAIN)
        adam.decoder.fine_head.weight.mul_(ALPHA_HEAD_GAIN)
    return {
        "adam": save_weights(adam, folder / "adam.safetensors", "adam-tiny"),
        "msgvim": save_weights(build_model("msgvim-tiny"), folder / "msgvim.safetensors", "msgvim-tiny"),
    }


# ------------------------------------------------------------------------------------ rotation
def _encode(path: Path, frames: list[np.ndarray], rotation: int = 0, hflip: bool = False) -> Path:
    """Lossless H.264 (RGB, qp 0) of ``frames`` as stored, with a display matrix unless upright."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=RATE, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        if rotation or hflip:
            stream.set_display_rotation(rotation, hflip=hflip)
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def _stored(upright: np.ndarray, rotation: int, hflip: bool = False) -> np.ndarray:
    """What a camera stores for a display matrix of ``rotation`` degrees counter-clockwise (then an
    optional mirror) to show ``upright``: the inverse of the display transform."""
    return np.ascontiguousarray(np.rot90(upright[:, ::-1] if hflip else upright, k=-rotation // 90))


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("hflip", [False, True])
def test_frames_come_upright_whatever_the_display_matrix(tmp_path: Path, rotation: int, hflip: bool) -> None:
    upright = [_frame(t) for t in range(3)]
    path = _encode(tmp_path / "phone.mp4", [_stored(f, rotation, hflip) for f in upright], rotation, hflip)
    with av.open(str(path)) as container:  # the matrix is in the file, as a phone writes it
        first = next(container.decode(video=0))
        assert (first.side_data.get("DISPLAYMATRIX") is not None) == bool(rotation or hflip)
        assert hflip or first.rotation % 360 == rotation
    with open_frames(path) as reader:
        assert (reader.info.width, reader.info.height) == (W, H)
        frames = [frame.image for frame in reader]
    assert reader.info.orientation.transpose == (rotation % 180 == 90)
    np.testing.assert_array_equal(np.stack(frames), np.stack(upright))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_rotated_video_mattes_as_its_upright_twin(tmp_path: Path, weights, rotation: int, capsys) -> None:
    upright = [_frame(t) for t in range(N)]
    plain = _encode(tmp_path / "upright.mp4", upright)
    phone = _encode(tmp_path / "phone.mp4", [_stored(f, rotation) for f in upright], rotation)
    before = _hashes(plain, phone)
    common = ["--checkpoint", str(weights["adam"]), "--outputs", "alpha,composite", "--format", "png"]
    assert _matte(capsys, str(plain), "--out", str(tmp_path / "a"), *common)[0] == 0
    assert _matte(capsys, str(phone), "--out", str(tmp_path / "b"), *common)[0] == 0
    alphas = [np.stack([read_grey_u8(p) for p in list_frames(tmp_path / o / "alpha")]) for o in "ab"]
    assert alphas[0].shape == (N, H, W)  # the displayed size
    np.testing.assert_array_equal(alphas[1], alphas[0])
    composite = read_channels(list_frames(tmp_path / "b" / "composite")[0])
    assert composite.shape == (H, W, 3)
    assert _hashes(plain, phone) == before
    if rotation == 90:
        # the model is not rotation-invariant: the stored (sideways) frames give another matte
        sideways = _encode(tmp_path / "sideways.mp4", [_stored(f, rotation) for f in upright])
        assert _matte(capsys, str(sideways), "--out", str(tmp_path / "c"), *common)[0] == 0
        turned = np.stack([np.rot90(read_grey_u8(p)) for p in list_frames(tmp_path / "c" / "alpha")])
        assert np.abs(turned.astype(int) - alphas[0]).max() > 10


def test_a_mp4_output_of_a_rotated_video_is_upright_at_the_displayed_size(tmp_path: Path, weights) -> None:
    phone = _encode(tmp_path / "phone.mp4", [_stored(_frame(t), 270) for t in range(3)], 270)
    out = tmp_path / "alpha.mp4"
    assert (
        main(
            [
                "matte",
                str(phone),
                "--out",
                str(out),
                "--outputs",
                "alpha",
                "--checkpoint",
                str(weights["adam"]),
            ]
        )
        == 0
    )
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height, frame.rotation) == (W, H, 0)


def test_masks_of_a_rotated_video_are_drawn_on_the_displayed_frames(tmp_path: Path, weights, capsys) -> None:
    phone = _encode(tmp_path / "phone.mp4", [_stored(_frame(t), 90) for t in range(3)], 90)
    write_image(tmp_path / "upright.png", (_frame(0)[..., 0] > 200).astype(np.uint8) * 255)
    write_image(tmp_path / "sideways.png", np.zeros((W, H), np.uint8))
    before = _hashes(phone, tmp_path / "upright.png", tmp_path / "sideways.png")
    adam = ("--checkpoint", str(weights["adam"]), "--outputs", "alpha", "--format", "png")
    code, error = _matte(
        capsys, str(phone), "--out", str(tmp_path / "a"), "--first-mask", str(tmp_path / "upright.png"), *adam
    )
    assert code == 0, error
    code, error = _matte(
        capsys,
        str(phone),
        "--out",
        str(tmp_path / "b"),
        "--first-mask",
        str(tmp_path / "sideways.png"),
        *adam,
    )
    assert code == 2
    _one_error(error, rf"^\S*sideways\.png: mask size {H}x{W} does not fit frames of {W}x{H}")
    assert _hashes(phone, tmp_path / "upright.png", tmp_path / "sideways.png") == before


def test_orientation_of_each_matrix() -> None:
    image = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(Orientation(True, True, False).apply(image), np.rot90(image))
    np.testing.assert_array_equal(Orientation(True, False, True).apply(image), np.rot90(image, -1))
    np.testing.assert_array_equal(Orientation(False, True, True).apply(image), np.rot90(image, 2))
    assert Orientation(True).displayed_size(3, 2) == (2, 3)


# ------------------------------------------------------------------------------- frame folders
def _write_av(path: Path, planes: list[np.ndarray], pix_fmt: str, codec: str) -> Path:
    """One image through FFmpeg's encoder ``codec``, its planes given as arrays (float EXR, 16-bit
    grey-with-alpha PNG: formats Pillow does not write)."""
    height, width = planes[0].shape[:2]
    frame = av.VideoFrame(width, height, pix_fmt)
    for plane, values in zip(frame.planes, planes, strict=True):
        row = values.reshape(height, -1).view(np.uint8)
        np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)[:, : row.shape[1]] = row
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream(codec, rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _srgb(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve, for the expected 8-bit values of linear (EXR) input."""
    linear = np.clip(linear, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


LEVELS = np.array([[0, 257, 32768, 40000], [51400, 65280, 65534, 65535]], np.uint16)  # (2, 4) 16-bit
TOP_BYTES = (LEVELS >> 8).astype(np.uint8)  # 0, 1, 128, 156 / 200, 255, 255, 255


def _image_kinds(folder: Path) -> dict[str, tuple[Path, np.ndarray, int | None]]:
    """One file of every kind: ``kind -> (path, expected (H, W, 3) uint8 RGB, the lowest 8-bit alpha or
    None without an alpha channel)``."""
    folder.mkdir(parents=True, exist_ok=True)
    grey = np.repeat(TOP_BYTES[..., None], 3, axis=-1)
    rgb16 = np.stack([LEVELS, 65535 - LEVELS, LEVELS // 2], -1)
    kinds = {}
    Image.fromarray(LEVELS).save(folder / "grey16.png")
    kinds["grey16.png"] = (folder / "grey16.png", grey, None)
    _write_av(folder / "rgb16.png", [rgb16.astype(">u2")], "rgb48be", "png")
    rgb16_top = np.stack(
        [TOP_BYTES, ((65535 - LEVELS) >> 8).astype(np.uint8), (LEVELS // 2 >> 8).astype(np.uint8)], -1
    )
    kinds["rgb16.png"] = (folder / "rgb16.png", rgb16_top, None)
    ya = np.stack([LEVELS, np.full_like(LEVELS, 30000)], -1).astype(">u2")
    _write_av(folder / "grey_alpha16.png", [ya], "ya16be", "png")
    kinds["grey_alpha16.png"] = (folder / "grey_alpha16.png", grey, 30000 >> 8)
    Image.fromarray(np.stack([TOP_BYTES, np.full_like(TOP_BYTES, 255)], -1), "LA").save(
        folder / "grey_alpha.png"
    )
    kinds["grey_alpha.png"] = (folder / "grey_alpha.png", grey, 255)  # opaque: nothing to say
    palette = Image.fromarray(np.arange(8, dtype=np.uint8).reshape(2, 4), "P")
    palette.putpalette([v for i in range(256) for v in (i * 30 % 256, 255 - i, 7)])
    palette.save(folder / "palette.png", transparency=2)
    indices = np.arange(8).reshape(2, 4)
    kinds["palette.png"] = (
        folder / "palette.png",
        np.stack([indices * 30 % 256, 255 - indices, np.full_like(indices, 7)], -1).astype(np.uint8),
        0,
    )
    tifffile.imwrite(folder / "rgb16.tif", rgb16, photometric="rgb")
    kinds["rgb16.tif"] = (folder / "rgb16.tif", rgb16_top, None)
    linear = (LEVELS / 65535).astype(np.float32) * 1.5  # past 1: highlights clip to white
    tifffile.imwrite(folder / "float.tif", np.stack([linear] * 3, -1), photometric="rgb")
    expected_float = np.repeat(np.round(_srgb(linear) * 255).astype(np.uint8)[..., None], 3, -1)
    kinds["float.tif"] = (folder / "float.tif", expected_float, None)
    # gbrp plane order: green, blue, red
    _write_av(folder / "linear.exr", [linear / 2, linear / 4, linear], "gbrpf32le", "exr")
    expected_exr = np.stack([np.round(_srgb(linear * f) * 255) for f in (1, 0.5, 0.25)], -1).astype(np.uint8)
    kinds["linear.exr"] = (folder / "linear.exr", expected_exr, None)
    return kinds


def test_every_image_type_reads_at_its_true_values(tmp_path: Path) -> None:
    for kind, (path, expected, alpha) in _image_kinds(tmp_path).items():
        channels = read_channels(path)
        assert channels.dtype == np.uint8 and channels.shape[:2] == LEVELS.shape, kind
        colour = channels[..., : 3 if channels.shape[-1] >= 3 else 1]
        np.testing.assert_array_equal(np.broadcast_to(colour, expected.shape), expected, err_msg=kind)
        assert (channels[..., -1].min() if channels.shape[-1] in (2, 4) else None) == alpha, kind
    # masks and alphas go through the same reading: a 16-bit alpha keeps its top byte, never clips
    np.testing.assert_array_equal(read_grey_u8(tmp_path / "grey16.png"), TOP_BYTES)


def test_frames_sort_by_number_and_two_names_for_one_frame_are_refused(tmp_path: Path, capsys) -> None:
    frames = tmp_path / "frames"
    for t in (1, 2, 3, 10, 11, 12):
        write_image(frames / f"frame_{t}.png", np.full((8, 8, 3), t, np.uint8))
    assert [p.stem for p in list_frames(frames)] == [f"frame_{t}" for t in (1, 2, 3, 10, 11, 12)]
    with open_frames(frames) as reader:
        assert [int(f.image[0, 0, 0]) for f in reader] == [1, 2, 3, 10, 11, 12]
    write_image(frames / "frame_01.png", np.zeros((8, 8, 3), np.uint8))
    before = _hashes(frames)
    code, error = _matte(capsys, str(frames), "--out", str(tmp_path / "out"))
    assert code == 2
    _one_error(error, r"^\S*frame_1\.png: names the same frame as frame_01\.png")
    assert _hashes(frames) == before and not (tmp_path / "out").exists()


def test_a_folder_of_each_image_type_mattes_and_keeps_its_names(tmp_path: Path, weights, capsys) -> None:
    for kind, (path, _, alpha) in _image_kinds(tmp_path / "kinds").items():
        frames = tmp_path / kind.replace(".", "_")
        frames.mkdir()
        for t in range(3):  # frames named as a camera or an editor names them
            (frames / f"shot_{t}{path.suffix}").write_bytes(path.read_bytes())
        before = _hashes(frames)
        out = tmp_path / "out" / kind
        code, error = _matte(
            capsys, str(frames), "--out", str(out), "--checkpoint", str(weights["adam"]), "--format", "png"
        )
        assert code == 0, error
        if alpha is not None and alpha < 255:  # said once per run, not once per frame
            notice = f"{frames / f'shot_0{path.suffix}'}: the frames' alpha channel is ignored"
            assert error == f"vidmatte: warning: {notice} (they are matted as RGB)\n"
        else:
            assert error == ""
        for output in ("alpha", "composite"):
            assert [p.name for p in list_frames(out / output)] == ["shot_0.png", "shot_1.png", "shot_2.png"]
        assert _hashes(frames) == before


def test_a_matted_vm_clip_is_scored_against_its_ground_truth_without_renaming(
    tmp_path: Path, weights, capsys
) -> None:
    """The VM benchmark layout (``<subset>/<clip>/{com,pha,fgr}/0000.png``): matte ``com`` into the
    prediction tree, then ``vidmatte eval`` pairs it with ``pha`` and ``fgr`` by name."""
    clip = tmp_path / "true" / "videomatte_motion" / "0000"
    rng = np.random.default_rng(0)
    for t in range(3):
        write_image(clip / "com" / f"{t:04d}.png", _frame(t))
        write_image(clip / "pha" / f"{t:04d}.png", rng.random((H, W)))
        write_image(clip / "fgr" / f"{t:04d}.png", rng.random((H, W, 3)))
    before = _hashes(tmp_path / "true")
    predicted = tmp_path / "pred" / "videomatte_motion" / "0000"
    args = ["--out", str(predicted), "--outputs", "alpha,foreground", "--format", "png"]
    code, error = _matte(capsys, str(clip / "com"), *args, "--checkpoint", str(weights["adam"]))
    assert code == 0, error
    assert [p.name for p in list_frames(predicted / "alpha")] == ["0000.png", "0001.png", "0002.png"]
    report = tmp_path / "scores.json"
    pred, true = str(tmp_path / "pred"), str(tmp_path / "true")
    assert main(["eval", "--pred", pred, "--true", true, "--workers", "1", "--json", str(report)]) == 0
    scores = json.loads(report.read_text())
    assert set(scores["clips"]) == {"videomatte_motion/0000"}
    assert scores["clips"]["videomatte_motion/0000"]["pha_mad"] > 0
    assert "fgr_mad" in scores["clips"]["videomatte_motion/0000"]
    assert _hashes(tmp_path / "true") == before


# ------------------------------------------------------------------------------------ truncation
def _encode_container(path: Path, frames: int, codec: str, audio_seconds: float = 0.0) -> Path:
    """A video of ``frames`` frames in ``path``'s container; an audio track of ``audio_seconds`` if any."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=RATE)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        sound = None
        if audio_seconds:
            sound = container.add_stream("libopus", rate=48000)
            sound.layout = "mono"
        for t in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(_frame(t), format="rgb24")))
        container.mux(stream.encode(None))
        if sound is not None:
            silence = np.zeros((1, 960), np.float32)
            for start in range(0, int(48000 * audio_seconds), 960):
                chunk = av.AudioFrame.from_ndarray(silence, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


@pytest.mark.parametrize(("name", "codec"), [("cut.mkv", "libx264"), ("cut.webm", "libvpx-vp9")])
def test_a_cut_short_matroska_or_webm_is_truncated(tmp_path: Path, weights, name: str, codec: str, capsys):
    whole = _encode_container(tmp_path / f"whole{Path(name).suffix}", 20, codec)
    with av.open(str(whole)) as container:
        assert container.streams.video[0].frames == 0  # no frame count stored: only a duration
    with av.open(str(whole)) as container:
        starts = sorted(packet.pos for packet in container.demux(video=0) if packet.size)
    cut = tmp_path / name
    cut.write_bytes(whole.read_bytes()[: starts[10]])  # half of the frames
    with open_frames(whole) as reader:
        assert len(list(reader)) == 20 and reader.truncation is None
    before = _hashes(cut)
    out = tmp_path / "out"
    code, error = _matte(capsys, str(cut), "--out", str(out), "--checkpoint", str(weights["adam"]))
    assert code == 2
    _one_error(
        error,
        rf"^\S*{name}: truncated video: \d+ frames decodable, [\d.]+ s of the 0\.80 s the file declares",
    )
    assert not out.exists() or not any(out.rglob("*.*"))
    code, error = _matte(
        capsys, str(cut), "--out", str(out), "--checkpoint", str(weights["adam"]), "--accept-truncated"
    )
    assert code == 0
    assert re.fullmatch(
        rf"vidmatte: warning: \S*{name}: truncated video, (\d+) frames decodable, .*\n", error
    )
    decoded = int(re.search(r"video, (\d+) frames", error).group(1))
    assert 0 < decoded < 20
    with av.open(str(out / "alpha.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == decoded
    assert _hashes(cut) == before


def test_audio_longer_than_the_video_is_no_truncation(tmp_path: Path) -> None:
    path = _encode_container(tmp_path / "long_audio.mkv", 10, "libx264", audio_seconds=2.0)
    with av.open(str(path)) as container:
        assert container.duration / 1e6 > 1.9  # the file lasts as long as its audio
    with open_frames(path) as reader:
        assert len(list(reader)) == 10 and reader.truncation is None
    assert count_frames(path) == 10


# ------------------------------------------------------------------------------ MSG-VIM guidance
def _blob_masks(frames: int, instances: int) -> np.ndarray:
    """``(instances, frames, H, W)`` bool: vertical bands, one per instance."""
    masks = np.zeros((instances, frames, H, W), bool)
    for index in range(instances):
        masks[index, :, 8:40, 4 + 8 * index : 10 + 8 * index] = True
    return masks


def _tracks(path: Path, masks: np.ndarray, video_id: int = 1) -> Path:
    tracks = [Track(video_id, 1, 1.0, [encode_rle(frame) for frame in instance]) for instance in masks]
    write_ytvis_json(path, tracks)
    return path


GUIDANCE_CASES = {
    # case: (input, masks made by the lambda, the message)
    "no track": (
        "clip.mp4",
        lambda d: _tracks(d / "none.json", _blob_masks(N, 0)),
        r"none\.json: no track for clip\.mp4, so no instance to matte",
    ),
    "no instance folder": (
        "clip.mp4",
        lambda d: (d / "empty").mkdir() or d / "empty",
        r"empty: no instance folder",
    ),
    "tracks past the end": (
        "clip.mp4",
        lambda d: _tracks(d / "long.json", _blob_masks(N + 3, 2)),
        rf"long\.json: track 0 has {N + 3} frames, the video {N}",
    ),
    "tracks past the end of a mkv": (
        "clip.mkv",
        lambda d: _tracks(d / "long.json", _blob_masks(N + 3, 2)),
        rf"long\.json: track 0 has {N + 3} frames, the video {N}",
    ),
    "png past the end": (
        "clip.mp4",
        lambda d: _png_masks(d / "masks", N + 2),
        rf"masks/a/{N:03d}\.png: mask of frame {N}, the video has {N} frames",
    ),
    "track of another size": (
        "clip.mp4",
        lambda d: _tracks(d / "small.json", _resized_last(_blob_masks(N, 2))),
        rf"small\.json track 1 frame {N - 1}: mask size 32x24 does not fit frames of {W}x{H}",
    ),
    "png of another size": (
        "clip.mp4",
        lambda d: _png_masks(d / "masks", N, size=(24, 32)),
        r"masks/a/000\.png: mask size 32x24 does not fit frames of 64x48",
    ),
}


def _png_masks(folder: Path, frames: int, size: tuple[int, int] = (H, W)) -> Path:
    for index, name in enumerate("ab"):
        for t in range(frames):
            mask = np.zeros(size, np.uint8)
            mask[4:20, 2 + 8 * index : 8 + 8 * index] = 255
            write_image(folder / name / f"{t:03d}.png", mask)
    return folder


def _resized_last(masks: np.ndarray) -> list[list[np.ndarray]]:
    """The masks, with the last frame of the last instance at half size (a corrupt tail)."""
    frames = [list(instance) for instance in masks]
    frames[-1][-1] = frames[-1][-1][::2, ::2]
    return frames


@pytest.mark.parametrize("case", list(GUIDANCE_CASES))
def test_guidance_is_refused_before_any_frame_is_matted(
    tmp_path: Path, weights, case: str, capsys, monkeypatch
) -> None:
    name, make, message = GUIDANCE_CASES[case]
    clip = (
        _encode(tmp_path / name, [_frame(t) for t in range(N)])
        if name.endswith("mp4")
        else (_encode_container(tmp_path / name, N, "libx264"))
    )
    masks = make(tmp_path)
    before = _hashes(clip, masks)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the guidance was checked")

    monkeypatch.setattr(video_module, "load_engine", no_model)
    out = tmp_path / "out"
    msgvim = ("--model", "msgvim", "--masks", str(masks), "--checkpoint", str(weights["msgvim"]))
    code, error = _matte(capsys, str(clip), "--out", str(out), *msgvim)
    assert code == 2
    _one_error(error, message)
    assert not out.exists()
    assert _hashes(clip, masks) == before


def test_instances_go_through_the_network_together_as_they_would_one_by_one() -> None:
    torch.manual_seed(0)
    model = msgvim_tiny()
    for module in model.modules():  # non-zero residual branches, so that a difference shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
    rng = np.random.default_rng(0)
    masks = _blob_masks(8, 5)
    references = np.stack([masks[[j for j in range(5) if j != i]].any(0) for i in range(5)])
    prepare_network(model)
    together = MsgVimSession(model, carry_state=True)
    one_by_one = MsgVimSession(model, carry_state=True, instance_batch=1)
    for start in (0, 4):  # two chunks, the temporal state carried between them
        rgb = rng.random((4, H, W, 3)).astype(np.float32)
        chunk = (rgb, masks[:, start : start + 4], references[:, start : start + 4])
        batched, looped = together(*chunk), one_by_one(*chunk)
        assert batched.shape == (5, 4, H, W) and batched.std() > 1e-3
        assert np.abs(batched - looped).max() < 1e-5
