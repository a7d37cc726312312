"""Guidance masks as a video instance segmenter would produce them, errors included.

Masks start from the ground-truth visible alphas (binarised), then receive the errors seen in
the output of real segmenters such as MaskTrackRCNN: coarse (low-resolution) boundaries, eroded
or dilated outlines, frames where an instance is missed, holes, false positive blobs, identity
switches between two tracks, and an instance that is never detected at all.

For training MSG-VIM, :func:`augment_masks` adds the paper's Mixture of Mask Augmentations (mask
erase, paste and merge) and temporal mask guidance on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from vidmatte.data.segmenter_errors import SegmenterErrors
from vidmatte.io.masks import Track, encode_rle


@dataclass
class Guidance:
    """Simulated segmenter output for one clip.

    Attributes:
        masks: ``(K, T, H, W)`` bool, one mask sequence per track.
        instance: ``(K,)`` the ground-truth instance each track follows at frame 0.
        switches: ``(frame, track_a, track_b)``: the two tracks exchange instances from ``frame`` on.
        missed: ground-truth instances that no track follows.
        scores: ``(K,)`` detection confidence per track, in (0, 1].
    """

    masks: np.ndarray
    instance: list[int]
    switches: list[tuple[int, int, int]] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def followed(self) -> np.ndarray:
        """``(K, T)`` int: the ground-truth instance that each track follows in each frame."""
        frames = self.masks.shape[1]
        follows = np.repeat(np.asarray(self.instance, np.int64)[:, None], frames, axis=1)
        for frame, a, b in self.switches:
            follows[[a, b], frame:] = follows[[b, a], frame:]
        return follows

    def reference(self) -> np.ndarray:
        """``(K, T, H, W)`` bool: for each track, the union of all the other tracks' masks."""
        union = self.masks.any(axis=0, keepdims=True)
        counts = self.masks.sum(axis=0, keepdims=True)
        return union & ((counts - self.masks) > 0)

    def tracks(self, video_id: int, category_id: int = 1) -> list[Track]:
        """The tracks in YouTube-VIS result form (``None`` where a frame's mask is empty)."""
        return [
            Track(
                video_id=video_id,
                category_id=category_id,
                score=score,
                segmentations=[encode_rle(m) if m.any() else None for m in masks],
            )
            for masks, score in zip(self.masks, self.scores, strict=True)
        ]

    def metadata(self) -> dict:
        return {
            "instance": [int(i) for i in self.instance],
            "switches": [[int(v) for v in s] for s in self.switches],
            "missed": [int(i) for i in self.missed],
            "scores": [float(s) for s in self.scores],
        }


def simulate_segmenter(alphas: np.ndarray, errors: SegmenterErrors, rng: np.random.Generator) -> Guidance:
    """Make guidance masks from ground-truth alphas.

    Args:
        alphas: ``(N, T, H, W)`` float in [0, 1], each instance's visible alpha.
        errors: which errors to make, and how often.
        rng: source of randomness (the result is deterministic given its state).

    Returns:
        One track per detected instance, in instance order.
    """
    count, frames = alphas.shape[:2]
    truth = alphas > errors.threshold
    instances = list(range(count))
    missed = []
    if count >= 2 and rng.random() < errors.missed_instance:
        missed = [int(rng.integers(count))]
        instances.remove(missed[0])
    masks = np.stack([_track(truth[i], errors, rng) for i in instances]) if instances else truth[:0]
    switches = []
    if len(instances) >= 2 and frames >= 2 and rng.random() < errors.identity_switch:
        a, b = (int(v) for v in rng.choice(len(instances), 2, replace=False))
        frame = int(rng.integers(1, frames))
        masks[[a, b], frame:] = masks[[b, a], frame:]
        switches.append((frame, a, b))
    scores = [float(rng.uniform(0.5, 1.0)) for _ in instances]
    return Guidance(masks=masks, instance=instances, switches=switches, missed=missed, scores=scores)


