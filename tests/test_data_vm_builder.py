"""Rebuilding the VM benchmark from (tiny, generated) VideoMatte240K-style data."""

from __future__ import annotations

import random
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from vidmatte.cli import main
from vidmatte.data.benchmarks import list_vm_clips
from vidmatte.data.sources import open_source
from vidmatte.data.vm_builder import build_vm_subset, list_videomatte_clips
from vidmatte.errors import VidmatteError

CLIP_FRAMES = 7


def _videomatte(root: Path, clips: int = 3) -> Path:
    """``clips`` clips of CLIP_FRAMES random 20x12 frames in the VideoMatte240K JPEG layout (as PNG)."""
    rng = np.random.default_rng(0)
    for c in range(clips):
        for kind, shape in (("fgr", (12, 20, 3)), ("pha", (12, 20))):
            folder = root / kind / f"c{c}"
            folder.mkdir(parents=True)
            for t in range(CLIP_FRAMES):
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{t:05d}.png")
    return root


def _images(root: Path, count: int) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (9, 14, 3), dtype=np.uint8)).save(root / f"bg{i}.png")
    return root


def _video(path: Path, frames: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for t in range(frames):
            image = np.full((16, 16, 3), 20 * t, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def test_static_subset_follows_the_published_construction(tmp_path: Path) -> None:
    videomatte = _videomatte(tmp_path / "vm")
    backgrounds = _images(tmp_path / "bg", 4)
    subset = build_vm_subset(
        videomatte, backgrounds, tmp_path / "out", (10, 6), motion=False, samples=4, frames=3
    )
    assert subset.name == "videomatte_static"
    clips = list_vm_clips(tmp_path / "out")
    assert [c.name for c in clips] == ["0000", "0001", "0002", "0003"]
    # the same random stream as the published script: shuffle the backgrounds, then one start per sample
    generator = random.Random(10)
    names = sorted(p.name for p in backgrounds.iterdir())
    generator.shuffle(names)
    starts = [generator.choice(range(CLIP_FRAMES - 3)) for _ in range(4)]
    for i, clip in enumerate(clips):
        source = videomatte / "fgr" / f"c{i % 3}" / f"{starts[i]:05d}.png"
        expected = Image.open(source).convert("RGB").resize((10, 6), Image.BILINEAR)
        if i == 3:  # second pass over the 3 clips: mirrored
            expected = expected.transpose(Image.FLIP_LEFT_RIGHT)
        np.testing.assert_array_equal(np.asarray(Image.open(clip.files["fgr"][0])), np.asarray(expected))
        background = Image.open(backgrounds / names[i]).convert("RGB").resize((10, 6), Image.BILINEAR)
        np.testing.assert_array_equal(np.asarray(Image.open(clip.files["bgr"][2])), np.asarray(background))
        fgr, pha, bgr, com = (
            np.asarray(Image.open(clip.files[k][1])).astype(np.float64) for k in ("fgr", "pha", "bgr", "com")
        )
        exact = fgr * (pha / 255)[..., None] + bgr * (1 - pha / 255)[..., None]
        np.testing.assert_array_equal(com, np.floor(exact))  # truncated, not rounded


def test_motion_subset_uses_background_video_frames_via_the_cli(tmp_path: Path) -> None:
    videomatte = _videomatte(tmp_path / "vm", clips=2)
    for name in ("a.mp4", "b.mp4"):
        _video(tmp_path / "videos" / name, 5)
    args = ["build-vm-benchmark", "--videomatte", str(videomatte), "--backgrounds", str(tmp_path / "videos")]
    args += ["--out", str(tmp_path / "out"), "--size", "10x8", "--clips", "2", "--frames", "3"]
    assert main(args) == 2  # the published list of 45 videos is not there
    assert main([*args, "--any-background-videos"]) == 0
    clips = list_vm_clips(tmp_path / "out")
    assert {c.subset for c in clips} == {"videomatte_motion"} and len(clips) == 2
    bgr = clips[0].read()["bgr"]
    assert bgr.shape == (3, 8, 10, 3) and bgr[2].mean() > bgr[0].mean()  # the background moves on


def test_bad_videomatte_layouts_are_reported_with_the_folder(tmp_path: Path) -> None:
    videomatte = _videomatte(tmp_path / "vm", clips=2)
    (videomatte / "pha" / "c1" / "00006.png").unlink()
    with pytest.raises(VidmatteError, match=r"pha/c1: 6 alpha frames for 7 foreground frames"):
        list_videomatte_clips(videomatte)
    with pytest.raises(VidmatteError, match=r"nowhere: no 'fgr' folder"):
        list_videomatte_clips(tmp_path / "nowhere")
    videomatte = _videomatte(tmp_path / "vm2", clips=1)
    with pytest.raises(VidmatteError, match=r"bg: 1 background images for 2 samples"):
        build_vm_subset(
            videomatte, _images(tmp_path / "bg", 1), tmp_path / "o", (10, 6), False, samples=2, frames=3
        )


def test_frame_sources_read_folders_images_and_videos(tmp_path: Path) -> None:
    _video(tmp_path / "v.mp4", 4)
    video = open_source(tmp_path / "v.mp4")
    assert video.length == 4 and video.read(1, 2).shape == (2, 16, 16, 3)
    image = open_source(_images(tmp_path / "imgs", 2) / "bg0.png")
    assert image.length == 1 and image.read(0, 1).shape == (1, 9, 14, 3)
    folder = open_source(tmp_path / "imgs")
    assert folder.length == 2
    with pytest.raises(VidmatteError, match=r"v\.mp4: frames 3\.\.4 asked of 4"):
        video.read(3, 2)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(VidmatteError, match=r"notes\.txt: not an image folder"):
        open_source(tmp_path / "notes.txt")
