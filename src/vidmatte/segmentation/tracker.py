"""Identities across frames: Hungarian matching of tracks to each frame's instances, birth and end rules.

A track is matched to an instance at the least total cost (:func:`scipy.optimize.linear_sum_assignment`)
where the cost mixes ``1 - mask IoU`` and a normalised keypoint distance, both measured after moving
the track by its velocity to the frame, so that people passing each other, or reappearing after a short
occlusion, are found where they are headed. Confirmed tracks are matched first, then tentative ones to
what is left. Only the last mask (cropped to its bounding box), keypoints and velocity of each live track
are held, plus the COCO RLEs of its frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from vidmatte.io.masks import encode_rle
from vidmatte.segmentation.box_mask import BoxMask
from vidmatte.segmentation.frame_instances import Instance
from vidmatte.segmentation.track_config import TrackConfig

_INFEASIBLE = 1e6  # cost of a gated pair; dearer than any number of feasible ones


@dataclass
class TrackHistory:
    """A track as the tracker leaves it.

    Attributes:
        id: position among the confirmed tracks, from 0, in order of confirmation (-1 until then).
        rles: COCO RLE of each frame the track was seen on, by frame index.
        scores: the score of each of those instances.
    """

    id: int
    rles: dict[int, dict] = field(default_factory=dict)
    scores: list[float] = field(default_factory=list)


@dataclass
class _LiveTrack:
    mask: BoxMask
    keypoints: np.ndarray | None
    last_frame: int
    history: TrackHistory
    confirmed: bool
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    has_velocity: bool = False

    def shift(self, frame: int) -> tuple[int, int]:
        """Where the track has moved by ``frame``, ``(dx, dy)`` whole pixels."""
        dx, dy = np.rint(self.velocity * (frame - self.last_frame))
        return int(dx), int(dy)


class Tracker:
    """Feed it each frame's instances in order (:meth:`update`), then take the tracks (:meth:`finish`).

    Args:
        config: thresholds.
        size: ``(H, W)`` of the frames.
    """

    def __init__(self, config: TrackConfig, size: tuple[int, int]) -> None:
        self.config = config
        self.size = size
        self._live: list[_LiveTrack] = []
        self._ended: list[TrackHistory] = []
        self._next_id = 0

    def update(self, frame: int, instances: list[Instance]) -> None:
        """Match ``frame``'s instances to the live tracks; start, confirm and end tracks.

        Args:
            frame: the frame's index, increasing from call to call.
            instances: the frame's instances (disjoint masks).
        """
        free = list(range(len(instances)))
        matched: set[int] = set()
        for group in ([t for t in self._live if t.confirmed], [t for t in self._live if not t.confirmed]):
            pairs = self._match(group, [instances[i] for i in free], frame)
            for track_index, slot in pairs:
                self._observe(group[track_index], instances[free[slot]], frame)
                matched.add(id(group[track_index]))
            taken = {slot for _, slot in pairs}
            free = [index for slot, index in enumerate(free) if slot not in taken]

        still_live = []
        for track in self._live:
            if id(track) in matched or (
                track.confirmed and frame - track.last_frame <= self.config.max_missed
            ):
                still_live.append(track)
            elif track.confirmed:
                self._ended.append(track.history)
            # an unconfirmed track missed on a frame is dropped: birth needs consecutive frames
        self._live = still_live
        for index in free:
            self._start(instances[index], frame)

    def finish(self) -> list[TrackHistory]:
        """Every confirmed track, ended or live, by id."""
        histories = self._ended + [t.history for t in self._live if t.confirmed]
        return sorted(histories, key=lambda h: h.id)

    def _match(
        self, tracks: list[_LiveTrack], instances: list[Instance], frame: int
    ) -> list[tuple[int, int]]:
        if not tracks or not instances:
            return []
        cost = np.array([[self._cost(t, i, frame) for i in instances] for t in tracks])
        rows, columns = linear_sum_assignment(cost)
        return [(r, c) for r, c in zip(rows, columns, strict=True) if cost[r, c] <= self.config.max_cost]

    def _cost(self, track: _LiveTrack, instance: Instance, frame: int) -> float:
        """``(1 - w) (1 - IoU) + w min(1, d / (tolerance size))``, or ``1 - IoU`` without keypoints."""
        shift = track.shift(frame)
        mask_cost = 1.0 - track.mask.iou(instance.mask, shift)
        distance = _keypoint_distance(
            track.keypoints, instance.keypoints, shift, self.config.keypoint_min_score
        )
        if distance is None:
            cost = mask_cost
        else:
            keypoint_cost = min(1.0, distance / (self.config.keypoint_tolerance * track.mask.size))
            weight = self.config.keypoint_weight
            cost = (1 - weight) * mask_cost + weight * keypoint_cost
        return cost if cost <= self.config.max_cost else _INFEASIBLE

    def _observe(self, track: _LiveTrack, instance: Instance, frame: int) -> None:
        step = (instance.mask.centroid - track.mask.centroid) / (frame - track.last_frame)
        smoothing = self.config.velocity_smoothing if track.has_velocity else 1.0
        track.velocity = smoothing * step + (1 - smoothing) * track.velocity
        track.has_velocity = True
        track.mask, track.keypoints, track.last_frame = instance.mask, instance.keypoints, frame
        self._record(track.history, instance, frame)
        if not track.confirmed and len(track.history.rles) >= self.config.birth_frames:
            self._confirm(track)

    def _start(self, instance: Instance, frame: int) -> None:
        track = _LiveTrack(instance.mask, instance.keypoints, frame, TrackHistory(-1), confirmed=False)
        self._record(track.history, instance, frame)
        self._live.append(track)
        if self.config.birth_frames <= 1 or (instance.detected and instance.score >= self.config.birth_score):
            self._confirm(track)

    def _record(self, history: TrackHistory, instance: Instance, frame: int) -> None:
        history.rles[frame] = encode_rle(instance.mask.full(self.size))
        history.scores.append(instance.score)

    def _confirm(self, track: _LiveTrack) -> None:
        track.confirmed = True
        track.history.id = self._next_id
        self._next_id += 1


def _keypoint_distance(
    track: np.ndarray | None, instance: np.ndarray | None, shift: tuple[int, int], min_score: float
) -> float | None:
    """Mean distance in pixels between keypoints confident in both ``(17, 3)``, ``None`` if none are."""
    if track is None or instance is None:
        return None
    both = (track[:, 2] >= min_score) & (instance[:, 2] >= min_score)
    if not both.any():
        return None
    moved = track[both, :2] + np.array(shift, np.float32)
    return float(np.linalg.norm(moved - instance[both, :2], axis=1).mean())
