"""Person tracks on generated clips of coloured ellipse "people", with a fake detector and segmenter."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import Tensor

from vidmatte.cli import main
from vidmatte.io.frames import write_image
from vidmatte.io.masks import read_ytvis_json
from vidmatte.io.reader import open_frames
from vidmatte.io.render import TINT
from vidmatte.segmentation import tracks as tracks_module
from vidmatte.segmentation.frame_instances import assign_pixels, crop_window, frame_instances
from vidmatte.segmentation.preview import track_colours
from vidmatte.segmentation.track_config import TrackConfig
from vidmatte.segmentation.tracks import DEFAULT_CONFIG, PersonTracks, build_person_tracks, segment_video

H, W = 96, 160
GREY = 120


@dataclass(frozen=True)
class Walker:
    """An ellipse "person" moving at constant velocity.

    Attributes:
        colour: RGB, saturated (the fake segmenter keys on saturation).
        start: centre ``(x, y)`` on frame ``enter``.
        velocity: ``(dx, dy)`` pixels per frame.
        radii: ``(rx, ry)``.
        enter: first frame on which the person is there.
        hidden: frames on which they are fully hidden (not drawn, not detected).
        detected: whether the fake detector ever reports them.
        score: the detector's score for them.
        leave: first frame on which they are gone.
    """

    colour: tuple[int, int, int]
    start: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)
    radii: tuple[float, float] = (10.0, 22.0)
    enter: int = 0
    hidden: tuple[int, ...] = ()
    detected: bool = True
    score: float = 0.9
    leave: int = 10**6

    def centre(self, frame: int) -> np.ndarray:
        return np.array(self.start) + np.array(self.velocity) * (frame - self.enter)

    def present(self, frame: int) -> bool:
        return self.enter <= frame < self.leave and frame not in self.hidden

    def ellipse(self, frame: int) -> np.ndarray:
        """``(H, W)`` bool, the whole (amodal) ellipse; empty where absent."""
        if not self.present(frame):
            return np.zeros((H, W), bool)
        y, x = np.mgrid[0:H, 0:W] + 0.5
        cx, cy = self.centre(frame)
        return ((x - cx) / self.radii[0]) ** 2 + ((y - cy) / self.radii[1]) ** 2 <= 1


def render(walkers: list[Walker], frame: int) -> tuple[np.ndarray, np.ndarray]:
    """The frame ``(H, W, 3)`` uint8 (later walkers in front) and each walker's visible ``(P, H, W)`` mask."""
    noise = np.random.default_rng(frame).integers(-8, 9, (H, W, 3))
    image = (GREY + noise).astype(np.uint8)
    owner = np.full((H, W), -1)
    for index, walker in enumerate(walkers):
        ellipse = walker.ellipse(frame)
        image[ellipse] = walker.colour
        owner[ellipse] = index
    return image, np.stack([owner == i for i in range(len(walkers))]) if walkers else np.zeros(
        (0, H, W), bool
    )


@dataclass(frozen=True)
class FakeDetections:
    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray


class FakeDetector:
    """Reports the walkers of the clip's next frame (one call per frame, in order): their true boxes with
    up to a pixel of noise, 17 keypoints on the ellipse, their score."""

    def __init__(self, walkers: list[Walker]) -> None:
        self.walkers = walkers
        self.frame = 0
        self.rng = np.random.default_rng(0)

    def __call__(self, image: np.ndarray) -> FakeDetections:
        assert image.shape == (H, W, 3)
        boxes, keypoints, scores = [], [], []
        angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        for walker in self.walkers:
            if not (walker.detected and walker.present(self.frame)):
                continue
            (cx, cy), (rx, ry) = walker.centre(self.frame), walker.radii
            boxes.append(np.array([cx - rx, cy - ry, cx + rx, cy + ry]) + self.rng.uniform(-1, 1, 4))
            ring = np.stack([cx + 0.8 * rx * np.cos(angles), cy + 0.8 * ry * np.sin(angles)], -1)
            points = np.concatenate([[[cx, cy]], ring]) + self.rng.uniform(-0.5, 0.5, (17, 2))
            keypoints.append(np.concatenate([points, np.full((17, 1), 0.9)], -1))
            scores.append(walker.score)
        self.frame += 1
        return FakeDetections(
            np.array(boxes, np.float32).reshape(-1, 4),
            np.array(keypoints, np.float32).reshape(-1, 17, 3),
            np.array(scores, np.float32),
        )


