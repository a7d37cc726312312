"""One frame's person instances: detector boxes, segmentation of a crop around each, one owner per pixel.

Each detected person is segmented on a square crop around their box (the selfie segmenter is good on
close-ups and poor on small people seen whole-frame), the crops of a frame in one batch. The crops'
probabilities are pasted back into the frame, and a pixel goes to the person of highest probability
(near-ties to the nearer box centre: two confident crops often differ by a hair, and the nearer centre
then gives clean borders instead of speckle), if that probability exceeds the threshold, so instances
never overlap.
Optionally the whole frame is segmented too, and confident foreground that no detected person covers
becomes extra instances (people the detector missed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numba
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

from vidmatte.segmentation.box_mask import BoxMask
from vidmatte.segmentation.track_config import TrackConfig


class Detections(Protocol):
    """People found on one image, best first (as :class:`vidmatte.segmentation.movenet.PersonDetections`).

    Attributes:
        boxes: ``(N, 4)`` float32 ``x0, y0, x1, y1`` in pixels of the image.
        keypoints: ``(N, 17, 3)`` float32 ``(x, y, score)``, x and y in pixels.
        scores: ``(N,)`` float32 in [0, 1].
    """

    @property
    def boxes(self) -> np.ndarray: ...

    @property
    def keypoints(self) -> np.ndarray: ...

    @property
    def scores(self) -> np.ndarray: ...


class Segmenter(Protocol):
    """Person segmentation of a batch of images (as :func:`vidmatte.segmentation.selfie.segment_people`).

    Takes ``(B, 3, h, w)`` float RGB in [0, 1] of any size and returns ``(B, 1, h, w)`` person
    probabilities in [0, 1].
    """

    def __call__(self, images: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class Instance:
    """One person on one frame.

    Attributes:
        mask: where they are, disjoint from the frame's other instances.
        keypoints: ``(17, 3)`` float32 ``(x, y, score)`` in pixels, ``None`` for a fallback instance.
        score: the detector's score, or for a fallback instance its mean segmentation probability.
        detected: found by the detector (``False``: by the whole-frame fallback).
    """

    mask: BoxMask
    keypoints: np.ndarray | None
    score: float
    detected: bool


def crop_window(box: np.ndarray, crop_scale: float, height: int, width: int) -> tuple[int, int, int]:
    """The square crop segmented around a box: centred on it, shifted inside the image where it fits.

    Args:
        box: ``(4,)`` ``x0, y0, x1, y1`` in pixels, inside the image.
        crop_scale: crop side / the box's longer side.
        height: image height.
        width: image width.

    Returns:
        ``(top, left, side)`` in pixels; ``top`` or ``left`` is negative (the crop is padded on both
        sides) only where ``side`` exceeds the image.

    >>> crop_window(np.array([0, 10, 20, 30]), 1.5, 100, 200)
    (5, 0, 30)
    >>> crop_window(np.array([0, 0, 40, 90]), 1.2, 100, 60)
    (-4, -24, 108)
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(1, math.ceil(crop_scale * max(x1 - x0, y1 - y0)))

    def start(centre: float, extent: int) -> int:
        if side <= extent:
            return int(np.clip(round(centre - side / 2), 0, extent - side))
        return (extent - side) // 2

    return start((y0 + y1) / 2, height), start((x0 + x1) / 2, width), side


def assign_pixels(
    regions: Sequence[tuple[int, int, int, int]],
    probabilities: Sequence[np.ndarray],
    centres: np.ndarray,
    size: tuple[int, int],
    threshold: float,
    tie_margin: float = 0.0,
) -> np.ndarray:
    """Give each pixel to one person: the most probable one, ties to the nearer box centre.

    People are taken in turn (the detector's order), each contesting the pixels of their own region
    only, so the work grows with the people's size, not the frame's. Each pixel keeps its current owner
    unless the newcomer is more probable by more than ``tie_margin``, or within it and nearer.

    Args:
        regions: ``(y0, y1, x0, x1)`` of each person's crop inside the frame.
        probabilities: each person's probability over their region, ``(y1 - y0, x1 - x0)`` float in
            [0, 1].
        centres: ``(N, 2)`` box centres ``(x, y)`` in pixels.
        size: ``(H, W)`` of the frame.
        threshold: a pixel belongs to a person only where their probability exceeds this.
        tie_margin: probabilities this close count as tied.

    Returns:
        ``(H, W)`` int32, the owner's index or -1.

    >>> p = [np.array([[0.9, 0.6, 0.4]]), np.array([[0.6, 0.6, 0.3]])]
    >>> assign_pixels([(0, 1, 0, 3)] * 2, p, np.array([[0.0, 0.0], [2.5, 0.0]]), (1, 4), 0.5).tolist()
    [[0, 1, -1, -1]]
    """
    owner = np.full(size, -1, np.int32)
    best = np.zeros(size, np.float32)
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    for index, ((y0, y1, x0, x1), probability) in enumerate(zip(regions, probabilities, strict=True)):
        if probability.shape != (y1 - y0, x1 - x0):
            raise ValueError(
                f"person {index}: probability of {probability.shape} for a region of {y1 - y0}x{x1 - x0}"
            )
        _contest(
            owner, best, np.asarray(probability, np.float32), y0, x0, index, centres, threshold, tie_margin
        )
    return owner