def _track(truth: np.ndarray, errors: SegmenterErrors, rng: np.random.Generator) -> np.ndarray:
    frames, height, width = truth.shape
    coarse = rng.random() < errors.coarse
    radius = int(rng.integers(-errors.boundary, errors.boundary + 1)) if errors.boundary > 0 else 0
    masks = np.empty_like(truth)
    for t in range(frames):
        mask = truth[t]
        if coarse:
            mask = _coarse(mask, errors.coarse_factor)
        jitter = int(rng.integers(-errors.boundary_jitter, errors.boundary_jitter + 1))
        mask = _grow(mask, radius + jitter)
        if rng.random() < errors.holes and mask.any():
            rows = np.flatnonzero(mask.any(axis=1))
            size = max(1.0, errors.hole_size * (rows[-1] - rows[0] + 1))
            ys, xs = np.nonzero(mask)
            pick = int(rng.integers(len(ys)))
            mask = mask & ~_disc(height, width, ys[pick], xs[pick], size * rng.uniform(0.5, 1.0))
        if rng.random() < errors.false_positives:
            size = max(1.0, errors.blob_size * height * rng.uniform(0.5, 1.5))
            mask = mask | _disc(height, width, rng.uniform(0, height), rng.uniform(0, width), size)
        if rng.random() < errors.missing_frames:
            mask = np.zeros_like(mask)
        masks[t] = mask
    return masks


def _coarse(mask: np.ndarray, factor: int) -> np.ndarray:
    height, width = mask.shape
    small = (max(1, width // factor), max(1, height // factor))
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    blocky = image.resize(small, Image.BILINEAR).resize((width, height), Image.BILINEAR)
    return np.asarray(blocky) >= 128


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius == 0 or not mask.any():
        return mask
    r = abs(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = xx * xx + yy * yy <= r * r
    if radius > 0:
        return ndimage.binary_dilation(mask, disc)
    return ndimage.binary_erosion(mask, disc)


def _disc(height: int, width: int, cy: float, cx: float, radius: float) -> np.ndarray:
    ys = np.arange(height)[:, None] - cy
    xs = np.arange(width)[None, :] - cx
    return ys * ys + xs * xs <= radius * radius


@dataclass(frozen=True)
class MaskAugment:
    """MSG-VIM's training-time mask augmentations: the Mixture of Mask Augmentations (erase, paste,
    merge) and temporal mask guidance. Probabilities are per instance (erase and paste per frame).

    Attributes:
        erase: remove a box from the instance's mask.
        paste: copy a box of another instance's mask into this one.
        merge: take the union with another instance's whole mask sequence (two people detected as one).
        temporal: ``m_t := m_t | m_i`` for every frame ``t`` and one random frame ``i``.
        box: box side as a fraction of the instance's (or the other instance's) extent.
    """

    erase: float = 0.2
    paste: float = 0.2
    merge: float = 0.1
    temporal: float = 0.2
    box: float = 0.3


def augment_masks(masks: np.ndarray, augment: MaskAugment, rng: np.random.Generator) -> np.ndarray:
    """Apply :class:`MaskAugment` to guidance masks.

    Args:
        masks: ``(N, T, H, W)`` bool, one mask sequence per instance.

    Returns:
        ``(N, T, H, W)`` bool, a new array.
    """
    count, frames = masks.shape[:2]
    source = masks
    out = masks.copy()
    for i in range(count):
        others = [j for j in range(count) if j != i]
        for t in range(frames):
            if rng.random() < augment.erase and out[i, t].any():
                out[i, t] &= ~_box(out[i, t], augment.box, rng)
            if others and rng.random() < augment.paste:
                donor = source[others[int(rng.integers(len(others)))], t]
                if donor.any():
                    out[i, t] |= donor & _box(donor, augment.box, rng)
        if others and rng.random() < augment.merge:
            out[i] |= source[others[int(rng.integers(len(others)))]]
        if rng.random() < augment.temporal:
            out[i] |= out[i, int(rng.integers(frames))][None]
    return out


def _box(mask: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A random box inside the mask's bounding box, ``fraction`` of its size on each side."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    height = max(1, round(float(rows[-1] - rows[0] + 1) * fraction))
    width = max(1, round(float(cols[-1] - cols[0] + 1) * fraction))
    y0 = int(rng.integers(rows[0], max(rows[0], rows[-1] - height + 1) + 1))
    x0 = int(rng.integers(cols[0], max(cols[0], cols[-1] - width + 1) + 1))
    box = np.zeros_like(mask)
    box[y0 : y0 + height, x0 : x0 + width] = True
    return box