def fake_segment(images: Tensor) -> Tensor:
    """Person probability from colour saturation: 0 on the grey background, 1 on the walkers."""
    assert images.ndim == 4 and images.shape[1] == 3
    saturation = images.amax(dim=1, keepdim=True) - images.amin(dim=1, keepdim=True)
    return ((saturation - 0.15) / 0.1).clamp(0, 1)


def track(walkers: list[Walker], frames: int, config: TrackConfig = DEFAULT_CONFIG) -> PersonTracks:
    images = (render(walkers, t)[0] for t in range(frames))
    return build_person_tracks(images, detect=FakeDetector(walkers), segment=fake_segment, config=config)


def identities(tracks: PersonTracks, walkers: list[Walker]) -> dict[int, set[int]]:
    """For each track, the walkers whose centre lies nearest its mask's centroid, over all its frames."""
    found: dict[int, set[int]] = {}
    for t in range(tracks.frame_count):
        for person_track, mask in zip(tracks.tracks, tracks.masks(t), strict=True):
            if not mask.any():
                continue
            ys, xs = np.nonzero(mask)
            centroid = np.array([xs.mean(), ys.mean()])
            present = [i for i, w in enumerate(walkers) if w.present(t)]
            nearest = min(present, key=lambda i: np.linalg.norm(walkers[i].centre(t) - centroid))
            found.setdefault(person_track.id, set()).add(nearest)
    return found


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def first_frame(person_track) -> int:
    return next(t for t, rle in enumerate(person_track.segmentations) if rle is not None)


# nearly level and fast: at the crossing their masks swap places from one frame to the next, which mask
# IoU alone (without the velocity and the keypoints) mistakes for the people swapping
CROSSING = [
    Walker((220, 30, 30), (20.0, 44.0), (8.0, 0.0), (11.0, 20.0)),
    Walker((30, 60, 220), (140.0, 48.0), (-8.0, 0.0), (11.0, 22.0)),
]
CROSSING_FRAMES = 16


def test_identities_are_kept_through_a_crossing() -> None:
    tracks = track(CROSSING, CROSSING_FRAMES)
    assert [t.id for t in tracks.tracks] == [0, 1]
    assert identities(tracks, CROSSING) == {0: {0}, 1: {1}}
    assert all(rle is not None for t in tracks.tracks for rle in t.segmentations)
    # on the frames where they overlap most, both are still there, disjoint
    for t in (7, 8):
        masks = tracks.masks(t)
        assert masks[0].sum() > 100 and masks[1].sum() > 100 and not (masks[0] & masks[1]).any()


def test_the_identity_check_fails_on_swapped_tracks() -> None:
    tracks = track(CROSSING, CROSSING_FRAMES)
    first, second = tracks.tracks
    swapped = replace(
        tracks,
        tracks=[
            replace(first, segmentations=first.segmentations[:8] + second.segmentations[8:]),
            replace(second, segmentations=second.segmentations[:8] + first.segmentations[8:]),
        ],
    )
    assert identities(swapped, CROSSING) == {0: {0, 1}, 1: {0, 1}}


def test_a_person_entering_mid_clip_gets_a_new_track_from_that_frame() -> None:
    # a low score: the track is confirmed only after three frames, yet starts on the first
    newcomer = Walker((40, 200, 60), (120.0, 40.0), (-2.0, 0.0), enter=10, score=0.3)
    walkers = [*CROSSING[:1], newcomer]
    tracks = track(walkers, 20)
    assert [t.id for t in tracks.tracks] == [0, 1]
    assert identities(tracks, walkers) == {0: {0}, 1: {1}}
    assert first_frame(tracks.tracks[0]) == 0
    assert first_frame(tracks.tracks[1]) == 10
    assert all(rle is not None for rle in tracks.tracks[1].segmentations[10:])


def test_a_low_score_detection_on_fewer_than_birth_frames_makes_no_track() -> None:
    flash = Walker((240, 200, 20), (80.0, 50.0), enter=5, leave=7, score=0.3)
    assert track([flash], 10).tracks == []
    # one frame more and it is born; a high score is born at once
    assert len(track([replace(flash, leave=8)], 10).tracks) == 1
    assert len(track([replace(flash, leave=6, score=0.9)], 10).tracks) == 1


