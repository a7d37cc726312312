"""VideoMatte240K training data: foreground and alpha clips composited on the fly over backgrounds.

Layout (both forms of the published data set are accepted, and may be mixed)::

    <foregrounds>/fgr/<clip>.mp4      or   <foregrounds>/fgr/<clip>/<frame>.jpg
    <foregrounds>/pha/<clip>.mp4      or   <foregrounds>/pha/<clip>/<frame>.jpg

A clip's foreground and alpha are paired by name (without extension) and must have the same
number of frames of the same size. Backgrounds are folders of images (each image is a still
background, moved by the augmentation like a camera would) or folders of videos / frame folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vidmatte.data.augment import AugmentConfig, augment_clip
from vidmatte.data.guidance import SegmenterErrors, simulate_segmenter
from vidmatte.data.items import make_item
from vidmatte.data.seeding import EpochSeeded
from vidmatte.data.sources import FrameSource, open_source
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import IMAGE_EXTENSIONS
from vidmatte.io.reader import VIDEO_EXTENSIONS


@dataclass(frozen=True)
class ForegroundClip:
    """A foreground clip and its alpha (same length)."""

    name: str
    fgr: FrameSource
    pha: FrameSource

    @property
    def length(self) -> int:
        return self.fgr.length

    def read(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``fgr (T, H, W, 3)`` and ``pha (T, H, W)``, float32 in [0, 1].

        Raises:
            VidmatteError: foreground and alpha frames of different sizes, naming the alpha.
        """
        fgr = self.fgr.read(start, count)
        pha = self.pha.read(start, count)
        if fgr.shape[1:3] != pha.shape[1:3]:
            raise VidmatteError(
                f"{self.pha.path}: alpha frames of {pha.shape[2]}x{pha.shape[1]} for foreground frames of "
                f"{fgr.shape[2]}x{fgr.shape[1]}"
            )
        return fgr.astype(np.float32) / 255, pha.astype(np.float32).mean(axis=-1) / 255


def list_foreground_clips(root: str | os.PathLike) -> list[ForegroundClip]:
    """Pair ``<root>/fgr/*`` with ``<root>/pha/*`` by name.

    Raises:
        VidmatteError: missing folders, a foreground without alpha, or a length mismatch.
    """
    root = Path(root)
    for folder in ("fgr", "pha"):
        if not (root / folder).is_dir():
            raise VidmatteError(
                f"{root}: no '{folder}' folder (expected <dir>/fgr/<clip> and <dir>/pha/<clip>)"
            )
    alphas = {_stem(p): p for p in (root / "pha").iterdir() if _is_clip(p)}
    clips = []
    for path in sorted(p for p in (root / "fgr").iterdir() if _is_clip(p)):
        if _stem(path) not in alphas:
            raise VidmatteError(f"{path}: no alpha clip named {_stem(path)} in {root / 'pha'}")
        fgr, pha = open_source(path), open_source(alphas[_stem(path)])
        if fgr.length != pha.length:
            raise VidmatteError(f"{pha.path}: {pha.length} alpha frames for {fgr.length} foreground frames")
        clips.append(ForegroundClip(_stem(path), fgr, pha))
    if not clips:
        raise VidmatteError(f"{root / 'fgr'}: no foreground clip")
    return clips


def list_backgrounds(folders: list[str | os.PathLike]) -> list[FrameSource]:
    """Background sources: every image, video and image folder directly inside each folder.

    Raises:
        VidmatteError: a missing folder, or no background at all.
    """
    sources = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise VidmatteError(f"{folder}: no such folder")
        sources += [open_source(p) for p in sorted(folder.iterdir()) if _is_clip(p) or _is_image(p)]
    if not sources:
        raise VidmatteError(f"{', '.join(map(str, folders))}: no background image, video or frame folder")
    return sources


def _is_clip(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in VIDEO_EXTENSIONS


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _stem(path: Path) -> str:
    return path.name if path.is_dir() else path.stem


def read_background(source: FrameSource, frames: int, rng: np.random.Generator) -> np.ndarray:
    """``frames`` consecutive background frames from a random start, ``(T, H, W, 3)`` float32.

    A still image, or a video shorter than the clip, is held on its last frame.
    """
    count = min(frames, source.length)
    start = int(rng.integers(0, source.length - count + 1))
    images = source.read(start, count)
    if count < frames:
        images = np.concatenate([images, np.repeat(images[-1:], frames - count, axis=0)])
    return images.astype(np.float32) / 255


@dataclass(frozen=True)
class VideoMatteConfig:
    """Sampling of training clips.

    Attributes:
        frames: clip length ``T``.
        augment: the clip-consistent augmentation (its ``size`` is the output size).
        errors: segmenter errors for the guidance masks.
        seed: base seed; an item depends on ``(seed, epoch, index)`` only.
        samples: items per epoch (default: one per foreground clip).
    """

    frames: int = 10
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    errors: SegmenterErrors = field(default_factory=SegmenterErrors)
    seed: int = 0
    samples: int | None = None


class VideoMatteDataset(EpochSeeded):
    """VideoMatte240K clips composited over random backgrounds, augmented per clip.

    Items are as :func:`vidmatte.data.items.make_item` packs them, with one instance slot.
    """

    def __init__(
        self,
        foregrounds: str | os.PathLike,
        backgrounds: list[str | os.PathLike],
        config: VideoMatteConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = VideoMatteConfig() if config is None else config
        self.clips = list_foreground_clips(foregrounds)
        self.backgrounds = list_backgrounds(backgrounds)
        short = [c for c in self.clips if c.length < self.config.frames]
        if short:
            raise VidmatteError(
                f"{short[0].fgr.path}: {short[0].length} frames, shorter than a clip of {self.config.frames}"
            )

    def __len__(self) -> int:
        return self.config.samples or len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        config = self.config
        rng, seed = self.item_rng(config.seed, index)
        clip = self.clips[index % len(self.clips)]
        start = int(rng.integers(0, clip.length - config.frames + 1))
        fgr, pha = clip.read(start, config.frames)
        bgr = read_background(self.backgrounds[int(rng.integers(len(self.backgrounds)))], config.frames, rng)
        out = augment_clip(rng, fgr, pha[None], bgr, config.augment)
        guidance = simulate_segmenter(out.alphas, config.errors, rng)
        return make_item(out.com, out.fgr, out.bgr, out.alphas, guidance, 1, seed)
