"""Real-data training sets on tiny generated data: VideoMatte240K compositing, multi-instance clips and
labelled real people cut out as foreground clips."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vidmatte.data.augment import AugmentConfig
from vidmatte.data.guidance import MaskAugment, SegmenterErrors, augment_masks
from vidmatte.data.videomatte import VideoMatteConfig, VideoMatteDataset, list_foreground_clips
from vidmatte.data.vim import InstanceConfig, InstanceMattingDataset
from vidmatte.errors import VidmatteError

SIZE = (16, 24)
QUIET = AugmentConfig(size=SIZE, noise=0.0)


def _write_video(path: Path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def _person(frames: int, height: int = 24, width: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A soft ellipse 'person' drifting right, with a coloured foreground."""
    ys, xs = np.mgrid[0:height, 0:width]
    pha = np.stack(
        [np.clip(1.0 - np.hypot((xs - 10 - t) / 5, (ys - 12) / 9), 0, 0.1) * 10 for t in range(frames)]
    )
    fgr = np.zeros((frames, height, width, 3), np.uint8)
    fgr[..., 0], fgr[..., 1] = 200, (xs * 7 % 255)
    return fgr, (pha * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videomatte")
    for clip in ("a", "b"):
        fgr, pha = _person(5)
        for t in range(5):
            for kind, image in (("fgr", fgr[t]), ("pha", pha[t])):
                (root / "fg" / kind / clip).mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(root / "fg" / kind / clip / f"{t:05d}.png")
    fgr, pha = _person(6)
    _write_video(root / "fg" / "fgr" / "c.mp4", fgr)
    _write_video(root / "fg" / "pha" / "c.mp4", np.repeat(pha[..., None], 3, axis=-1))
    (root / "bg").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(root / "bg" / f"{i}.jpg")
    _write_video(root / "bg" / "moving.mp4", rng.integers(0, 256, (4, 20, 30, 3), dtype=np.uint8))
    return root


def test_foreground_clips_pair_folders_and_videos(data: Path) -> None:
    clips = list_foreground_clips(data / "fg")
    assert [(c.name, c.length) for c in clips] == [("a", 5), ("b", 5), ("c", 6)]
    fgr, pha = clips[2].read(1, 3)
    assert fgr.shape == (3, 24, 32, 3) and pha.shape == (3, 24, 32)
    assert pha.max() > 0.9 and pha.min() < 0.05


def test_videomatte_items_are_composited_and_reproducible(data: Path) -> None:
    config = VideoMatteConfig(frames=3, augment=QUIET, samples=4)
    dataset = VideoMatteDataset(data / "fg", [data / "bg"], config)
    assert len(dataset) == 4
    item = dataset[2]
    assert item["frames"].shape == (3, 3, *SIZE) and item["alphas"].shape == (1, 3, 1, *SIZE)
    expected = item["fgr"] * item["pha"] + item["bgr"] * (1 - item["pha"])
    torch.testing.assert_close(item["frames"], expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(dataset[2]["frames"], item["frames"])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[2]["frames"], item["frames"])


def test_bad_foreground_layouts_name_the_file(tmp_path: Path, data: Path) -> None:
    fgr, pha = _person(3)
    for t in range(3):
        (tmp_path / "fgr" / "x").mkdir(parents=True, exist_ok=True)
        Image.fromarray(fgr[t]).save(tmp_path / "fgr" / "x" / f"{t}.png")
    with pytest.raises(VidmatteError, match=r"no 'pha' folder"):
        list_foreground_clips(tmp_path)
    (tmp_path / "pha").mkdir()
    with pytest.raises(VidmatteError, match=r"fgr/x: no alpha clip named x"):
        list_foreground_clips(tmp_path)
    (tmp_path / "pha" / "x").mkdir()
    for t in range(2):
        Image.fromarray(pha[t]).save(tmp_path / "pha" / "x" / f"{t}.png")
    with pytest.raises(VidmatteError, match=r"pha/x: 2 alpha frames for 3 foreground frames"):
        list_foreground_clips(tmp_path)
    Image.fromarray(pha[2][:10]).save(tmp_path / "pha" / "x" / "2.png")
    (clip,) = list_foreground_clips(tmp_path)
    with pytest.raises(VidmatteError, match=r"pha/x/2\.png: frame of 32x10"):
        clip.read(0, 3)
    with pytest.raises(VidmatteError, match=r"shorter than a clip of 9"):
        VideoMatteDataset(data / "fg", [data / "bg"], VideoMatteConfig(frames=9))


def test_instance_items_layer_two_to_three_people(data: Path) -> None:
    config = InstanceConfig(
        frames=3, instances=(2, 3), augment=QUIET, errors=SegmenterErrors.none(),
        masks=MaskAugment(erase=0, paste=0, merge=0, temporal=0), samples=3,
    )  # fmt: skip
    dataset = InstanceMattingDataset(data / "fg", [data / "bg"], config)
    for index in range(3):
        item = dataset[index]
        count = int(item["valid"].sum())
        assert 2 <= count <= 3 and item["alphas"].shape == (3, 3, 1, *SIZE)
        torch.testing.assert_close(item["alphas"].sum(0), item["pha"], atol=1e-5, rtol=0)
        torch.testing.assert_close(item["masks"], (item["alphas"] > 0.5).float())
        assert all(item["alphas"][k].max() > 0.5 for k in range(count))  # every person is in view
        expected = item["fgr"] * item["pha"] + item["bgr"] * (1 - item["pha"])
        torch.testing.assert_close(item["frames"], expected, atol=1e-5, rtol=0)


def test_mask_augmentations() -> None:
    masks = np.zeros((2, 3, 20, 20), bool)
    masks[0, :, 2:12, 2:12] = True
    masks[1, :, 8:18, 8:18] = True
    rng = np.random.default_rng(0)
    erased = augment_masks(masks, MaskAugment(erase=1, paste=0, merge=0, temporal=0), rng)
    assert (erased <= masks).all() and erased.sum() < masks.sum()
    merged = augment_masks(masks, MaskAugment(erase=0, paste=0, merge=1, temporal=0), rng)
    np.testing.assert_array_equal(merged[0], masks[0] | masks[1])
    pasted = augment_masks(masks, MaskAugment(erase=0, paste=1, merge=0, temporal=0), rng)
    assert (pasted[0] <= (masks[0] | masks[1])).all() and pasted[0].sum() > masks[0].sum()
    moving = np.zeros((1, 3, 20, 20), bool)
    for t in range(3):
        moving[0, t, 5, 5 * t] = True
    temporal = augment_masks(moving, MaskAugment(erase=0, paste=0, merge=0, temporal=1), rng)
    assert (temporal.sum(axis=(2, 3)) == 2).sum() >= 2  # one frame's mask added to the others


def test_labelled_people_become_still_foreground_clips(tmp_path: Path) -> None:
    from scripts.cut_out_real_people import cut_out
    from vidmatte.io.jsonfile import write_json
    from vidmatte.io.masks import encode_rle

    mask = np.zeros((20, 30), bool)
    mask[4:16, 10:18] = True
    names = [
        "src/photo.png",
        "src/clip/000000.png",
        "src/clip/000015.png",
        "src/clip/000045.png",
        "src/nobody.png",
    ]
    for name in names:
        (tmp_path / "in" / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(tmp_path / "in" / "images" / name)
    images = [{"id": i + 1, "file_name": n, "height": 20, "width": 30} for i, n in enumerate(names)]
    people = [
        {"id": i, "image_id": i, "category_id": 1, "segmentation": encode_rle(mask)} for i in range(1, 5)
    ]
    write_json(tmp_path / "in" / "instances.json", {"images": images, "annotations": people})

    assert cut_out(tmp_path / "in", tmp_path / "out", frames=2, every=45, soften=0.7) == 3
    clips = list_foreground_clips(tmp_path / "out")
    assert [(c.name, c.length) for c in clips] == [
        ("src_clip_000000", 2),
        ("src_clip_000045", 2),
        ("src_photo", 2),
    ]
    fgr, pha = clips[2].read(0, 2)
    assert np.allclose(fgr, 90 / 255) and np.array_equal(pha[0], pha[1])
    assert pha[0][6:14, 12:16].min() > 0.99 and pha[0][~mask].max() < 0.7 and pha[0][:, :6].max() == 0


def test_placement_sets_how_far_the_people_are_zoomed_out(data: Path) -> None:
    from vidmatte.training.batches import _open
    from vidmatte.training.config import SourceConfig

    def height(placement: tuple[float, float]) -> float:
        source = SourceConfig(
            kind="instances", frames=3, size=SIZE, instances=(1, 1), seed=3, placement=placement,
            foregrounds=str(data / "fg"), backgrounds=(str(data / "bg"),), augment=QUIET,
        )  # fmt: skip
        alphas = [_open(source)[i]["pha"][0, 0] > 0.5 for i in range(4)]
        return float(np.mean([a.any(1).sum() for a in alphas]))

    assert height((3.0, 3.0)) < 0.6 * height((1.0, 1.0))