def test_a_person_occluded_for_three_frames_keeps_their_track() -> None:
    walkers = [
        Walker((220, 30, 30), (20.0, 40.0), (4.0, 0.0)),
        Walker((30, 60, 220), (130.0, 50.0), (-3.0, 0.0), hidden=(8, 9, 10)),
    ]
    tracks = track(walkers, 18)
    assert identities(tracks, walkers) == {0: {0}, 1: {1}}
    hidden = tracks.tracks[1].segmentations
    assert [t for t, rle in enumerate(hidden) if rle is None] == [8, 9, 10]
    # past max_missed the track ends, and the person coming back is a new track
    ended = track(walkers, 18, TrackConfig(max_missed=2))
    assert identities(ended, walkers) == {0: {0}, 1: {1}, 2: {1}}
    assert first_frame(ended.tracks[2]) == 11


def test_an_empty_scene_gives_no_track(tmp_path: Path) -> None:
    tracks = track([], 6)
    assert tracks.tracks == [] and tracks.frame_count == 6
    tracks.write_json(tmp_path / "tracks.json")
    assert json.loads((tmp_path / "tracks.json").read_text()) == []


def test_the_fallback_finds_a_person_the_detector_never_reports() -> None:
    walkers = [
        Walker((220, 30, 30), (30.0, 45.0), (3.0, 0.0)),
        Walker((230, 150, 20), (130.0, 60.0), (-2.0, 0.0), (6.0, 12.0), detected=False),
    ]
    tracks = track(walkers, 12)
    assert identities(tracks, walkers) == {0: {0}, 1: {1}}
    for t in range(12):
        visible = render(walkers, t)[1]
        assert iou(tracks.masks(t)[1], visible[1]) > 0.8
    assert identities(track(walkers, 12, TrackConfig(fallback=False)), walkers) == {0: {0}}


def test_the_fallback_leaves_a_gap_inside_a_detected_person_to_them() -> None:
    """A segmenter that fills holes on the whole frame (not on crops) finds the gap in a person with a
    hole (an arm held away from the body) that their crop left out: that gap is no one else."""
    walker = Walker((220, 30, 30), (80.0, 48.0), radii=(18.0, 30.0))

    def holed(frame: int) -> tuple[np.ndarray, np.ndarray]:
        image, visible = render([walker], frame)
        y, x = np.mgrid[0:H, 0:W] + 0.5
        gap = ((x - 80) / 8) ** 2 + ((y - 48) / 12) ** 2 <= 1
        image[gap] = GREY
        return image, visible & ~gap

    def hole_filling_segment(images: Tensor) -> Tensor:
        probability = fake_segment(images)
        if images.shape[2] == images.shape[3]:
            return probability
        filled = ndimage.binary_fill_holes(probability[0, 0].numpy() > 0.5)
        return torch.from_numpy(filled)[None, None].float()

    def tracks(config: TrackConfig) -> PersonTracks:
        frames = (holed(t)[0] for t in range(5))
        return build_person_tracks(
            frames, detect=FakeDetector([walker]), segment=hole_filling_segment, config=config
        )

    found = tracks(DEFAULT_CONFIG)
    assert len(found.tracks) == 1 and iou(found.masks(2)[0], holed(2)[1][0]) > 0.9
    assert len(tracks(TrackConfig(fallback_max_contact=1.0)).tracks) == 2


def test_overlapping_crops_give_each_pixel_to_one_person() -> None:
    # side by side, touching: each crop holds much of the other person
    walkers = [
        Walker((220, 30, 30), (66.0, 48.0), (0.5, 0.0), (14.0, 30.0)),
        Walker((30, 60, 220), (92.0, 50.0), (0.5, 0.0), (14.0, 30.0)),
    ]
    tracks = track(walkers, 5)
    assert len(tracks.tracks) == 2
    for t in range(5):
        masks = tracks.masks(t)
        visible = render(walkers, t)[1]
        assert masks.sum(axis=0).max() == 1
        assert iou(masks[0], visible[0]) > 0.85 and iou(masks[1], visible[1]) > 0.85


