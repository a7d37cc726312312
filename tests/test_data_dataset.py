"""The on-the-fly synthetic training set and the clip-consistent augmentation."""

from __future__ import annotations

from itertools import islice
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vidmatte.data.augment import AugmentConfig, augment_clip, jitter_colour, sample_geometry, warp
from vidmatte.data.guidance import SegmenterErrors
from vidmatte.data.synthetic import dataset as synthetic_dataset
from vidmatte.data.synthetic.clips import ClipSpec, clip_seed, generate_clip
from vidmatte.data.synthetic.dataset import SyntheticConfig, SyntheticMattingDataset

SPEC = ClipSpec(frames=3, width=40, height=24, instances=(1, 3))
STILL = AugmentConfig(
    size=(24, 40), crop_scale=(1.0, 1.0), flip=0.0, motion=0.0, translate=0.0, rotate=0.0, scale=0.0,
    shear=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, blur=0.0, noise=0.0,
)  # fmt: skip


def test_items_are_training_ready_tensors() -> None:
    dataset = SyntheticMattingDataset(SyntheticConfig(spec=SPEC, errors=SegmenterErrors.none(), clips=3))
    items = list(dataset)
    assert len(items) == 3
    for item in items:
        assert item["frames"].shape == item["fgr"].shape == item["bgr"].shape == (3, 3, 24, 40)
        assert item["pha"].shape == (3, 1, 24, 40)
        assert item["alphas"].shape == item["masks"].shape == (3, 3, 1, 24, 40)
        assert item["valid"].dtype == torch.bool and 1 <= int(item["valid"].sum()) <= 3
        for key in ("frames", "fgr", "bgr", "pha", "alphas", "masks"):
            assert item[key].dtype == torch.float32 and item[key].min() >= 0 and item[key].max() <= 1
        torch.testing.assert_close(item["alphas"].sum(0), item["pha"], atol=1e-5, rtol=0)
        assert not item["alphas"][~item["valid"]].any()
        # a perfect segmenter: masks are the binarised alphas, slot by slot
        torch.testing.assert_close(item["masks"], (item["alphas"] > 0.5).float())


def test_finite_set_holds_the_clips_that_synth_writes() -> None:
    dataset = SyntheticMattingDataset(SyntheticConfig(spec=SPEC, seed=4, clips=2))
    items = list(dataset)
    assert [int(i["seed"]) for i in items] == [clip_seed(4, 0), clip_seed(4, 1)]
    clip = generate_clip(clip_seed(4, 1), SPEC)
    np.testing.assert_allclose(items[1]["frames"].permute(0, 2, 3, 1).numpy(), clip.com)


def test_workers_and_ranks_draw_different_clips(monkeypatch: pytest.MonkeyPatch) -> None:
    config = SyntheticConfig(spec=SPEC)
    seeds = {}
    for worker in (0, 1):
        info = SimpleNamespace(id=worker, num_workers=2)
        monkeypatch.setattr(synthetic_dataset, "get_worker_info", lambda info=info: info)
        seeds[worker] = [int(i["seed"]) for i in islice(iter(SyntheticMattingDataset(config)), 2)]
    monkeypatch.setattr(synthetic_dataset, "get_worker_info", lambda: None)
    again = [int(i["seed"]) for i in islice(iter(SyntheticMattingDataset(config)), 2)]
    other_rank = [
        int(i["seed"]) for i in islice(iter(SyntheticMattingDataset(SyntheticConfig(spec=SPEC, rank=1))), 2)
    ]
    assert seeds[0] == again  # reproducible; worker 0 of 2 = the single process
    assert not set(seeds[0]) & set(seeds[1]) and not set(seeds[0]) & set(other_rank)


def test_augmented_items_keep_the_matting_equation() -> None:
    augment = AugmentConfig(size=(20, 32), noise=0.0, blur=1.0, motion=1.0)
    item = next(iter(SyntheticMattingDataset(SyntheticConfig(spec=SPEC, augment=augment))))
    assert item["frames"].shape == (3, 3, 20, 32)
    expected = item["fgr"] * item["pha"] + item["bgr"] * (1 - item["pha"])
    torch.testing.assert_close(item["frames"], expected, atol=1e-5, rtol=0)


def test_still_geometry_is_the_identity_and_flip_mirrors() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((2, 24, 40, 3)).astype(np.float32)
    geometry = sample_geometry(rng, 2, (24, 40), STILL)
    np.testing.assert_allclose(warp(images, geometry), images, atol=1e-5)
    flipped = sample_geometry(rng, 2, (24, 40), AugmentConfig(**{**STILL.__dict__, "flip": 1.0}))
    np.testing.assert_allclose(warp(images, flipped), images[:, :, ::-1], atol=1e-5)


def test_motion_moves_smoothly_from_start_to_end() -> None:
    config = AugmentConfig(size=(24, 40), motion=1.0, translate=0.2, rotate=0.0, scale=0.0, shear=0.0)
    geometry = sample_geometry(np.random.default_rng(1), 5, (48, 80), config)
    offsets = geometry.matrices[:, :, 2]
    steps = np.linalg.norm(np.diff(offsets, axis=0), axis=1)
    assert steps.sum() > 0.5  # it moves
    assert steps[0] < steps[1] and steps[-1] < steps[-2]  # eased in and out


def test_colour_jitter_drifts_over_time_and_stays_in_range() -> None:
    images = np.full((4, 6, 6, 3), 0.5, np.float32) * np.array([1.0, 0.6, 0.3], np.float32)
    out = jitter_colour(np.random.default_rng(2), images, AugmentConfig(brightness=0.3, hue=0.1))
    assert out.min() >= 0 and out.max() <= 1
    assert not np.allclose(out[0], out[-1])  # the jitter changes over the clip
    assert np.allclose(out[0], out[0, 0, 0])  # but is the same over a frame


def test_augment_clip_applies_one_geometry_to_foreground_and_alphas() -> None:
    rng = np.random.default_rng(3)
    alpha = np.zeros((1, 2, 24, 40), np.float32)
    alpha[:, :, 5:15, 10:20] = 1.0
    fgr = np.zeros((2, 24, 40, 3), np.float32)
    fgr[:, 5:15, 10:20] = 1.0  # the foreground is white exactly where alpha is 1
    config = AugmentConfig(size=(24, 40), brightness=0, contrast=0, saturation=0, hue=0, noise=0, blur=0)
    out = augment_clip(rng, fgr, alpha, np.zeros((2, 30, 50, 3), np.float32), config)
    np.testing.assert_allclose(out.fgr[..., 0], out.alphas[0], atol=1e-5)
    assert out.alphas.shape == (1, 2, 24, 40) and out.bgr.shape == (2, 24, 40, 3)


def test_background_geometry_never_shows_empty_corners() -> None:
    config = AugmentConfig(size=(24, 40), rotate=10.0, shear=5.0, translate=0.1, scale=0.15, motion=1.0)
    ones = np.ones((4, 30, 50), np.float32)
    for seed in range(10):
        geometry = sample_geometry(np.random.default_rng(seed), 4, (30, 50), config, inside=True)
        assert warp(ones, geometry)[:, 1:-1, 1:-1].min() > 0.99
    loose = [sample_geometry(np.random.default_rng(s), 4, (30, 50), config) for s in range(10)]
    assert min(warp(ones, g)[:, 1:-1, 1:-1].min() for g in loose) < 0.5  # without the check, they do