@numba.njit(cache=True)
def _contest(
    owner: np.ndarray,
    best: np.ndarray,
    probability: np.ndarray,
    top: int,
    left: int,
    index: int,
    centres: np.ndarray,
    threshold: float,
    tie_margin: float,
) -> None:
    """Person ``index`` takes the pixels of their region that they win (see :func:`assign_pixels`)."""
    cx, cy = centres[index, 0], centres[index, 1]
    for i in range(probability.shape[0]):
        y = top + i
        for j in range(probability.shape[1]):
            p = probability[i, j]
            if p <= threshold:
                continue
            x = left + j
            rival = owner[y, x]
            if rival < 0 or p > best[y, x] + tie_margin:
                wins = True
            elif p >= best[y, x] - tie_margin:
                # pixel (x, y) covers [x, x + 1) in box coordinates
                px, py = x + 0.5, y + 0.5
                mine = (px - cx) ** 2 + (py - cy) ** 2
                theirs = (px - centres[rival, 0]) ** 2 + (py - centres[rival, 1]) ** 2
                wins = mine < theirs
            else:
                wins = False
            if wins:
                owner[y, x] = index
                best[y, x] = p


@torch.inference_mode()
def frame_instances(
    image: np.ndarray, detections: Detections, segment: Segmenter, config: TrackConfig
) -> list[Instance]:
    """The people on one frame as disjoint masks: the detected ones, then the fallback's.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        detections: the detector's people on ``image``.
        segment: the person segmenter.
        config: thresholds.

    Returns:
        Instances, detected ones in the detector's order; detections whose mask has fewer than
        ``config.min_mask_pixels`` pixels are left out.
    """
    height, width = image.shape[:2]
    boxes = np.asarray(detections.boxes, np.float32).reshape(-1, 4).copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = (
        (np.asarray(detections.scores) >= config.min_score)
        & (boxes[:, 2] > boxes[:, 0])
        & (boxes[:, 3] > boxes[:, 1])
    )
    boxes = boxes[keep]
    keypoints = np.asarray(detections.keypoints, np.float32)[keep]
    scores = np.asarray(detections.scores, np.float32)[keep]

    instances = []
    owner = np.full((height, width), -1, np.int32)
    if len(boxes):
        windows = [crop_window(box, config.crop_scale, height, width) for box in boxes]
        crops = _segmented(segment, torch.stack([_crop(image, *w, config.crop_size) for w in windows]))
        regions = [_inside(*window, height, width) for window in windows]
        probabilities = [_paste(crops[i], *windows[i], regions[i]) for i in range(len(boxes))]
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        owner = assign_pixels(
            regions, probabilities, centres, (height, width), config.mask_threshold, config.tie_margin
        )
        for index, (y0, y1, x0, x1) in enumerate(regions):
            mask = BoxMask.of(owner[y0:y1, x0:x1] == index, y0, x0)
            if mask is not None and mask.area >= config.min_mask_pixels:
                instances.append(Instance(mask, keypoints[index], float(scores[index]), True))
    if config.fallback:
        instances.extend(_fallback_instances(image, owner >= 0, segment, config))
    return instances


def _segmented(segment: Segmenter, images: Tensor) -> Tensor:
    """``segment(images)`` on the CPU, checked for shape: ``(B, 1, h, w)`` float in [0, 1]."""
    probabilities = segment(images)
    expected = (images.shape[0], 1, *images.shape[2:])
    if tuple(probabilities.shape) != expected:
        raise ValueError(f"the segmenter returned {tuple(probabilities.shape)} for images of {expected}")
    return probabilities.detach().float().cpu().clamp(0, 1)