def test_pixels_go_to_the_most_probable_person_then_the_nearer_box() -> None:
    probabilities = [
        np.array([[0.9, 0.9, 0.7, 0.7, 0.2, 0.6]], np.float32),
        np.array([[0.1, 0.95, 0.7, 0.7, 0.4, 0.46]], np.float32),
    ]
    centres = np.array([[1.0, 0.5], [5.0, 0.5]])
    regions = [(0, 1, 0, 6), (0, 1, 0, 6)]
    # pixel 2 (centre 2.5) is nearer box 0, pixel 3 (centre 3.5) nearer box 1; pixel 4 reaches no one
    owner = assign_pixels(regions, probabilities, centres, (1, 6), 0.5)
    assert owner.tolist() == [[0, 1, 0, 1, -1, 0]]
    # within the margin pixel 1 is a tie, which the nearer box wins; pixel 5 is no tie (0.46 < 0.5)
    assert assign_pixels(regions, probabilities, centres, (1, 6), 0.5, 0.1).tolist() == [[0, 0, 0, 1, -1, 0]]
    # a person contests their own region only, whatever their probability
    owner = assign_pixels(
        [(0, 1, 0, 6), (0, 1, 3, 6)], [probabilities[0], probabilities[1][:, 3:]], centres, (1, 6), 0.5
    )
    assert owner.tolist() == [[0, 0, 0, 1, -1, 0]]


def test_crops_are_squares_kept_inside_the_frame_or_padded() -> None:
    top, left, side = crop_window(np.array([150.0, 10.0, 160.0, 40.0]), 1.2, H, W)
    assert (side, top, left) == (36, 7, W - 36)
    top, left, side = crop_window(np.array([0.0, 0.0, 20.0, 96.0]), 1.2, H, W)
    assert side == 116 and top == -10 and 0 <= left <= W - side
    # a person at the border is segmented whole
    walker = Walker((220, 30, 30), (12.0, 40.0), radii=(11.0, 22.0))
    image, visible = render([walker], 0)
    (instance,) = frame_instances(image, FakeDetector([walker])(image), fake_segment, TrackConfig())
    assert iou(instance.mask.full((H, W)), visible[0]) > 0.9


def test_the_json_round_trips_through_the_youtube_vis_reader(tmp_path: Path) -> None:
    walkers = [*CROSSING, Walker((40, 200, 60), (80.0, 20.0), radii=(6.0, 10.0), enter=4)]
    tracks = track(walkers, 12)
    assert len(tracks.tracks) == 3
    tracks.write_json(tmp_path / "tracks.json", video_id=7)
    read = read_ytvis_json(tmp_path / "tracks.json")
    assert [(r.video_id, r.category_id) for r in read] == [(7, 1)] * 3
    assert [r.score for r in read] == pytest.approx([t.score for t in tracks.tracks])
    detector = FakeDetector(walkers)
    for t in range(12):
        image = render(walkers, t)[0]
        # the masks read back are exactly the frame's instances, in track order
        instances = frame_instances(image, detector(image), fake_segment, TrackConfig())
        decoded = [r.mask(t, (H, W)) for r in read]
        assert len(instances) == sum(m.any() for m in decoded)
        for instance in instances:
            assert sum(np.array_equal(instance.mask.full((H, W)), m) for m in decoded) == 1
        assert all(len(r.segmentations) == 12 for r in read)


def _clip(folder: Path, walkers: list[Walker], frames: int) -> Path:
    folder.mkdir()
    for t in range(frames):
        write_image(folder / f"{t:04d}.png", render(walkers, t)[0])
    return folder


def _fake_builder(walkers: list[Walker]):
    return functools.partial(build_person_tracks, detect=FakeDetector(walkers), segment=fake_segment)


def test_segment_video_writes_the_tracks_and_a_colour_coded_preview(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "clip", CROSSING, 8)
    out, preview = tmp_path / "out" / "tracks.json", tmp_path / "out" / "preview.mkv"
    tracks = segment_video(clip, out, preview=preview, builder=_fake_builder(CROSSING))
    assert len(read_ytvis_json(out)) == 2
    with open_frames(preview) as frames:
        shown = [frame.image for frame in frames]
    assert len(shown) == 8
    colours = track_colours([0, 1]) * 255
    for t in (0, 7):
        image = render(CROSSING, t)[0].astype(np.float32)
        for index, mask in enumerate(tracks.masks(t)):
            # inside a track its colour is blended in (the preview is lossless FFV1; labels aside)
            expected = image[mask] * (1 - TINT) + TINT * colours[index]
            assert np.median(np.abs(shown[t][mask] - expected)) <= 1
        outside = ~tracks.masks(t).any(axis=0)
        assert np.mean(shown[t][outside] == image[outside]) > 0.95
    # the id is drawn in the track's colour above its mask
    top = np.flatnonzero(tracks.masks(0)[1].any(axis=1))[0]
    label = shown[0][: top - 1].astype(np.float32)
    assert (np.abs(label - colours[1]).max(axis=-1) < 40).sum() > 5
    assert sorted(p.name for p in out.parent.iterdir()) == ["preview.mkv", "tracks.json"]


def test_a_failing_run_leaves_no_output(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "clip", CROSSING, 4)

    def failing_builder(frames, progress=None):
        next(iter(frames))
        raise RuntimeError("segmenter crashed")

    with pytest.raises(RuntimeError, match="segmenter crashed"):
        segment_video(
            clip, tmp_path / "out" / "t.json", preview=tmp_path / "out" / "p.mp4", builder=failing_builder
        )
    assert not (tmp_path / "out").exists()  # neither outputs nor the folder the run made
    with pytest.raises(ValueError, match="no frame"):
        build_person_tracks([], detect=FakeDetector([]), segment=fake_segment)


@pytest.mark.parametrize(
    ("case", "args", "match"),
    [
        (
            "missing video",
            ["{d}/missing.mp4", "--out", "{d}/t.json"],
            r"missing\.mp4: no such file or folder",
        ),
        ("corrupt video", ["{d}/bad.mp4", "--out", "{d}/t.json"], r"bad\.mp4: not a readable video"),
        (
            "preview type",
            ["{d}/clip", "--out", "{d}/t.json", "--preview", "{d}/p.avi"],
            r"p\.avi: a preview is a",
        ),
        (
            "unwritable out",
            ["{d}/clip", "--out", "{d}/bad.mp4/t.json"],
            r"bad\.mp4/t\.json: cannot write there",
        ),
    ],
)
def test_segment_cli_reports_bad_input_in_one_line_before_loading_models(
    tmp_path: Path, capsys: pytest.CaptureFixture, case: str, args: list[str], match: str
) -> None:
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x01 not a video" * 50)
    _clip(tmp_path / "clip", [], 2)
    assert main(["segment", *(a.format(d=tmp_path) for a in args)]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("vidmatte: error: ") and re.search(match, error)
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("args", [["--min-score", "1.5"], ["--min-score", "x"], []])
def test_segment_cli_refuses_bad_arguments(tmp_path: Path, args: list[str]) -> None:
    out = [] if not args else ["--out", str(tmp_path / "t.json")]
    with pytest.raises(SystemExit) as exit_info:
        main(["segment", str(tmp_path), *out, *args])
    assert exit_info.value.code == 2


def test_segment_cli_on_a_video_with_nobody_writes_an_empty_list(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = {}

    def fake_default(device: str, config: TrackConfig):
        seen.update(device=device, min_score=config.min_score)
        return _fake_builder([])

    monkeypatch.setattr(tracks_module, "default_track_builder", fake_default)
    clip = _clip(tmp_path / "clip", [], 3)
    assert main(["segment", str(clip), "--out", str(tmp_path / "t.json"), "--min-score", "0.4"]) == 0
    assert json.loads((tmp_path / "t.json").read_text()) == []
    assert "no person found in" in capsys.readouterr().out
    assert seen == {"device": "cpu", "min_score": 0.4}


def test_the_segmenter_is_fed_batches_of_crops_in_0_1() -> None:
    calls = []

    def recording_segment(images: Tensor) -> Tensor:
        calls.append((tuple(images.shape), float(images.min()), float(images.max()), images.dtype))
        return fake_segment(images)

    image, _ = render(CROSSING, 3)
    frame_instances(image, FakeDetector(CROSSING)(image), recording_segment, TrackConfig(crop_size=64))
    (crops, low, high, dtype), (whole, *_) = calls
    assert crops == (2, 3, 64, 64) and low >= 0 and high <= 1 and dtype == torch.float32
    assert whole == (1, 3, 154, 256)
