"""The simulated segmenter: each error parameter takes effect, and masks round-trip through JSON."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vidmatte.data.guidance import SegmenterErrors, simulate_segmenter
from vidmatte.io.masks import read_ytvis_json, write_ytvis_json

CLEAN = SegmenterErrors.none()


def _alphas(count: int = 3, frames: int = 6, height: int = 40, width: int = 60) -> np.ndarray:
    """Soft discs that drift to the right, one per instance."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    alphas = np.zeros((count, frames, height, width), np.float32)
    for i in range(count):
        for t in range(frames):
            cx, cy = 10 + 15 * i + 2 * t, 20
            alphas[i, t] = np.clip(8.5 - np.hypot(xs - cx, ys - cy), 0, 1)
    return alphas


def _run(errors: SegmenterErrors, seed: int = 0, **kwargs) -> tuple[np.ndarray, object]:
    alphas = _alphas(**kwargs)
    return alphas, simulate_segmenter(alphas, errors, np.random.default_rng(seed))


def test_a_perfect_segmenter_returns_the_binarised_ground_truth() -> None:
    alphas, guidance = _run(CLEAN)
    np.testing.assert_array_equal(guidance.masks, alphas > 0.5)
    assert guidance.instance == [0, 1, 2] and guidance.switches == [] and guidance.missed == []


def test_reference_is_the_union_of_the_other_tracks() -> None:
    _, guidance = _run(CLEAN)
    reference = guidance.reference()
    np.testing.assert_array_equal(reference[0], guidance.masks[1] | guidance.masks[2])
    np.testing.assert_array_equal(reference[2], guidance.masks[0] | guidance.masks[1])


def test_dilation_and_erosion_change_the_area() -> None:
    alphas = _alphas()
    truth_area = (alphas > 0.5).sum()
    areas = []
    for seed in range(6):
        errors = replace(CLEAN, boundary=3)
        areas.append(simulate_segmenter(alphas, errors, np.random.default_rng(seed)).masks.sum())
    assert min(areas) < truth_area or max(areas) > truth_area
    assert len(set(areas)) > 1


def test_coarse_masks_lose_detail() -> None:
    alphas, guidance = _run(replace(CLEAN, coarse=1.0, coarse_factor=8))
    assert (guidance.masks != (alphas > 0.5)).any()


def test_missing_frames_holes_and_false_positives() -> None:
    alphas, missing = _run(replace(CLEAN, missing_frames=1.0))
    assert not missing.masks.any()
    _, holes = _run(replace(CLEAN, holes=1.0, hole_size=0.3))
    assert holes.masks.sum() < (alphas > 0.5).sum()
    _, blobs = _run(replace(CLEAN, false_positives=1.0, blob_size=0.1))
    assert (blobs.masks & ~(alphas > 0.5)).any()


def test_identity_switch_swaps_two_tracks_from_a_frame_on() -> None:
    alphas, guidance = _run(replace(CLEAN, identity_switch=1.0))
    ((frame, a, b),) = guidance.switches
    truth = alphas > 0.5
    np.testing.assert_array_equal(guidance.masks[a, :frame], truth[a, :frame])
    np.testing.assert_array_equal(guidance.masks[a, frame:], truth[b, frame:])
    np.testing.assert_array_equal(guidance.masks[b, frame:], truth[a, frame:])


def test_missed_instance_has_no_track_and_single_instances_are_never_dropped() -> None:
    _, guidance = _run(replace(CLEAN, missed_instance=1.0))
    assert len(guidance.missed) == 1 and guidance.masks.shape[0] == 2
    assert guidance.missed[0] not in guidance.instance
    _, single = _run(replace(CLEAN, missed_instance=1.0), count=1)
    assert single.masks.shape[0] == 1 and single.missed == []


def test_same_rng_state_same_masks() -> None:
    errors = SegmenterErrors(holes=0.5, false_positives=0.5, identity_switch=0.5)
    _, first = _run(errors, seed=4)
    _, again = _run(errors, seed=4)
    np.testing.assert_array_equal(first.masks, again.masks)
    assert first.metadata() == again.metadata()


def test_tracks_round_trip_through_youtube_vis_json(tmp_path: Path) -> None:
    _, guidance = _run(replace(CLEAN, missing_frames=0.3), seed=1)
    path = tmp_path / "results.json"
    write_ytvis_json(path, guidance.tracks(video_id=5))
    tracks = read_ytvis_json(path)
    assert len(tracks) == guidance.masks.shape[0]
    for track, masks in zip(tracks, guidance.masks, strict=True):
        assert track.video_id == 5 and 0 < track.score <= 1
        for t, mask in enumerate(masks):
            np.testing.assert_array_equal(track.mask(t, mask.shape), mask)
            assert (track.segmentations[t] is None) == (not mask.any())


@pytest.mark.parametrize("count", [2, 4])
def test_track_count_follows_instances(count: int) -> None:
    _, guidance = _run(SegmenterErrors(missed_instance=0.0), count=count)
    assert guidance.masks.shape[0] == count and len(guidance.scores) == count


@pytest.mark.parametrize(
    "bad", [dict(holes=1.5), dict(identity_switch=-0.1), dict(boundary=-1), dict(coarse_factor=0)]
)
def test_impossible_error_models_are_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        SegmenterErrors(**bad)


def _item(errors: SegmenterErrors, seed: int = 0) -> tuple[np.ndarray, dict]:
    from vidmatte.data.items import make_item

    alphas, guidance = _run(errors, seed)
    frames, height, width = alphas.shape[1:]
    rng = np.random.default_rng(seed)
    fgr = rng.random((frames, height, width, 3), dtype=np.float32)
    bgr = rng.random((frames, height, width, 3), dtype=np.float32)
    union = alphas.sum(0).clip(0, 1)[..., None]
    com = fgr * union + bgr * (1 - union)
    return alphas, {"guidance": guidance, "com": com, **make_item(com, fgr, bgr, alphas, guidance, 4, seed)}


def test_after_an_identity_switch_the_target_follows_the_guidance() -> None:
    alphas, item = _item(replace(CLEAN, identity_switch=1.0))
    ((frame, a, b),) = item["guidance"].switches
    slot_a, slot_b = item["guidance"].instance[a], item["guidance"].instance[b]
    targets, masks = item["alphas"][:, :, 0].numpy(), item["masks"][:, :, 0].numpy() > 0.5
    np.testing.assert_array_equal(targets[slot_a, :frame], alphas[slot_a, :frame])
    np.testing.assert_array_equal(targets[slot_a, frame:], alphas[slot_b, frame:])
    np.testing.assert_array_equal(targets[slot_b, frame:], alphas[slot_a, frame:])
    for slot in range(3):  # every guidance mask lies on its own target, before and after the switch
        np.testing.assert_array_equal(masks[slot], targets[slot] > 0.5)


def test_a_missed_instance_is_no_target_and_belongs_to_the_background() -> None:
    alphas, item = _item(replace(CLEAN, missed_instance=1.0))
    (missed,) = item["guidance"].missed
    assert not item["valid"][missed] and int(item["valid"].sum()) == 2
    assert not item["alphas"][missed].any() and not item["masks"][missed].any()
    # the guided instances composited over the item's background give the frames back exactly
    union = item["alphas"][item["valid"]].sum(0).clamp(0, 1).numpy()
    fgr, bgr = (item[k].numpy() for k in ("fgr", "bgr"))
    np.testing.assert_allclose(fgr * union + bgr * (1 - union), item["frames"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(item["pha"][:, 0].numpy(), alphas.sum(0).clip(0, 1))
