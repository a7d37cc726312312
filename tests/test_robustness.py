"""Bad input at the entry points: one line naming the file, a non-zero exit, no traceback unless --debug.

The readers' own bad-input tests live with them (test_io_video.py, test_training_checkpoint.py); these
cover what they leave out, through the command line where a user meets them.
"""

from __future__ import annotations

import errno
import json
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidmatte import build_model, load_model
from vidmatte.cli import main
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import write_image
from vidmatte.io.masks import encode_rle
from vidmatte.models.loading import save_weights


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Exit code and stderr of ``vidmatte argv``."""
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, path: Path | str, message: str = "") -> None:
    assert code != 0
    assert err.startswith(f"vidmatte: error: {path}"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err


# ---------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def adam_tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_weights(
        build_model("adam-tiny"), tmp_path_factory.mktemp("w") / "adam.safetensors", "adam-tiny"
    )


def _truncated(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


BAD_WEIGHTS = {
    "empty safetensors": (lambda d, w: _write(d / "empty.safetensors", b""), "cannot read weights"),
    "text safetensors": (lambda d, w: _write(d / "notes.safetensors", b"hello\n"), "cannot read weights"),
    "truncated safetensors": (lambda d, w: _truncated(w, d / "cut.safetensors"), "cannot read weights"),
    # a header length of 2^62 bytes must be refused, not allocated
    "huge header": (
        lambda d, w: _write(d / "huge.safetensors", struct.pack("<Q", 2**62) + b"{}"),
        "too large",
    ),
    "empty pickle": (lambda d, w: _write(d / "empty.pt", b""), "refused, not a plain tensor file"),
    "text pickle": (lambda d, w: _write(d / "notes.pt", b"hello\n"), "refused, not a plain tensor file"),
    "truncated pickle": (lambda d, w: _truncated(_saved_pt(d / "whole.pt"), d / "cut.pt"), "refused"),
    "pickle of a list": (
        lambda d, w: _saved_pt(d / "list.pt", [torch.zeros(1)]),
        "expected a dict of tensors",
    ),
    "directory": (lambda d, w: _mkdir(d / "dir.safetensors"), "no such weights file"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _saved_pt(path: Path, value: object = None) -> Path:
    torch.save(build_model("adam-tiny").state_dict() if value is None else value, path)
    return path


@pytest.mark.parametrize("case", list(BAD_WEIGHTS))
def test_unreadable_weights_are_refused_with_one_line(
    tmp_path: Path, adam_tiny_file: Path, case: str
) -> None:
    make, message = BAD_WEIGHTS[case]
    path = make(tmp_path, adam_tiny_file)
    with pytest.raises(VidmatteError, match=message) as caught:
        load_model(path, model="adam-tiny")
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_infinite_weights_are_refused(tmp_path: Path) -> None:
    state = {k: v.clone() for k, v in build_model("adam-tiny").state_dict().items()}
    state["encoder.reduce.weight"].view(-1)[3] = float("-inf")
    torch.save(state, tmp_path / "inf.pt")
    with pytest.raises(VidmatteError, match=r"inf\.pt: non-finite values in encoder\.reduce\.weight"):
        load_model(tmp_path / "inf.pt", model="adam-tiny")


def test_weights_of_the_other_model_through_the_cli(
    tmp_path: Path, adam_tiny_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["matte-vim", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--masks", str(tmp_path)]
    code, err = run_cli(capsys, *argv, "--weights", str(adam_tiny_file))
    assert_one_line_error(code, err, adam_tiny_file, "weights of a AdamModel network, not of MsgVim")
    code, err = run_cli(capsys, *argv, "--weights", str(adam_tiny_file), "--model", "msgvim-tiny")
    assert_one_line_error(code, err, adam_tiny_file, "weights of adam-tiny, not of msgvim-tiny")
    with pytest.raises(VidmatteError):  # --debug: the exception itself, with its traceback
        main(["--debug", *argv, "--weights", str(adam_tiny_file), "--model", "msgvim-tiny"])
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------- matte
H, W, FRAMES = 24, 32, 6


def make_video(path: Path, frames: int = FRAMES, codec: str = "libx264", **options: str) -> Path:
    """A small clip: a bright square moving over a gradient."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height = W, H
        stream.pix_fmt = "yuv420p" if codec == "libx264" else stream.pix_fmt
        for t in range(frames):
            image = np.tile(np.linspace(0, 120, W, dtype=np.uint8)[None, :, None], (H, 1, 3))
            image[6:18, 2 + t : 12 + t] = 230
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def visible_files(root: Path) -> list[Path]:
    """Files under ``root`` that look like outputs (hidden partial files excluded)."""
    if not root.exists():
        return []
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and not any(s.startswith(".") for s in p.relative_to(root).parts)
    ]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    return {
        name: save_weights(build_model(f"{name}-tiny"), folder / f"{name}.safetensors", f"{name}-tiny")
        for name in ("adam", "msgvim")
    }


