"""Segmentation data for AdaM's first training stage: YouTube-VIS person tracks and COCO people.

YouTube-VIS (training annotations)::

    <images>/<video>/<frame>.jpg
    annotations.json: {"videos": [{"id", "height", "width", "file_names": [...]}],
                       "annotations": [{"video_id", "category_id", "segmentations": [RLE or null]}],
                       "categories": [{"id", "name"}]}

COCO (instances JSON)::

    <images>/<file_name>
    instances.json: {"images": [{"id", "file_name", "height", "width"}],
                     "annotations": [{"image_id", "category_id", "segmentation": RLE or polygons}],
                     "categories": [{"id", "name"}]}

Items are dicts of tensors: ``frames (T, 3, H, W)`` float32 in [0, 1]; ``seg (T, 1, H, W)`` the
union of the people's masks and ``masks (M, T, 1, H, W)`` each person's mask, float32 in {0, 1};
``valid (M,)`` bool; ``seed`` int64. A COCO image becomes a clip by moving a virtual camera over it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as coco_mask

from vidmatte.data.augment import AugmentConfig, jitter_colour, sample_geometry, warp
from vidmatte.data.seeding import EpochSeeded
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import read_rgb
from vidmatte.io.jsonfile import malformed_content, read_json
from vidmatte.io.masks import decode_rle


def decode_segmentation(segmentation: dict | list, height: int, width: int, source: str) -> np.ndarray:
    """Decode a COCO segmentation (compressed or uncompressed RLE, or polygons) to ``(H, W)`` bool.

    Raises:
        VidmatteError: malformed, or an RLE whose size is not ``height x width``; the message
            starts with ``source``.
    """
    if isinstance(segmentation, dict):
        mask = decode_rle(segmentation, source)
        if mask.shape != (height, width):
            raise VidmatteError(
                f"{source}: RLE of size {mask.shape[1]}x{mask.shape[0]} for frames of {width}x{height}"
            )
        return mask
    try:
        polygons = [[float(v) for v in polygon] for polygon in segmentation]
        if not polygons or any(len(p) < 6 or len(p) % 2 for p in polygons):
            raise ValueError("polygons need at least 3 (x, y) points")
        return coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))).astype(bool)
    except (TypeError, ValueError) as error:
        raise VidmatteError(f"{source}: malformed polygon segmentation ({error})") from None


def _load_json(path: Path, keys: tuple[str, ...]) -> dict:
    data = read_json(path)
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        raise VidmatteError(f"{path}: not an annotation file (no '{missing[0]}')")
    return data


def _category_ids(data: dict, names: tuple[str, ...], path: Path) -> set[int]:
    ids = {int(c["id"]) for c in data.get("categories", []) if c.get("name") in names}
    if not ids:
        raise VidmatteError(f"{path}: no category named {' or '.join(names)}")
    return ids


@dataclass(frozen=True)
class VisVideo:
    """One YouTube-VIS video with its tracks of the chosen categories.

    Attributes:
        tracks: per track, one segmentation (RLE dict) or ``None`` per frame.
        source: the annotation file, for error messages.
    """

    id: int
    frames: tuple[Path, ...]
    height: int
    width: int
    tracks: tuple[tuple[dict | None, ...], ...]
    source: Path

    def masks(self, start: int, count: int) -> np.ndarray:
        """``(K, count, H, W)`` bool masks of every track for frames ``start .. start + count - 1``."""
        out = np.zeros((len(self.tracks), count, self.height, self.width), bool)
        for k, track in enumerate(self.tracks):
            for t in range(count):
                rle = track[start + t]
                if rle is not None:
                    where = f"{self.source} video {self.id} track {k} frame {start + t}"
                    out[k, t] = decode_segmentation(rle, self.height, self.width, where)
        return out


def read_ytvis_annotations(
    path: str | os.PathLike, images: str | os.PathLike, categories: tuple[str, ...] = ("person",)
) -> list[VisVideo]:
    """Read YouTube-VIS training annotations, keeping the videos that hold a track of ``categories``.

    Raises:
        VidmatteError: unreadable file, no such category, or a track whose number of masks does
            not match its video's frames.
    """
    path, images = Path(path), Path(images)
    data = _load_json(path, ("videos", "annotations"))
    with malformed_content(path, "annotation file"):
        wanted = _category_ids(data, categories, path)
        tracks: dict[int, list[tuple[dict | None, ...]]] = {}
        for index, annotation in enumerate(data["annotations"]):
            if int(annotation.get("category_id", -1)) in wanted:
                try:
                    tracks.setdefault(int(annotation["video_id"]), []).append(
                        tuple(annotation["segmentations"])
                    )
                except (KeyError, TypeError, ValueError) as error:
                    raise VidmatteError(f"{path}: annotation {index} is malformed ({error})") from None
        videos = []
        for video in data["videos"]:
            if int(video["id"]) not in tracks:
                continue
            frames = tuple(images / name for name in video["file_names"])
            for k, track in enumerate(tracks[int(video["id"])]):
                if len(track) != len(frames):
                    raise VidmatteError(
                        f"{path}: video {video['id']} track {k} has {len(track)} masks "
                        f"for {len(frames)} frames"
                    )
            videos.append(
                VisVideo(
                    int(video["id"]),
                    frames,
                    int(video["height"]),
                    int(video["width"]),
                    tuple(tracks[int(video["id"])]),
                    path,
                )
            )
        return videos


@dataclass(frozen=True)
class CocoImage:
    """One COCO image with the segmentations of the chosen categories."""

    id: int
    path: Path
    height: int
    width: int
    segmentations: tuple[dict | list, ...]
    source: Path

    def masks(self) -> np.ndarray:
        """``(K, H, W)`` bool, one mask per annotation."""
        return np.stack(
            [
                decode_segmentation(
                    s, self.height, self.width, f"{self.source} image {self.id} annotation {k}"
                )
                for k, s in enumerate(self.segmentations)
            ]
        )


def read_coco_annotations(
    path: str | os.PathLike, images: str | os.PathLike, categories: tuple[str, ...] = ("person",)
) -> list[CocoImage]:
    """Read COCO instance annotations, keeping the images that hold an object of ``categories``."""
    path, images = Path(path), Path(images)
    data = _load_json(path, ("images", "annotations"))
    with malformed_content(path, "annotation file"):
        wanted = _category_ids(data, categories, path)
        segmentations: dict[int, list] = {}
        for index, annotation in enumerate(data["annotations"]):
            if int(annotation.get("category_id", -1)) in wanted:
                try:
                    segmentations.setdefault(int(annotation["image_id"]), []).append(
                        annotation["segmentation"]
                    )
                except (KeyError, TypeError, ValueError) as error:
                    raise VidmatteError(f"{path}: annotation {index} is malformed ({error})") from None
        return [
            CocoImage(
                int(image["id"]),
                images / image["file_name"],
                int(image["height"]),
                int(image["width"]),
                tuple(segmentations[int(image["id"])]),
                path,
            )
            for image in data["images"]
            if int(image["id"]) in segmentations
        ]


@dataclass(frozen=True)
class SegmentationConfig:
    """Sampling of segmentation clips.

    Attributes:
        frames: clip length ``T`` (consecutive video frames; a COCO image is filmed ``T`` times).
        instances: ``M``, the number of person slots in an item (extra people have no slot, but are
            part of the ``seg`` target, which is every person).
        augment: geometry and colour augmentation; its ``size`` is the output size.
        seed: base seed; an item depends on ``(seed, epoch, index)`` only.
    """

    frames: int = 8
    instances: int = 4
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0


class _SegmentationDataset(EpochSeeded):
    """Clips of frames with their person masks, read from an annotation file and an image folder.

    A subclass reads its sources (:meth:`_read`, what :meth:`_absent` describes when there is none) and
    makes one clip of frames and masks from a source (:meth:`_clip`).

    Raises:
        VidmatteError: no source in the annotations.
    """

    def __init__(
        self,
        annotations: str | os.PathLike,
        images: str | os.PathLike,
        config: SegmentationConfig | None = None,
        categories: tuple[str, ...] = ("person",),
    ) -> None:
        super().__init__()
        self.config = SegmentationConfig() if config is None else config
        self.sources = self._read(annotations, images, categories)
        if not self.sources:
            raise VidmatteError(f"{annotations}: no {self._absent()} with {categories}")

    def _read(
        self, annotations: str | os.PathLike, images: str | os.PathLike, categories: tuple[str, ...]
    ) -> list:
        """The sources of ``categories`` in ``annotations``, their files in ``images``."""
        raise NotImplementedError

    def _absent(self) -> str:
        """What a source is, for the message when there is none."""
        raise NotImplementedError

    def _clip(self, rng: np.random.Generator, source: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(T, H, W, 3)`` frames and ``(N, T, H, W)`` bool masks of ``source``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng, seed = self.item_rng(self.config.seed, index)
        frames, masks = self._clip(rng, self.sources[index])
        return self._item(rng, frames, masks, seed)

    def _item(
        self, rng: np.random.Generator, frames: np.ndarray, masks: np.ndarray, seed: int
    ) -> dict[str, torch.Tensor]:
        config = self.config
        # the segmentation target is every person, also those beyond the instance slots
        people = masks.max(axis=0, initial=False) if len(masks) else np.zeros(frames.shape[:3], bool)
        geometry = sample_geometry(rng, config.frames, frames.shape[1:3], config.augment, inside=True)
        frames = jitter_colour(rng, warp(frames, geometry), config.augment)
        slots = np.zeros((config.instances, config.frames, *config.augment.size), np.float32)
        for k, sequence in enumerate(masks[: config.instances]):
            slots[k] = warp(sequence.astype(np.float32), geometry) > 0.5
        seg = warp(people.astype(np.float32), geometry) > 0.5
        return {
            "frames": torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))),
            "seg": torch.from_numpy(seg[:, None].astype(np.float32)),
            "masks": torch.from_numpy(slots[:, :, None].copy()),
            "valid": torch.from_numpy(np.arange(config.instances) < min(len(masks), config.instances)),
            "seed": torch.tensor(seed, dtype=torch.int64),
        }


def _read_frames(paths: tuple[Path, ...], height: int, width: int, source: Path) -> np.ndarray:
    frames = []
    for path in paths:
        frame = read_rgb(path)
        if frame.shape[:2] != (height, width):
            raise VidmatteError(
                f"{path}: image of {frame.shape[1]}x{frame.shape[0]}, {source} says {width}x{height}"
            )
        frames.append(frame)
    return np.stack(frames)


class YouTubeVISDataset(_SegmentationDataset):
    """Windows of ``T`` consecutive frames from YouTube-VIS videos with their person masks."""

    def _read(
        self, annotations: str | os.PathLike, images: str | os.PathLike, categories: tuple[str, ...]
    ) -> list[VisVideo]:
        videos = read_ytvis_annotations(annotations, images, categories)
        return [v for v in videos if len(v.frames) >= self.config.frames]

    def _absent(self) -> str:
        return f"video of {self.config.frames} frames or more"

    def _clip(self, rng: np.random.Generator, video: VisVideo) -> tuple[np.ndarray, np.ndarray]:
        start = int(rng.integers(0, len(video.frames) - self.config.frames + 1))
        window = video.frames[start : start + self.config.frames]
        frames = _read_frames(window, video.height, video.width, video.source)
        return frames, video.masks(start, self.config.frames)


class CocoSegmentationDataset(_SegmentationDataset):
    """COCO images with their person masks, turned into clips by a moving virtual camera."""

    def _read(
        self, annotations: str | os.PathLike, images: str | os.PathLike, categories: tuple[str, ...]
    ) -> list[CocoImage]:
        return read_coco_annotations(annotations, images, categories)

    def _absent(self) -> str:
        return "image"

    def _clip(self, rng: np.random.Generator, image: CocoImage) -> tuple[np.ndarray, np.ndarray]:
        frame = _read_frames((image.path,), image.height, image.width, image.source)
        frames = np.repeat(frame, self.config.frames, axis=0)
        return frames, np.repeat(image.masks()[:, None], self.config.frames, axis=1)
