"""The people on a video's first frame, as the page shows them to be kept or dropped.

They are the person tracks (:mod:`vidmatte.segmentation.tracks`) built on the first few frames, as
many as a track needs to be confirmed, taken on frame 0: so a person's mask and number there are those
that tracking the whole video gives on frame 0 (the tracker only looks back), and a kept person is
found again among the whole video's tracks by their frame-0 mask (:func:`match_tracks`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from vidmatte.errors import VidmatteError
from vidmatte.io.jsonfile import write_json
from vidmatte.io.masks import decode_rle, encode_rle
from vidmatte.io.reader import VideoInfo, open_frames
from vidmatte.segmentation.track_config import TrackConfig

if TYPE_CHECKING:  # the tracks import torch, which the page's server does not need
    from vidmatte.segmentation.frame_instances import Segmenter
    from vidmatte.segmentation.tracks import Detector, PersonTrack, PersonTracks

PEOPLE_FILE = "people.json"
FIRST_FRAME_FILE = "first.png"
CLICK_REACH = 0.02  # a click this close to a person (fraction of the frame's diagonal) picks them
MIN_MATCH_IOU = 0.5  # a whole-video track is a kept person's when their frame-0 masks overlap this much


@dataclass(frozen=True)
class FirstFramePeople:
    """Every person found on a video's first frame.

    Attributes:
        ids: their track ids, ascending (the numbers the page and ``vidmatte segment`` show).
        masks: ``(N, H, W)`` bool, person ``ids[i]``'s mask on frame 0 (disjoint).
    """

    ids: list[int]
    masks: np.ndarray

    def person_at(self, x: float, y: float) -> int | None:
        """The person at pixel ``(x, y)``, or the nearest one within :data:`CLICK_REACH`; ``None``: nobody.

        >>> masks = np.zeros((1, 10, 10), bool); masks[0, 2:4, 2:4] = True
        >>> people = FirstFramePeople([7], masks)
        >>> people.person_at(3, 3), people.person_at(9, 9)
        (7, None)
        """
        height, width = self.masks.shape[1:]
        column, row = int(x), int(y)
        if not (0 <= row < height and 0 <= column < width) or not self.ids:
            return None
        reach = CLICK_REACH * float(np.hypot(height, width))
        # distance from the clicked pixel to each person's nearest pixel
        distances = [
            float(ndimage.distance_transform_edt(~mask)[row, column]) if mask.any() else np.inf
            for mask in self.masks
        ]
        best = int(np.argmin(distances))
        return self.ids[best] if distances[best] <= reach else None

    def union(self, kept: Sequence[int]) -> np.ndarray:
        """``(H, W)`` bool: where any of the ``kept`` people are."""
        chosen = [mask for person, mask in zip(self.ids, self.masks, strict=True) if person in kept]
        return np.logical_or.reduce(chosen) if chosen else np.zeros(self.masks.shape[1:], bool)

    def save(self, folder: Path) -> None:
        """Write ``folder/people.json`` (ids and COCO RLE masks)."""
        records = [{"id": i, "mask": encode_rle(m)} for i, m in zip(self.ids, self.masks, strict=True)]
        write_json(folder / PEOPLE_FILE, {"size": list(self.masks.shape[1:]), "people": records})

    @classmethod
    def load(cls, folder: Path) -> FirstFramePeople:
        """Read what :meth:`save` wrote."""
        content = json.loads((folder / PEOPLE_FILE).read_text())
        records = content["people"]
        masks = [decode_rle(record["mask"]) for record in records]
        shape = (len(records), *content["size"])
        return cls([r["id"] for r in records], np.stack(masks) if masks else np.zeros(shape, bool))


def find_people(
    video: Path, detect: Detector, segment: Segmenter, config: TrackConfig | None = None
) -> tuple[np.ndarray, FirstFramePeople, VideoInfo]:
    """The first frame of ``video`` and the people on it.

    Args:
        video: a video file or image folder.
        detect, segment: the person detector and segmenter
            (:func:`vidmatte.segmentation.tracks.load_person_models`).
        config: the track builder's thresholds.

    Returns:
        ``(H, W, 3)`` uint8 RGB first frame, its people, and the video's size, rate and frame count.

    Raises:
        VidmatteError: the video cannot be read.
    """
    from vidmatte.segmentation.tracks import build_person_tracks

    config = config or TrackConfig()
    with open_frames(video, accept_truncated=True) as reader:
        frames = [frame.image for frame in itertools.islice(reader, config.birth_frames)]
        info = reader.info
    tracks = build_person_tracks(frames, detect=detect, segment=segment, config=config)
    masks = tracks.masks(0)
    present = [i for i, mask in enumerate(masks) if mask.any()]
    people = FirstFramePeople([tracks.tracks[i].id for i in present], masks[present])
    return frames[0], people, info


def match_tracks(people: FirstFramePeople, kept: Sequence[int], tracks: PersonTracks) -> list[PersonTrack]:
    """The whole video's tracks of the ``kept`` first-frame people, in the order of ``kept``.

    Raises:
        VidmatteError: a kept person has no track whose frame-0 mask overlaps theirs enough.
    """
    frame0 = tracks.masks(0)
    chosen = []
    for person in kept:
        mask = people.masks[people.ids.index(person)]
        overlaps = [(mask & m).sum() / max((mask | m).sum(), 1) for m in frame0]
        best = int(np.argmax(overlaps)) if overlaps else -1
        if best < 0 or overlaps[best] < MIN_MATCH_IOU:
            raise VidmatteError(
                f"person {person} of the first frame was not tracked through the video; "
                "drop them or use AdaM (everyone in one matte)"
            )
        chosen.append(tracks.tracks[best])
    return chosen