def _inside(top: int, left: int, side: int, height: int, width: int) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the part of a square window that lies inside the frame."""
    return max(top, 0), min(top + side, height), max(left, 0), min(left + side, width)


def _as_tensor(image: np.ndarray) -> Tensor:
    """``(1, 3, h, w)`` uint8 from ``(h, w, 3)`` (copied: decoded frames are read-only)."""
    return torch.from_numpy(np.array(image, np.uint8)).permute(2, 0, 1)[None]


def _resized(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(B, C, h, w)`` (uint8 or float), antialiased when shrinking."""
    shrinking = size[0] < images.shape[2] or size[1] < images.shape[3]
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def _crop(image: np.ndarray, top: int, left: int, side: int, size: int) -> Tensor:
    """``(3, size, size)`` float in [0, 1]: a square window of ``image``, its border replicated outside."""
    y0, y1, x0, x1 = _inside(top, left, side, *image.shape[:2])
    region = _as_tensor(image[y0:y1, x0:x1])
    padding = (x0 - left, left + side - x1, y0 - top, top + side - y1)
    if any(padding):
        region = F.pad(region, padding, mode="replicate")
    # resized as uint8, several times faster than in float for the same result within 1/255
    return _resized(region, (size, size))[0].float().div(255)


def _paste(
    probability: Tensor, top: int, left: int, side: int, region: tuple[int, int, int, int]
) -> np.ndarray:
    """A crop's ``(1, size, size)`` probability resized to its window, over the window's ``region``."""
    y0, y1, x0, x1 = region
    full = _resized(probability[None], (side, side))[0, 0]
    return full[y0 - top : y1 - top, x0 - left : x1 - left].numpy()


def _fallback_instances(
    image: np.ndarray, covered: np.ndarray, segment: Segmenter, config: TrackConfig
) -> list[Instance]:
    """Connected components of the whole frame's confident foreground that no detected person covers.

    Components are found at the segmenter's (small) resolution, where an opening removes the slivers
    along detected people's edges and pieces mostly enclosed by detected people are left to them; each
    one's mask is then taken from the probability at full size, inside the component's bounding box.
    """
    height, width = covered.shape
    scale = config.fallback_size / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    probability = _segmented(segment, _resized(_as_tensor(image), size).float().div(255))[0]
    # a small pixel counts as covered where any full-size pixel in it is
    covered_small = F.interpolate(torch.from_numpy(covered)[None, None].float(), size=size, mode="area")
    people = covered_small[0, 0].numpy() > 0
    free = (probability[0].numpy() > config.mask_threshold) & ~people
    if config.fallback_opening:
        free = ndimage.binary_opening(free, structure=_disk(config.fallback_opening))
    labels, _ = ndimage.label(free)
    kept = _loose_components(labels, ndimage.binary_dilation(people), config)
    if not kept:
        return []
    confident = _resized(probability[None], (height, width))[0, 0].numpy() > config.mask_threshold
    instances = []
    for label, box in kept:
        # the component's box at full size, and which small pixel each of its full-size pixels falls in
        y0, y1 = (int(box[0].start * height / size[0]), math.ceil(box[0].stop * height / size[0]))
        x0, x1 = (int(box[1].start * width / size[1]), math.ceil(box[1].stop * width / size[1]))
        rows = np.minimum(((np.arange(y0, y1) + 0.5) * size[0] / height).astype(np.int64), size[0] - 1)
        columns = np.minimum(((np.arange(x0, x1) + 0.5) * size[1] / width).astype(np.int64), size[1] - 1)
        inside = (labels[rows[:, None], columns[None, :]] == label) & confident[y0:y1, x0:x1]
        mask = BoxMask.of(inside & ~covered[y0:y1, x0:x1], y0, x0)
        if mask is not None and mask.area >= config.min_mask_pixels:
            score = float(probability[0].numpy()[labels == label].mean())
            instances.append(Instance(mask, None, score, False))
    return instances


def _loose_components(
    labels: np.ndarray, near_people: np.ndarray, config: TrackConfig
) -> list[tuple[int, tuple[slice, slice]]]:
    """The labelled components large enough, and not mostly enclosed by detected people.

    A component whose outline runs along detected people for more than ``config.fallback_max_contact``
    of its length is a part of them the crops left out (the gap between arm and body, a limb), not
    another person.

    Args:
        labels: ``(h, w)`` int, components numbered from 1.
        near_people: ``(h, w)`` bool, detected people's pixels and their neighbours.
        config: thresholds.

    Returns:
        ``(label, bounding box)`` of each component kept.
    """
    min_area = config.fallback_min_area * labels.size
    kept = []
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        component = labels[box] == label
        if np.count_nonzero(component) < min_area:
            continue
        outline = component & ~ndimage.binary_erosion(component)
        if np.count_nonzero(outline & near_people[box]) > config.fallback_max_contact * np.count_nonzero(
            outline
        ):
            continue
        kept.append((label, box))
    return kept


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius
