"""No silent damage through `vidmatte matte`: outputs locked against concurrent runs, never the input,
never replaced without --overwrite, SIGTERM handled like Ctrl-C, interrupted batches summarised, no empty
folders left by a failure, refused ratios, AVI timestamps, and error advice the command line can follow.

Every refusal is checked through the command line: its exit code, its one line, and that no input or
earlier output changed (hashes of every file before and after).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidmatte import build_model
from vidmatte.cli import main
from vidmatte.inference.batch import LOCK_NAME, SUMMARY_NAME
from vidmatte.io.frames import write_image
from vidmatte.io.lock import OutputLock, lock_path
from vidmatte.io.masks import Track, encode_rle, write_ytvis_json

H, W = 24, 32


def clip(path: Path, frames: int = 6, size: tuple[int, int] = (W, H), **stream: object) -> Path:
    """A small H.264 video of a bright bar sweeping over a gradient; ``stream`` sets the stream's rate,
    codec options and B-frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    rate = stream.pop("rate", 10)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast", **stream})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            image = np.tile(np.linspace(20, 140, width, dtype=np.uint8)[None, :, None], (height, 1, 3))
            image[:, (3 * t) % width] = 240
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
    return path


def hashes(*roots: Path) -> dict[str, str]:
    """sha256 of every file under (or at) ``roots``, hidden ones included."""
    files = [p for root in roots for p in ([root] if root.is_file() else sorted(root.rglob("*")))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def hidden(root: Path) -> list[str]:
    """Hidden entries (partial outputs, locks) under ``root``, except a batch's ledger."""
    return sorted(
        str(p) for p in root.rglob(".*") if p.exists() and not p.name.startswith(".vidmatte-ledger")
    )


def frame_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as container:
        return [Fraction(f.pts) * f.time_base for f in container.decode(video=0)]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("vidmatte: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.removeprefix("vidmatte: error: ").rstrip("\n")


def matte(tiny_weights: dict[str, Path], source: Path, out: Path, *extra: str, model: str = "adam") -> int:
    argv = ["matte", str(source), "--out", str(out), "--checkpoint", str(tiny_weights[model]), *extra]
    return main([*argv, "--model", model] if model != "adam" else argv)


# ----------------------------------------------------------------------------------------- locks
@pytest.mark.slow
def test_two_runs_on_one_out_at_once_one_writes_the_other_is_refused(tmp_path: Path, tiny_weights) -> None:
    source = clip(tmp_path / "clip.mp4", frames=300)
    before = hashes(source)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "vidmatte.cli", "matte", str(source), "--out", str(out)]
    command += ["--checkpoint", str(tiny_weights["adam"]), "--outputs", "alpha", "--overwrite"]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"
    ]
    results = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, _, err in results if code == 2)
    assert refused.count("\n") == 1, refused
    holder = next(run.pid for run, (code, _, _) in zip(runs, results, strict=True) if code == 0)
    assert refused.startswith(
        f"vidmatte: error: {out / 'alpha.mp4'}: in use by another vidmatte run (pid {holder} on "
    ), refused
    assert len(frame_times(out / "alpha.mp4")) == 300  # the writer's output is whole
    assert sorted(p.name for p in out.iterdir()) == ["alpha.mp4"]  # no partial file, no lock left
    assert hashes(source) == before