def _truncated_video(folder: Path) -> Path:
    whole = make_video(folder / "whole.mp4", frames=20, movflags="faststart")
    with av.open(str(whole)) as container:
        starts = sorted(p.pos for p in container.demux(video=0) if p.size)
    cut = folder / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: starts[12] + 10])  # cut inside the 13th packet
    return cut


def _header_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height = W, H
        container.start_encoding()
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(sound.encode(frame))
        container.mux(sound.encode(None))
    return path


def _mixed_sizes(folder: Path) -> Path:
    for t, height in enumerate((H, H, H + 2, H)):
        write_image(folder / f"{t:04d}.png", np.full((height, W, 3), 50 * t, np.uint8))
    return folder


def _masks_folder(folder: Path, frames: int) -> Path:
    for t in range(frames):
        write_image(folder / "person" / f"{t:06d}.png", np.full((H, W), 255 * (t % 2), np.uint8))
    return folder


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _tracks(path: Path, segmentations: list) -> Path:
    return _write(path, json.dumps([{"video_id": 0, "score": 1.0, "segmentations": segmentations}]).encode())


MSGVIM = ("--model", "msgvim")
# case -> (make(folder, clip) -> (input, file named by the error, extra arguments), message)
BAD_MATTE_INPUTS = {
    "missing file": (lambda d, c: (d / "gone.mp4", d / "gone.mp4", ()), "no such file"),
    "empty file": (lambda d, c: (_write(d / "empty.mp4", b""),) * 2 + ((),), "empty file"),
    "text named .mp4": (lambda d, c: (_write(d / "t.mp4", b"hello\n"),) * 2 + ((),), "not a readable video"),
    "truncated video": (lambda d, c: (_truncated_video(d),) * 2 + ((),), "truncated video: 1"),
    "no video stream": (lambda d, c: (_audio_only(d / "sound.mp4"),) * 2 + ((),), "no video stream"),
    "zero frames": (lambda d, c: (_header_only(d / "zero.mkv"),) * 2 + ((),), "video without frames"),
    "mixed sizes": (
        lambda d, c: (_mixed_sizes(d / "frames"), d / "frames" / "0002.png", ()),
        f"frame of {W}x{H + 2} in a folder of {W}x{H}",
    ),
    "png masks for more frames": (
        lambda d, c: (c, d / "masks", (*MSGVIM, "--masks", str(_masks_folder(d / "masks", FRAMES + 3)))),
        f"mask of frame {FRAMES}, the video has {FRAMES} frames",
    ),
    "rle masks for more frames": (
        lambda d, c: (c, d / "vis.json", (*MSGVIM, "--masks", str(_tracks(d / "vis.json", [None] * 9)))),
        "track 0 has 9 frames, the video 6",
    ),
    "rle of another size": (
        lambda d, c: (
            c,
            d / "vis.json",
            (*MSGVIM, "--masks", str(_tracks(d / "vis.json", [encode_rle(np.ones((8, 8), bool))] * FRAMES))),
        ),
        "track 0 frame 0: mask size 8x8 does not fit frames of 32x24",
    ),
    "malformed rle": (
        lambda d, c: (
            c,
            d / "vis.json",
            (
                *MSGVIM,
                "--masks",
                str(_tracks(d / "vis.json", [{"size": [H, W], "counts": [5, 3]}] * FRAMES)),
            ),
        ),
        f"track 0 frame 0: malformed RLE (run lengths sum to 8, not {H}x{W})",
    ),
    "malformed json": (
        lambda d, c: (c, d / "vis.json", (*MSGVIM, "--masks", str(_write(d / "vis.json", b"[{")))),
        "not a readable JSON file",
    ),
    "unwritable output folder": (
        lambda d, c: (c, d / "file.txt", ("--out", str(_write(d / "file.txt", b"x") / "out"))),
        "cannot write there",
    ),
}


