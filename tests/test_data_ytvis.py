"""Segmentation data: YouTube-VIS person tracks and COCO people, on tiny generated annotation files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidmatte.data.augment import AugmentConfig
from vidmatte.data.ytvis import (
    CocoSegmentationDataset,
    SegmentationConfig,
    YouTubeVISDataset,
    decode_segmentation,
    read_ytvis_annotations,
)
from vidmatte.errors import VidmatteError
from vidmatte.io.masks import encode_rle

HEIGHT, WIDTH, FRAMES = 12, 16, 4
STILL = AugmentConfig(
    size=(HEIGHT, WIDTH), crop_scale=(1.0, 1.0), flip=0.0, motion=0.0, translate=0.0, rotate=0.0, scale=0.0,
    shear=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, blur=0.0, noise=0.0,
)  # fmt: skip


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths of the column-major pixels, starting with a run of zeros."""
    flat = mask.flatten(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    return {"size": list(mask.shape), "counts": counts}


def _person_masks() -> np.ndarray:
    masks = np.zeros((FRAMES, HEIGHT, WIDTH), bool)
    for t in range(FRAMES):
        masks[t, 2:10, 3 + t : 8 + t] = True
    return masks


def _ytvis(root: Path, *, track_frames: int = FRAMES, rle_size: tuple[int, int] = (HEIGHT, WIDTH)) -> Path:
    names = [f"v1/{t:05d}.png" for t in range(FRAMES)]
    rng = np.random.default_rng(0)
    for name in names:
        (root / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(root / "images" / name)
    masks = _person_masks()
    person = [encode_rle(m) if t % 2 else _uncompressed_rle(m) for t, m in enumerate(masks)]
    person[1] = None  # the person is not annotated in frame 1
    if rle_size != (HEIGHT, WIDTH):
        person[0] = encode_rle(np.zeros(rle_size, bool))
    data = {
        "videos": [{"id": 1, "height": HEIGHT, "width": WIDTH, "file_names": names}],
        "annotations": [
            {"video_id": 1, "category_id": 1, "segmentations": person[:track_frames]},
            {"video_id": 1, "category_id": 2, "segmentations": [encode_rle(~m) for m in masks]},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
    }
    (root / "train.json").write_text(json.dumps(data))
    return root


def test_person_tracks_decode_both_rle_forms(tmp_path: Path) -> None:
    root = _ytvis(tmp_path)
    (video,) = read_ytvis_annotations(root / "train.json", root / "images")
    assert len(video.tracks) == 1 and len(video.frames) == FRAMES  # the dog is left out
    masks = video.masks(0, FRAMES)
    expected = _person_masks()
    expected[1] = False
    np.testing.assert_array_equal(masks[0], expected)


def test_youtube_vis_items(tmp_path: Path) -> None:
    root = _ytvis(tmp_path)
    config = SegmentationConfig(frames=3, instances=2, augment=STILL)
    dataset = YouTubeVISDataset(root / "train.json", root / "images", config)
    item = dataset[0]
    assert item["frames"].shape == (3, 3, HEIGHT, WIDTH) and item["masks"].shape == (2, 3, 1, HEIGHT, WIDTH)
    assert item["valid"].tolist() == [True, False]
    np.testing.assert_array_equal(item["seg"].numpy(), item["masks"].max(0).values.numpy())
    start = next(
        s for s in range(2) if np.allclose(item["frames"][0].permute(1, 2, 0).numpy(), _frame(root, s))
    )
    expected = _person_masks()
    expected[1] = False
    np.testing.assert_array_equal(item["masks"][0, :, 0].numpy() > 0.5, expected[start : start + 3])


def _frame(root: Path, t: int) -> np.ndarray:
    return np.asarray(Image.open(root / "images" / "v1" / f"{t:05d}.png"), np.float32) / 255


def test_tracks_and_rle_that_do_not_fit_the_video_are_reported(tmp_path: Path) -> None:
    short = _ytvis(tmp_path / "a", track_frames=3)
    with pytest.raises(VidmatteError, match=r"train\.json: video 1 track 0 has 3 masks for 4 frames"):
        read_ytvis_annotations(short / "train.json", short / "images")
    wrong = _ytvis(tmp_path / "b", rle_size=(6, 8))
    (video,) = read_ytvis_annotations(wrong / "train.json", wrong / "images")
    with pytest.raises(
        VidmatteError, match=r"train\.json video 1 track 0 frame 0: RLE of size 8x6 for frames of 16x12"
    ):
        video.masks(0, 2)
    with pytest.raises(VidmatteError, match=r"no category named cat"):
        read_ytvis_annotations(wrong / "train.json", wrong / "images", ("cat",))


def test_images_of_the_wrong_size_are_reported(tmp_path: Path) -> None:
    root = _ytvis(tmp_path)
    for t in range(FRAMES):
        Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(root / "images" / "v1" / f"{t:05d}.png")
    dataset = YouTubeVISDataset(
        root / "train.json", root / "images", SegmentationConfig(frames=2, augment=STILL)
    )
    with pytest.raises(VidmatteError, match=r"v1/0000\d\.png: image of 5x5, \S*train\.json says 16x12"):
        dataset[0]


def test_coco_polygons_and_clips(tmp_path: Path) -> None:
    polygon = [[2.0, 2.0, 12.0, 2.0, 12.0, 10.0, 2.0, 10.0]]
    mask = decode_segmentation(polygon, HEIGHT, WIDTH, "x")
    assert 70 <= mask.sum() <= 110 and mask[6, 7] and not mask[0, 0]
    with pytest.raises(VidmatteError, match=r"^ann: malformed polygon"):
        decode_segmentation([[1.0, 2.0]], HEIGHT, WIDTH, "ann")
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 128, np.uint8)).save(tmp_path / "a.png")
    data = {
        "images": [{"id": 7, "file_name": "a.png", "height": HEIGHT, "width": WIDTH}],
        "annotations": [
            {"image_id": 7, "category_id": 1, "segmentation": polygon},
            {"image_id": 7, "category_id": 1, "segmentation": encode_rle(np.eye(HEIGHT, WIDTH, dtype=bool))},
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(data))
    config = SegmentationConfig(frames=3, instances=3, augment=AugmentConfig(size=(8, 10), motion=1.0))
    item = CocoSegmentationDataset(tmp_path / "coco.json", tmp_path, config)[0]
    assert item["frames"].shape == (3, 3, 8, 10) and item["valid"].tolist() == [True, True, False]
    assert item["masks"][0].sum() > 0 and item["seg"].shape == (3, 1, 8, 10)


def test_the_segmentation_target_is_every_person_also_beyond_the_instance_slots(tmp_path: Path) -> None:
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 128, np.uint8)).save(tmp_path / "a.png")
    people = [np.zeros((HEIGHT, WIDTH), bool) for _ in range(3)]
    for k, mask in enumerate(people):
        mask[1:5, 1 + 5 * k : 4 + 5 * k] = True  # three separate people
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": HEIGHT, "width": WIDTH}],
        "annotations": [{"image_id": 1, "category_id": 1, "segmentation": encode_rle(m)} for m in people],
        "categories": [{"id": 1, "name": "person"}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(data))
    config = SegmentationConfig(frames=2, instances=1, augment=STILL)
    item = CocoSegmentationDataset(tmp_path / "coco.json", tmp_path, config)[0]
    assert item["masks"].shape[0] == 1 and item["valid"].tolist() == [True]
    everyone = np.logical_or.reduce(people)
    for t in range(2):
        np.testing.assert_array_equal(item["seg"][t, 0].numpy() > 0.5, everyone)
    assert (item["seg"] > 0.5).sum() > 2 * (item["masks"] > 0.5).sum()
