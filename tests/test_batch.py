"""Batch matting: folders and manifests, one output folder per input, resuming, failure isolation,
output names that cannot escape, and shards across two torchrun processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from vidmatte import build_model
from vidmatte.cli import main
from vidmatte.errors import VidmatteError
from vidmatte.inference.batch import LEDGER_NAME, SUMMARY_NAME, output_name, read_items
from vidmatte.io.frames import write_image
from vidmatte.models.loading import save_weights

H, W, FRAMES = 24, 32, 6


def make_video(path: Path, frames: int = FRAMES, shift: int = 0, **options: str) -> Path:
    """A small H.264 clip: a bright square moving over a gradient; ``options`` go to the muxer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for t in range(frames):
            image = np.tile(np.linspace(0, 120, W, dtype=np.uint8)[None, :, None], (H, 1, 3))
            image[6:18, 2 + t + shift : 12 + t + shift] = 230
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def visible_files(root: Path) -> list[str]:
    """Files under ``root`` that look like outputs (hidden partial files and the ledger excluded)."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def summary(out: Path) -> dict[str, dict]:
    return {row["item"]: row for row in json.loads((out / SUMMARY_NAME).read_text())["items"]}


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    return save_weights(build_model("adam-tiny"), folder / "adam.safetensors", "adam-tiny")


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    """``in/a.mp4``, ``in/b.mp4``, ``in/c/`` (a folder of PNG frames) and ``in/bad.mp4`` (text)."""
    folder = tmp_path / "in"
    make_video(folder / "a.mp4")
    make_video(folder / "b.mp4", shift=3)
    for t in range(4):
        write_image(folder / "c" / f"{t:04d}.png", np.full((H, W, 3), 40 * t, np.uint8))
    (folder / "bad.mp4").write_text("not a video\n")
    return folder


def matte(weights: Path, source: Path, out: Path, *extra: str) -> int:
    return main(["matte", str(source), "--out", str(out), "--checkpoint", str(weights), *extra])


def test_a_folder_is_matted_item_by_item_and_a_bad_item_does_not_stop_it(
    videos: Path, tmp_path: Path, weights: Path, capsys
) -> None:
    out = tmp_path / "out"
    assert matte(weights, videos, out, "--outputs", "alpha", "--format", "png") == 1
    captured = capsys.readouterr()
    rows = summary(out)
    assert list(rows) == ["a", "b", "bad", "c"]  # name order, the PNG folder included
    assert [rows[k]["status"] for k in rows] == ["done", "done", "failed", "done"]
    assert [rows[k]["frames"] for k in rows] == [FRAMES, FRAMES, 0, 4]
    assert rows["bad"]["error"].startswith(f"{videos / 'bad.mp4'}: not a readable video")
    assert all(
        set(row) == {"item", "input", "status", "frames", "seconds", "error", "outputs"}
        for row in rows.values()
    )
    assert f"vidmatte: error: {videos / 'bad.mp4'}: not a readable video" in captured.err
    assert "Traceback" not in captured.err
    # PNG frames of a video are numbered; those of a folder keep the folder's names
    expected = [f"{k}/alpha/{t:06d}.png" for k in "ab" for t in range(FRAMES)]
    expected += [f"c/alpha/{t:04d}.png" for t in range(4)]
    assert visible_files(out) == sorted([*expected, SUMMARY_NAME])


def test_a_rerun_skips_completed_items_and_redoes_the_rest(
    videos: Path, tmp_path: Path, weights: Path, capsys
) -> None:
    out = tmp_path / "out"
    matte(weights, videos, out, "--outputs", "alpha")
    first = summary(out)
    alpha_a = (out / "a" / "alpha.mp4").stat().st_mtime_ns
    (out / "b" / "alpha.mp4").unlink()  # an item whose outputs went missing is not complete any more
    make_video(videos / "bad.mp4")  # the failed item has been repaired
    assert matte(weights, videos, out, "--outputs", "alpha") == 0
    rows = summary(out)
    assert {k: r["status"] for k, r in rows.items()} == {
        "a": "skipped",
        "b": "done",
        "bad": "done",
        "c": "skipped",
    }
    assert rows["a"]["seconds"] == first["a"]["seconds"]  # the time of the run that did it
    assert (out / "a" / "alpha.mp4").stat().st_mtime_ns == alpha_a
    # other options give other outputs: nothing is skipped
    assert matte(weights, videos, out, "--outputs", "alpha", "--background", "#000000") == 0
    assert {r["status"] for r in summary(out).values()} == {"done"}
    assert "0 failed" in capsys.readouterr().out


def test_a_torn_ledger_line_only_costs_its_item(videos: Path, tmp_path: Path, weights: Path) -> None:
    out = tmp_path / "out"
    (videos / "bad.mp4").unlink()
    matte(weights, videos, out, "--outputs", "alpha")
    ledger = out / LEDGER_NAME
    lines = ledger.read_text().splitlines()
    ledger.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # killed mid-write
    assert matte(weights, videos, out, "--outputs", "alpha") == 0
    statuses = {k: r["status"] for k, r in summary(out).items()}
    assert statuses == {"a": "skipped", "b": "skipped", "c": "done"}


def test_csv_and_json_manifests_with_per_item_options(tmp_path: Path, weights: Path) -> None:
    clip = make_video(tmp_path / "clips" / "clip.mp4")
    write_image(tmp_path / "clips" / "mask.png", np.zeros((H, W), np.uint8))
    write_image(tmp_path / "clips" / "small.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "items.csv").write_text(
        "input,output,first_mask\nclips/clip.mp4,guided/clip,clips/mask.png\nclips/clip.mp4,own,\n"
        "clips/clip.mp4,wrong,clips/small.png\n"
    )
    out = tmp_path / "out"
    assert matte(weights, tmp_path / "items.csv", out, "--outputs", "alpha", "--format", "png") == 1
    rows = summary(out)
    assert {k: r["status"] for k, r in rows.items()} == {
        "guided/clip": "done",
        "own": "done",
        "wrong": "failed",
    }
    assert rows["wrong"]["error"].startswith(f"{tmp_path / 'clips' / 'small.png'}: mask size 8x8")
    assert len(list((out / "guided" / "clip" / "alpha").iterdir())) == FRAMES
    (tmp_path / "items.json").write_text(
        json.dumps([str(clip), {"input": "clips/clip.mp4", "output": "second"}])
    )
    assert matte(weights, tmp_path / "items.json", tmp_path / "out2", "--outputs", "alpha") == 0
    assert list(summary(tmp_path / "out2")) == ["clip", "second"]
    (tmp_path / "list.txt").write_text(f"# inputs\n\n{clip}\n")
    assert [item.input for item in read_items(tmp_path / "list.txt", out)] == [clip]


@pytest.mark.parametrize(
    "name",
    ["../escape", "/abs/path", "a/../../b", "..", "C:\\evil", "~/home", ".hidden", "summary.json", "./."],
)
def test_output_names_cannot_leave_the_output_folder(
    tmp_path: Path, weights: Path, name: str, capsys
) -> None:
    clip = make_video(tmp_path / "clip.mp4")
    manifest = tmp_path / "items.json"
    manifest.write_text(json.dumps([{"input": str(clip), "output": name}]))
    out = tmp_path / "deep" / "out"
    code = matte(weights, manifest, out)
    err = capsys.readouterr().err
    assert (
        code == 2 and err.startswith(f"vidmatte: error: {manifest} item 1: output") and err.count("\n") == 1
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["clip.mp4", "items.json"]  # nothing was written
    with pytest.raises(VidmatteError):
        output_name(name, "x")
    with pytest.raises(VidmatteError):
        output_name("", "x")  # an empty cell of a manifest means the default name, never this


def test_bad_manifests_are_refused_before_anything_runs(tmp_path: Path, weights: Path, capsys) -> None:
    clip = make_video(tmp_path / "clips" / "a.mp4")
    make_video(tmp_path / "other" / "a.mp4")
    cases = {
        "same.txt": (f"{clip}\n{tmp_path / 'other' / 'a.mp4'}\n", "would both write to 'a'"),
        "nested.json": (
            json.dumps([{"input": str(clip), "output": "x"}, {"input": str(clip), "output": "x/y"}]),
            "both write",
        ),
        "typo.csv": ("input,outptu\nclips/a.mp4,b\n", "unknown field 'outptu'"),
        "noinput.json": (json.dumps([{"output": "b"}]), "item 1: no input path"),
        "dict.json": (json.dumps({"input": str(clip)}), "expected a list of inputs"),
        "broken.json": ("[{", "not a readable JSON file"),
        "empty.txt": ("# nothing\n", "no input in the batch"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        assert matte(weights, tmp_path / name, tmp_path / "out") == 2
        err = capsys.readouterr().err
        assert err.startswith(f"vidmatte: error: {tmp_path / name}") and message in err, (name, err)
        assert not (tmp_path / "out").exists()


def test_the_output_folder_inside_the_input_folder_is_not_an_item(tmp_path: Path, weights: Path) -> None:
    make_video(tmp_path / "a.mp4")
    assert matte(weights, tmp_path, tmp_path / "mattes", "--outputs", "alpha", "--format", "png") == 0
    assert matte(weights, tmp_path, tmp_path / "mattes", "--outputs", "alpha", "--format", "png") == 0
    assert list(summary(tmp_path / "mattes")) == ["a"]


def test_batch_masks_come_per_item(videos: Path, tmp_path: Path, weights: Path, capsys) -> None:
    assert matte(weights, videos, tmp_path / "out", "--first-mask", str(videos / "c" / "0000.png")) == 2
    assert "a batch takes masks per item" in capsys.readouterr().err


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.mark.slow
def test_two_torchrun_processes_share_the_items(videos: Path, tmp_path: Path, weights: Path) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    command = [*TORCHRUN, "-m", "vidmatte.cli", "matte", str(videos), "--out", str(out)]
    result = subprocess.run(
        [*command, "--checkpoint", str(weights), "--outputs", "alpha"],
        env={**env, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr[-3000:]  # bad.mp4 failed, on whichever rank had it
    rows = summary(out)
    assert {k: r["status"] for k, r in rows.items()} == {
        "a": "done",
        "b": "done",
        "bad": "failed",
        "c": "done",
    }
    ledger = [json.loads(line)["item"] for line in (out / LEDGER_NAME).read_text().splitlines()]
    assert sorted(ledger) == ["a", "b", "c"]  # each item matted once, by one rank
    # rank 0 took a and bad, rank 1 b and c; each rank reports its own items
    assert result.stdout.count(": done,") == 3 and result.stdout.count("items: 3 done") == 1
    assert result.stderr.count(f"vidmatte: error: {videos / 'bad.mp4'}") == 1


def test_a_truncated_item_is_recorded_as_such_when_accepted(tmp_path: Path, weights: Path, capsys) -> None:
    whole = make_video(tmp_path / "src" / "whole.mp4", frames=20, movflags="faststart")
    with av.open(str(whole)) as container:
        starts = sorted(p.pos for p in container.demux(video=0) if p.size)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.mp4").write_bytes(whole.read_bytes()[: starts[-8] + 10])
    make_video(tmp_path / "in" / "fine.mp4")
    out = tmp_path / "out"
    assert matte(weights, tmp_path / "in", out, "--outputs", "alpha") == 1  # by default: a failure
    assert summary(out)["cut"]["status"] == "failed" and not (out / "cut" / "alpha.mp4").exists()
    assert matte(weights, tmp_path / "in", out, "--outputs", "alpha", "--accept-truncated") == 0
    rows = summary(out)
    assert rows["cut"]["status"] == "truncated" and 0 < rows["cut"]["frames"] < 20
    assert rows["cut"]["error"].startswith(f"{tmp_path / 'in' / 'cut.mp4'}: truncated video")
    assert f"vidmatte: warning: {tmp_path / 'in' / 'cut.mp4'}: truncated video" in capsys.readouterr().err


@pytest.mark.slow
def test_a_killed_batch_resumes_with_the_items_it_had_not_finished(tmp_path: Path, weights: Path) -> None:
    for name in ("a", "b", "c"):
        make_video(tmp_path / "in" / f"{name}.mp4", frames=150)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "vidmatte.cli", "matte", str(tmp_path / "in"), "--out", str(out)]
    command += ["--checkpoint", str(weights), "--outputs", "alpha"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = out / LEDGER_NAME
    try:
        deadline = time.monotonic() + 120
        while not (ledger.exists() and ledger.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)  # while b is being matted
        process.wait(timeout=30)
    finally:
        process.kill()
    assert [json.loads(line)["item"] for line in ledger.read_text().splitlines()] == ["a"]
    assert not (out / SUMMARY_NAME).exists() and visible_files(out) == ["a/alpha.mp4"]
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    assert {k: r["status"] for k, r in summary(out).items()} == {"a": "skipped", "b": "done", "c": "done"}
    assert sorted(json.loads(line)["item"] for line in ledger.read_text().splitlines()) == ["a", "b", "c"]
    assert visible_files(out) == ["a/alpha.mp4", "b/alpha.mp4", "c/alpha.mp4", SUMMARY_NAME]


def test_weights_that_cannot_load_fail_the_batch_once(videos: Path, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not weights")
    assert matte(broken, videos, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vidmatte: error: {broken}: cannot read weights") and err.count("\n") == 1
    assert visible_files(tmp_path / "out") == []
