"""Person instance tracks of a video, and their YouTube-VIS result JSON.

For each frame: the detector's boxes, segmentation of a square crop around each person and one owner per
pixel (:mod:`.frame_instances`), then identities across frames (:mod:`.tracker`). Frames are streamed:
memory stays bounded whatever the video's length, except for the tracks' COCO RLEs. The detector and the
segmenter are passed in as callables, so any pair with the interfaces of
:func:`vidmatte.segmentation.movenet.detect_people` and
:func:`vidmatte.segmentation.selfie.segment_people` works; :func:`default_track_builder` binds the
shipped ones.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from vidmatte.errors import VidmatteError
from vidmatte.io.atomic import AtomicOutput
from vidmatte.io.masks import Track, write_ytvis_json
from vidmatte.io.reader import open_frames
from vidmatte.io.writers import VIDEO_SUFFIXES, FrameWriter
from vidmatte.segmentation.frame_instances import Detections, Segmenter, frame_instances
from vidmatte.segmentation.preview import render_tracks
from vidmatte.segmentation.track_config import TrackConfig
from vidmatte.segmentation.tracker import Tracker

PERSON_CATEGORY = 1  # YouTube-VIS's category id of "person"
DEFAULT_CONFIG = TrackConfig()


class Detector(Protocol):
    """Person detection on one ``(H, W, 3)`` uint8 RGB image (as
    :func:`vidmatte.segmentation.movenet.detect_people` with its model bound)."""

    def __call__(self, image: np.ndarray) -> Detections: ...


@dataclass(frozen=True)
class PersonTrack:
    """One person through a video.

    Attributes:
        id: the track's number, from 0 in order of appearance; the track's position in the JSON, so
            instance ``f"{id:03d}"`` of ``vidmatte matte --masks``.
        score: mean score of its instances (detector scores; mean probability for fallback ones).
        segmentations: COCO RLE ``{"size": [H, W], "counts": str}`` per frame, ``None`` where absent.
    """

    id: int
    score: float
    segmentations: list[dict | None]

    def as_ytvis(self, video_id: int = 1) -> Track:
        """The track as the YouTube-VIS readers of :mod:`vidmatte.io.masks` hold it."""
        return Track(video_id, PERSON_CATEGORY, self.score, self.segmentations)


@dataclass(frozen=True)
class PersonTracks:
    """The person tracks of one video.

    Attributes:
        tracks: by id.
        frame_count: frames of the video (the length of every track's ``segmentations``).
        height: frame height in pixels.
        width: frame width in pixels.
    """

    tracks: list[PersonTrack]
    frame_count: int
    height: int
    width: int

    def masks(self, frame: int) -> np.ndarray:
        """``(N, H, W)`` bool, track ``i``'s mask on ``frame`` (disjoint; empty where it is absent)."""
        size = (self.height, self.width)
        masks = [track.as_ytvis().mask(frame, size, f"track {track.id}") for track in self.tracks]
        return np.stack(masks) if masks else np.zeros((0, *size), bool)

    def write_json(self, path: str | os.PathLike, video_id: int = 1) -> None:
        """Write a YouTube-VIS result file: ``[{video_id, category_id: 1, score, segmentations}]``."""
        write_ytvis_json(path, [track.as_ytvis(video_id) for track in self.tracks])


class TrackBuilder(Protocol):
    """:func:`build_person_tracks` with its detector, segmenter and configuration bound."""

    def __call__(
        self, frames: Iterable[np.ndarray], *, progress: Callable[[int], None] | None = None
    ) -> PersonTracks: ...


def build_person_tracks(
    frames: Iterable[np.ndarray],
    *,
    detect: Detector,
    segment: Segmenter,
    config: TrackConfig = DEFAULT_CONFIG,
    progress: Callable[[int], None] | None = None,
) -> PersonTracks:
    """Track every person of a video.

    Args:
        frames: ``(H, W, 3)`` uint8 RGB frames, all of one size, consumed one at a time.
        detect: the person detector.
        segment: the person segmenter: ``(B, 3, h, w)`` float RGB in [0, 1] to ``(B, 1, h, w)``
            probabilities in [0, 1].
        config: thresholds.
        progress: called with the number of frames done after each frame.

    Returns:
        The confirmed tracks, by id, with one mask per frame where seen (masks of a frame are disjoint).

    Raises:
        ValueError: no frame, or frames of different sizes.
    """
    tracker: Tracker | None = None
    count = 0
    for index, image in enumerate(frames):
        if tracker is None:
            tracker = Tracker(config, image.shape[:2])
        if image.shape != (*tracker.size, 3) or image.dtype != np.uint8:
            expected = (*tracker.size, 3)
            raise ValueError(f"frame {index}: {image.dtype} {image.shape}, expected uint8 {expected}")
        tracker.update(index, frame_instances(image, detect(image), segment, config))
        count = index + 1
        if progress is not None:
            progress(count)
    if tracker is None:
        raise ValueError("no frame to track people on")
    tracks = [
        PersonTrack(
            history.id,
            float(np.mean(history.scores)),
            [history.rles.get(frame) for frame in range(count)],
        )
        for history in tracker.finish()
    ]
    return PersonTracks(tracks, count, *tracker.size)


@functools.cache
def load_person_models(
    device: str | torch.device = "cpu", config: TrackConfig | None = None
) -> tuple[Detector, Segmenter]:
    """The shipped MoveNet MultiPose detector and selfie segmenter, as a ``(detect, segment)`` pair.

    Loaded once per process for each device and config: a batch of videos, each matted with the people of
    its first frame, reads the weights once.

    Args:
        device: where both networks run.
        config: thresholds (default :class:`TrackConfig`); the detector runs at ``config.min_score``.
    """
    from vidmatte.segmentation.movenet import detect_people, load_person_detector
    from vidmatte.segmentation.selfie import load_selfie_segmentation, segment_people

    config = config or DEFAULT_CONFIG
    detector = load_person_detector(device)
    segmenter = load_selfie_segmentation("general", device)

    def detect(image: np.ndarray) -> Detections:
        # never upscaled: on a small frame the people are no larger for it, only slower to find
        width = min(config.detect_width, image.shape[1])
        return detect_people(detector, image, min_score=config.min_score, input_width=width)

    def segment(images: Tensor) -> Tensor:
        return segment_people(segmenter, images.to(device)).cpu()

    return detect, segment


def default_track_builder(
    device: str | torch.device = "cpu", config: TrackConfig | None = None
) -> TrackBuilder:
    """:func:`build_person_tracks` with the models of :func:`load_person_models`."""
    config = config or DEFAULT_CONFIG
    detect, segment = load_person_models(device, config)
    return functools.partial(build_person_tracks, detect=detect, segment=segment, config=config)


def segment_video(
    video: str | os.PathLike,
    out: str | os.PathLike,
    *,
    preview: str | os.PathLike | None = None,
    builder: TrackBuilder | None = None,
    device: str | torch.device = "cpu",
    config: TrackConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> PersonTracks:
    """Track the people of a video into a YouTube-VIS result file, and optionally a colour-coded preview.

    Outputs appear only when complete. The input and both outputs are checked before any model loads.

    Args:
        video: a video file or a folder of frames.
        out: the YouTube-VIS result JSON (``[]`` when nobody is found).
        preview: a video (.mp4, .m4v, .mov, .webm, .mkv) or, without a suffix, a folder of PNGs: each track
            tinted in its own colour, its number at the top of its mask.
        builder: the track builder (default: :func:`default_track_builder` on ``device`` with ``config``).
        device: where the default builder's networks run.
        config: thresholds of the default builder.
        progress: called with the number of frames tracked after each frame.

    Raises:
        VidmatteError: a missing or unreadable video, an output that cannot be written.
    """
    preview = Path(preview) if preview is not None else None
    if preview is not None and preview.suffix and preview.suffix.lower() not in VIDEO_SUFFIXES:
        raise VidmatteError(
            f"{preview}: a preview is a {', '.join(VIDEO_SUFFIXES)} video or a folder of PNGs (no suffix)"
        )
    tracks_file = AtomicOutput(out)  # fails now, not after the tracking, where it cannot be written
    try:
        with contextlib.ExitStack() as stack:
            reader = stack.enter_context(open_frames(video))
            writer = None
            if preview is not None:
                writer = stack.enter_context(FrameWriter(preview, "rgb", reader.info, copy_audio=False))
            builder = builder or default_track_builder(device, config)
            tracks = builder((frame.image for frame in reader), progress=progress)
            tracks.write_json(tracks_file.partial)
            tracks_file.commit()
            if writer is not None:
                ids = [track.id for track in tracks.tracks]
                # a second pass: a track's earliest frames are known only once it is confirmed
                with open_frames(video) as frames:
                    for frame in frames:
                        writer.write(render_tracks(frame.image, tracks.masks(frame.index), ids), frame.pts)
    finally:
        tracks_file.discard()
    return tracks
