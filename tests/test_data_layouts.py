"""Benchmark layouts: synthetic sets written by ``vidmatte synth`` read back, and bad layouts rejected."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vidmatte.cli import main
from vidmatte.data.benchmarks import (
    list_crgnn_clips,
    list_vim_clips,
    list_vm_clips,
    read_guidance,
    write_vim_clip,
    write_vm_clip,
)
from vidmatte.data.guidance import SegmenterErrors
from vidmatte.data.synthetic.clips import ClipSpec, clip_seed, generate_clip
from vidmatte.data.synthetic.folders import write_synthetic_set
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import write_image
from vidmatte.io.masks import read_ytvis_json

SPEC = ClipSpec(frames=3, width=48, height=32, instances=(2, 3))


@pytest.fixture(scope="module")
def vim_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("vim")
    errors = SegmenterErrors(identity_switch=1.0, missed_instance=0.0)
    return out, write_synthetic_set(out, "vim", 2, SPEC, seed=5, errors=errors)


def test_vim_layout_reads_back_the_generated_clips(vim_set: tuple[Path, dict]) -> None:
    out, metadata = vim_set
    clips = list_vim_clips(out)
    assert [c.name for c in clips] == ["0000", "0001"]
    for files, record in zip(clips, metadata["clips"], strict=True):
        com, alphas = files.read()
        clip = generate_clip(clip_seed(5, int(files.name)), SPEC)
        assert record["seed"] == clip.seed and alphas.shape == clip.alphas.shape
        np.testing.assert_allclose(alphas, clip.alphas, atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(com, clip.com, atol=0.5 / 255 + 1e-6)


def test_vim_guidance_folders_json_and_metadata_agree(vim_set: tuple[Path, dict]) -> None:
    out, metadata = vim_set
    assert metadata["segmenter_errors"]["identity_switch"] == 1.0
    on_disk = json.loads((out / "metadata.json").read_text())
    assert on_disk == json.loads(json.dumps(metadata))
    tracks = read_ytvis_json(out / "ytvis_results.json")
    for record in metadata["clips"]:
        target = read_guidance(out, record["name"], SPEC.frames)
        reference = read_guidance(out, record["name"], SPEC.frames, kind="re_masks")
        assert len(record["guidance"]["switches"]) == 1  # the error model's parameter took effect
        mine = [t for t in tracks if t.video_id == record["video_id"]]
        assert len(mine) == target.shape[0] == record["instances"]
        for track, masks, others in zip(mine, target, reference, strict=True):
            for t in range(SPEC.frames):
                np.testing.assert_array_equal(track.mask(t, masks.shape[1:]), masks[t])
            np.testing.assert_array_equal(others, target.sum(0) - masks > 0)


def test_vm_layout_via_the_command_line(tmp_path: Path) -> None:
    args = ["synth", "--layout", "vm", "--clips", "2", "--frames", "2", "--size", "40x24", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "a"), "--mask-holes", "0.75"]) == 0
    clips = list_vm_clips(tmp_path / "a")
    assert {c.subset for c in clips} <= {"synthetic_motion", "synthetic_static"} and len(clips) == 2
    arrays = clips[0].read()
    assert arrays["pha"].shape == (2, 24, 40) and arrays["com"].shape == (2, 24, 40, 3)
    recomposed = arrays["fgr"] * arrays["pha"][..., None] + arrays["bgr"] * (1 - arrays["pha"][..., None])
    assert np.abs(recomposed - arrays["com"]).max() < 3 / 255
    assert (clips[0].folder / "seg" / "0000.png").is_file()
    metadata = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert metadata["segmenter_errors"]["holes"] == 0.75 and metadata["spec"]["width"] == 40
    # deterministic, whatever the number of processes: a second run writes the same bytes
    assert main([*args, "--out", str(tmp_path / "b"), "--mask-holes", "0.75", "--workers", "2"]) == 0
    for path in (tmp_path / "a").rglob("*.png"):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_cli_rejects_bad_sizes_and_ranges(tmp_path: Path) -> None:
    for bad in (["--size", "40by24"], ["--instances", "3-2"], ["--size", "4x4"]):
        with pytest.raises(SystemExit):
            main(["synth", "--out", str(tmp_path), *bad])


def _vm_clip(root: Path, frames: int = 2) -> Path:
    rng = np.random.default_rng(0)
    images = rng.random((frames, 8, 10, 3)).astype(np.float32)
    return write_vm_clip(root, "videomatte_static", "0000", {"com": images, "pha": images[..., 0]})


def test_vm_reader_rejects_missing_folders_and_mismatched_frames(tmp_path: Path) -> None:
    folder = _vm_clip(tmp_path / "ok")
    assert list_vm_clips(tmp_path / "ok")[0].files["pha"][1].name == "0001.png"
    (folder / "pha" / "0001.png").unlink()
    with pytest.raises(VidmatteError, match=r"^\S*0000/pha: 1 frames"):
        list_vm_clips(tmp_path / "ok")
    shutil.rmtree(folder / "pha")
    with pytest.raises(VidmatteError, match=r"0000: VM clip without a 'pha' folder"):
        list_vm_clips(tmp_path / "ok")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VidmatteError, match="empty: no clip"):
        list_vm_clips(tmp_path / "empty")


def test_vim_reader_rejects_instances_of_another_length_or_size(tmp_path: Path) -> None:
    com = np.zeros((2, 8, 10, 3), np.float32)
    folder = write_vim_clip(tmp_path, "clip", com, np.zeros((2, 2, 8, 10), np.float32))
    (folder / "pha" / "01" / "0001.png").unlink()
    with pytest.raises(VidmatteError, match=r"clip/pha/01: 1 frames"):
        list_vim_clips(tmp_path)
    write_image(folder / "pha" / "01" / "0001.png", np.zeros((6, 10), np.float32))
    with pytest.raises(VidmatteError, match=r"clip/pha/01/0001.png: size 10x6 differs from the clip's 10x8"):
        list_vim_clips(tmp_path)[0].read()


def test_guidance_reader_rejects_tracks_that_do_not_fit_the_clip(tmp_path: Path) -> None:
    for t in range(2):
        write_image(tmp_path / "tg_masks" / "clip" / "00" / f"{t:04d}.png", np.zeros((4, 4), np.uint8))
    assert read_guidance(tmp_path, "clip", 2).shape == (1, 2, 4, 4)
    with pytest.raises(VidmatteError, match=r"tg_masks/clip/00: 2 masks for a clip of 3 frames"):
        read_guidance(tmp_path, "clip", 3)


def test_crgnn_reader_pairs_sparse_annotations_with_frames(tmp_path: Path) -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    for i in range(1, 22):
        write_image(tmp_path / "v1" / "frames" / f"frame{i:05d}.png", image)
    for i in (1, 11, 21):
        write_image(tmp_path / "v1" / "alpha" / f"frame{i:05d}.png", image[..., 0])
    (clip,) = list_crgnn_clips(tmp_path)
    assert sorted(clip.annotations) == [0, 10, 20] and len(clip.frames) == 21
    write_image(tmp_path / "v1" / "alpha" / "frame00099.png", image[..., 0])
    with pytest.raises(VidmatteError, match=r"frame00099\.png: no frame named frame00099"):
        list_crgnn_clips(tmp_path)


def test_crgnn_reader_accepts_folder_aliases_and_names_a_missing_folder(tmp_path: Path) -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    write_image(tmp_path / "v1" / "com" / "frame00001.png", image)
    write_image(tmp_path / "v1" / "pha" / "frame00001.png", image[..., 0])
    assert list_crgnn_clips(tmp_path)[0].annotations == {0: tmp_path / "v1" / "pha" / "frame00001.png"}
    shutil.rmtree(tmp_path / "v1" / "pha")
    with pytest.raises(VidmatteError, match=r"v1: CRGNN clip without a 'alpha' folder"):
        list_crgnn_clips(tmp_path)


def test_cli_reports_an_impossible_error_model_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["synth", "--out", str(tmp_path), "--clips", "1", "--mask-holes", "2"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "vidmatte: error: segmenter error model: holes must be in [0, 1], got 2.0"
    )