def test_an_output_locked_by_another_run_is_refused_until_released(
    tmp_path: Path, tiny_weights, capsys
) -> None:
    source = clip(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(lock_path(out / "composite.mp4"), out / "composite.mp4"):
        assert matte(tiny_weights, source, out) == 2
        message = one_line_error(capsys)
        assert message.startswith(
            f"{out / 'composite.mp4'}: in use by another vidmatte run (pid {os.getpid()}"
        )
        assert message.endswith("; wait for it to end or give another --out")
        assert hidden(out) == [str(lock_path(out / "composite.mp4"))]  # alpha's lock and partial are gone
        assert list(out.iterdir()) == [lock_path(out / "composite.mp4")]
    assert matte(tiny_weights, source, out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["alpha.mp4", "composite.mp4"]


def test_a_lock_file_left_by_a_killed_run_does_not_block(tmp_path: Path, tiny_weights) -> None:
    source = clip(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    out.mkdir()
    # what SIGKILL leaves: the lock file (no longer locked, the kernel dropped it) and a partial output
    lock_path(out / "alpha.mp4").write_text(json.dumps({"pid": 999999, "host": "h", "started": "x"}))
    (out / ".alpha.999999-0badc0de.partial.mp4").write_bytes(b"half a video")
    assert matte(tiny_weights, source, out, "--outputs", "alpha") == 0
    assert sorted(p.name for p in out.iterdir()) == ["alpha.mp4"]


def test_a_second_batch_on_the_same_folder_is_refused(tmp_path: Path, tiny_weights, capsys) -> None:
    clip(tmp_path / "in" / "a.mp4")
    out = tmp_path / "out"
    out.mkdir()
    with OutputLock(out / LOCK_NAME, out):
        assert matte(tiny_weights, tmp_path / "in", out) == 2
        assert one_line_error(capsys).startswith(f"{out}: in use by another vidmatte run")
        assert list(out.iterdir()) == [out / LOCK_NAME]
    assert matte(tiny_weights, tmp_path / "in", out, "--outputs", "alpha") == 0
    assert sorted(p.name for p in out.iterdir()) == [".vidmatte-ledger.jsonl", "a", SUMMARY_NAME]


# ------------------------------------------------------------------------- inputs and overwriting
def _same_file_cases(root: Path, source: Path) -> dict[str, tuple[Path, list[str]]]:
    (root / "link.mp4").symlink_to(source)
    (root / "linked").symlink_to(root)
    write_image(root / "frames" / "0000.png", np.zeros((H, W, 3), np.uint8))
    return {
        "the same path": (source, []),
        "another spelling": (root / "." / "sub" / ".." / source.name, []),
        "a link to the input": (root / "link.mp4", []),
        "through a linked folder": (root / "linked" / source.name, []),
        "the background video": (root / "bg.mp4", ["--outputs", "composite", "--background"]),
    }


@pytest.mark.parametrize(
    "case",
    [
        "the same path",
        "another spelling",
        "a link to the input",
        "through a linked folder",
        "the background video",
        "the input folder",
    ],
)
def test_an_output_that_is_an_input_is_refused(tmp_path: Path, tiny_weights, case: str, capsys) -> None:
    source = clip(tmp_path / "clip.mp4")
    clip(tmp_path / "bg.mp4")
    (tmp_path / "sub").mkdir()
    cases = _same_file_cases(tmp_path, source)
    if case == "the input folder":
        source, out, extra = tmp_path / "frames", tmp_path / "frames", ["--format", "png"]
        named = tmp_path / "frames"
    else:
        out, extra = cases[case]
        extra = [*extra, str(out)] if extra else ["--outputs", "alpha"]
        named = tmp_path / "bg.mp4" if case == "the background video" else source
    before = hashes(tmp_path)
    assert matte(tiny_weights, source, out, *extra, "--overwrite") == 2
    assert one_line_error(capsys) == f"{out}: is the input {named}; give another --out"
    assert hashes(tmp_path) == before


def test_existing_outputs_are_kept_unless_overwrite(tmp_path: Path, tiny_weights, capsys) -> None:
    source = clip(tmp_path / "clip.mp4")
    source_hash = hashes(source)
    out = tmp_path / "out"
    assert matte(tiny_weights, source, out, "--outputs", "alpha") == 0
    capsys.readouterr()
    before = hashes(tmp_path)
    # alpha exists, composite does not: nothing is written, not even the composite
    assert matte(tiny_weights, source, out, "--outputs", "composite,alpha") == 2
    assert one_line_error(capsys) == f"{out / 'alpha.mp4'}: exists already; --overwrite replaces it"
    assert hashes(tmp_path) == before and sorted(p.name for p in out.iterdir()) == ["alpha.mp4"]
    single = tmp_path / "matte.mp4"
    single.write_bytes(b"the user's own file")
    assert matte(tiny_weights, source, single, "--outputs", "alpha") == 2
    assert one_line_error(capsys) == f"{single}: exists already; --overwrite replaces it"
    assert single.read_bytes() == b"the user's own file"
    inode = (out / "alpha.mp4").stat().st_ino
    assert matte(tiny_weights, source, out, "--outputs", "alpha,composite", "--overwrite") == 0
    assert (out / "alpha.mp4").stat().st_ino != inode  # replaced by a new file
    assert sorted(p.name for p in out.iterdir()) == ["alpha.mp4", "composite.mp4"]
    assert hashes(source) == source_hash


def test_help_shows_overwrite(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["matte", "--help"])
    assert "--overwrite" in capsys.readouterr().out


# -------------------------------------------------------------------------------------- signals
class _Signalling:
    """An engine that sends ``signum`` to its own process when it mattes frame ``at`` (counted over every
    video it mattes), as a user or a scheduler would."""

    def __init__(self, engine, signum: int, at: int) -> None:
        self.settings = engine.settings
        self._engine = engine
        self._signum = signum
        self._at = at
        self.frames = 0

    def adam_online(self, first_mask, downsample_ratio, segmentor=None):
        matter = self._engine.adam_online(first_mask, downsample_ratio, segmentor)

        def step(frame):
            self.frames += 1
            if self.frames == self._at:
                os.kill(os.getpid(), self._signum)
            return matter(frame)

        return step


@pytest.fixture
def signalling(monkeypatch: pytest.MonkeyPatch):
    """``signalling(signum, at)`` makes every engine loaded from now on a :class:`_Signalling` one."""
    from vidmatte.inference import engine as engines
    from vidmatte.inference import video

    def install(signum: int, at: int) -> None:
        load = engines.load_engine

        def load_signalling(settings, backend="torch"):
            return _Signalling(load(settings, backend), signum, at)

        monkeypatch.setattr(engines, "load_engine", load_signalling)
        monkeypatch.setattr(video, "load_engine", load_signalling)

    return install


def test_sigterm_stops_a_run_like_ctrl_c(tmp_path: Path, tiny_weights, signalling, capsys) -> None:
    source = clip(tmp_path / "clip.mp4", frames=20)
    before = hashes(source)
    handler = signal.getsignal(signal.SIGTERM)
    signalling(signal.SIGTERM, at=5)
    out = tmp_path / "deep" / "out"
    assert matte(tiny_weights, source, out, "--outputs", "alpha,rgba", "--format", "webm") == 143
    assert capsys.readouterr().err == "vidmatte: terminated\n"
    assert not (tmp_path / "deep").exists()  # no output, no partial file, no lock, no folder it made
    assert hashes(source) == before
    assert signal.getsignal(signal.SIGTERM) is handler  # the command put the handler back


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_batch_writes_its_summary(
    tmp_path: Path, tiny_weights, signalling, monkeypatch, signum: int, code: int, capsys
) -> None:
    for name in ("a", "b", "c"):
        clip(tmp_path / "in" / f"{name}.mp4")
    signalling(signum, at=6 + 3)  # in b, a's 6 frames done
    out = tmp_path / "out"
    assert matte(tiny_weights, tmp_path / "in", out, "--outputs", "alpha") == code
    rows = json.loads((out / SUMMARY_NAME).read_text())
    assert [(r["item"], r["status"]) for r in rows["items"]] == [("a", "done"), ("b", "interrupted")]
    assert (rows["done"], rows["interrupted"]) == (1, 1)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        ".vidmatte-ledger.jsonl",
        "a/alpha.mp4",
        SUMMARY_NAME,
    ]
    assert capsys.readouterr().err == {130: "vidmatte: interrupted\n", 143: "vidmatte: terminated\n"}[code]
    monkeypatch.undo()  # the rerun runs to its end: it skips a and does the rest
    assert matte(tiny_weights, tmp_path / "in", out, "--outputs", "alpha") == 0
    statuses = {r["item"]: r["status"] for r in json.loads((out / SUMMARY_NAME).read_text())["items"]}
    assert statuses == {"a": "skipped", "b": "done", "c": "done"}


# ------------------------------------------------------------------------------- failed MSG-VIM
def _two_people(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A clip, a mask folder for two people (``p0``, ``p1``) and the output folder to matte them into."""
    source = clip(tmp_path / "clip.mp4")
    masks = tmp_path / "masks"
    for person in ("p0", "p1"):
        write_image(masks / person / "0.png", np.full((H, W), 255, np.uint8))
    return source, masks, tmp_path / "out"


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_msgvim_run_leaves_no_folder_it_made(
    tmp_path: Path, tiny_weights, monkeypatch, existing: bool, capsys
) -> None:
    from vidmatte.io.writers import _VideoSink

    source, masks, out = _two_people(tmp_path)
    if existing:  # a user's folder, with a file of theirs and an empty sub-folder
        (out / "notes").mkdir(parents=True)
        (out / "keep.txt").write_text("mine")
    before = hashes(tmp_path)
    written = iter(range(8))

    def fills_up(self, frame) -> None:
        if next(written, None) is None:
            raise OSError(28, "No space left on device")
        original(self, frame)

    original = _VideoSink.write
    monkeypatch.setattr(_VideoSink, "write", fills_up)
    assert matte(tiny_weights, source, out, "--masks", str(masks), "--outputs", "alpha", model="msgvim") == 2
    assert "cannot write (No space left on device)" in one_line_error(capsys)
    assert hashes(tmp_path) == before
    if existing:
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "notes"]
    else:
        assert not out.exists()


def test_an_output_that_fails_as_it_closes_takes_the_finished_ones_with_it(
    tmp_path: Path, tiny_weights, monkeypatch, capsys
) -> None:
    """The last instance's file fails to close after the first one's closed fine: neither appears."""
    from vidmatte.io.writers import _VideoSink

    source, masks, out = _two_people(tmp_path)
    before = hashes(tmp_path)
    closed = iter(range(1))

    def second_fails(self) -> None:
        if next(closed, None) is None:
            raise OSError(28, "No space left on device")
        original(self)

    original = _VideoSink.close
    monkeypatch.setattr(_VideoSink, "close", second_fails)
    assert matte(tiny_weights, source, out, "--masks", str(masks), "--outputs", "alpha", model="msgvim") == 2
    assert "cannot write (No space left on device)" in one_line_error(capsys)
    assert hashes(tmp_path) == before
    assert not out.exists()


# ----------------------------------------------------------------------------- options checked
@pytest.mark.parametrize("option", [("--precision", "fp16"), ("--dtype", "float16")])  # the old spelling too
def test_float16_on_a_cpu_warns(tmp_path: Path, tiny_weights, capsys, option) -> None:
    source = clip(tmp_path / "clip.mp4", frames=2)
    assert matte(tiny_weights, source, tmp_path / "out", "--outputs", "alpha", *option) == 0
    assert capsys.readouterr().err == (
        "vidmatte: warning: --precision fp16 on a CPU is much slower than fp32 (CPUs have few "
        "half-precision kernels); the default is auto\n"
    )


def test_a_downsample_ratio_that_leaves_too_few_pixels_is_refused(
    tmp_path: Path, tiny_weights, capsys
) -> None:
    source = clip(tmp_path / "wide.mp4", frames=2, size=(320, 180))
    before = hashes(tmp_path)
    for ratio in ("0.001", "0.355"):
        assert matte(tiny_weights, source, tmp_path / "out", "--downsample-ratio", ratio) == 2
        assert one_line_error(capsys) == (
            f"{source}: --downsample-ratio {ratio} leaves the network fewer than 64 pixels on the short "
            "side of its 320x180 frames; use 0.356 or more (or auto)"
        )
    assert hashes(tmp_path) == before
    small = clip(tmp_path / "small.mp4", frames=2)  # shorter than 64: only its full size
    assert matte(tiny_weights, small, tmp_path / "out", "--downsample-ratio", "0.9") == 2
    assert one_line_error(capsys).endswith("short side of its 32x24 frames; use 1 or more (or auto)")
    assert (
        matte(tiny_weights, source, tmp_path / "out", "--downsample-ratio", "0.356", "--outputs", "alpha")
        == 0
    )


# ----------------------------------------------------------------------------------------- AVI
def test_a_23_976_fps_avi_keeps_its_frame_count_and_rate(tmp_path: Path, tiny_weights) -> None:
    rate = Fraction(24000, 1001)
    # H.264 with B-frames in AVI: FFmpeg's timestamps follow the decoding order, out of order
    source = clip(tmp_path / "clip.avi", frames=30, size=(64, 48), rate=rate, preset="medium")
    with av.open(str(source)) as container:
        assert container.streams.video[0].average_rate == rate
        assert sorted(pts := [f.pts for f in container.decode(video=0)]) != pts  # the trap is there
    assert matte(tiny_weights, source, tmp_path / "out", "--outputs", "alpha,composite") == 0
    for name in ("alpha.mp4", "composite.mp4"):
        with av.open(str(tmp_path / "out" / name)) as container:
            assert container.streams.video[0].average_rate == rate
        assert frame_times(tmp_path / "out" / name) == [t / rate for t in range(30)]


# -------------------------------------------------------------------------------------- advice
def test_error_advice_names_options_the_command_has(tmp_path: Path, tiny_weights, capsys) -> None:
    source = clip(tmp_path / "clip.mp4")
    masks = [encode_rle(np.ones((H, W), bool))] * 6
    write_ytvis_json(tmp_path / "two.json", [Track(1, 1, 0.9, masks), Track(2, 1, 0.9, masks)])
    argv = ("--masks", str(tmp_path / "two.json"))
    assert matte(tiny_weights, source, tmp_path / "out", *argv, model="msgvim") == 2
    assert one_line_error(capsys) == (
        f"{tmp_path / 'two.json'}: tracks of 2 videos (video_id 1, 2) for one video; keep only its tracks "
        "in the file (matte-vim can pick them with --video-id)"
    )
    unnamed = tmp_path / "weights.pt"
    torch.save(build_model("adam-tiny").state_dict(), unnamed)
    assert main(["matte", str(source), "--out", str(tmp_path / "out"), "--checkpoint", str(unnamed)]) == 2
    message = one_line_error(capsys)
    known = "(adam-fast, adam-mnv2, "
    assert message.startswith(f"{unnamed}: the file does not say which model it holds {known}")
    assert message.endswith(
        "; use .safetensors weights that record it (vidmatte train and convert-msgvim write them)"
    )
    vim = ["matte-vim", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--masks", str(tmp_path)]
    assert main([*vim, "--weights", str(unnamed)]) == 2
    assert one_line_error(capsys).endswith("; name it with --model NAME")
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()