@pytest.mark.parametrize("case", list(BAD_MATTE_INPUTS))
def test_bad_matte_input_gives_one_line_and_no_output(
    tmp_path: Path, tiny_weights: dict[str, Path], case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make, message = BAD_MATTE_INPUTS[case]
    clip = make_video(tmp_path / "clip.mp4")
    source, named, extra = make(tmp_path, clip)
    model = "msgvim" if "msgvim" in extra else "adam"
    out = tmp_path / "out"
    argv = ["matte", str(source), "--out", str(out), "--checkpoint", str(tiny_weights[model]), *extra]
    code, err = run_cli(capsys, *argv)
    assert code == 2
    assert_one_line_error(code, err, named, message)
    assert visible_files(out) == []
    if case != "missing file":  # with --debug, the exception and its traceback reach the caller
        with pytest.raises(VidmatteError, match=message.split(":")[0]):
            main(["--debug", *argv])


def test_a_truncated_video_is_matted_as_far_as_it_decodes_when_accepted(
    tmp_path: Path, tiny_weights: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cut = _truncated_video(tmp_path)
    out = tmp_path / "out"
    argv = ["matte", str(cut), "--out", str(out), "--checkpoint", str(tiny_weights["adam"])]
    code, err = run_cli(capsys, *argv, "--outputs", "alpha", "--format", "png", "--accept-truncated")
    assert code == 0
    frames = len(list((out / "alpha").iterdir()))
    assert 0 < frames < 20
    assert err == f"vidmatte: warning: {cut}: truncated video, {frames} of 20 frames decodable\n"


def test_a_disk_that_fills_up_mid_run_leaves_no_output(
    tmp_path: Path, tiny_weights: dict[str, Path], monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vidmatte.io.writers import _VideoSink

    clip = make_video(tmp_path / "clip.mp4")
    written = iter(range(3))
    original = _VideoSink.write

    def fills_up(self, frame) -> None:
        if next(written, None) is None:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, frame)

    monkeypatch.setattr(_VideoSink, "write", fills_up)
    out = tmp_path / "out"
    code, err = run_cli(
        capsys, "matte", str(clip), "--out", str(out), "--checkpoint", str(tiny_weights["adam"])
    )
    assert_one_line_error(code, err, out, "cannot write (No space left on device)")
    assert list(out.rglob("*")) == []  # partial files removed too


@pytest.mark.slow
def test_a_killed_run_leaves_no_complete_looking_output_and_a_rerun_finishes_it(
    tmp_path: Path, tiny_weights: dict[str, Path]
) -> None:
    clip = make_video(tmp_path / "long.mp4", frames=400)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "vidmatte.cli", "matte", str(clip), "--out", str(out)]
    command += ["--checkpoint", str(tiny_weights["adam"]), "--outputs", "alpha,composite"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        # the partial outputs exist once the first frames are on their way
        while not list(out.glob(".*partial*")) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        time.sleep(0.3)
        assert process.poll() is None, "the run ended before it could be killed; make the clip longer"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert list(out.glob(".*partial*")) and visible_files(out) == []
    assert (out / ".alpha.mp4.lock").exists()  # the killed run's lock file, which must not block the rerun
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    # partial files and lock files removed
    assert sorted(p.name for p in out.iterdir()) == ["alpha.mp4", "composite.mp4"]
    with av.open(str(out / "alpha.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 400
