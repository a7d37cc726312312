"""Video instance matting training data: 2 to 4 single-person foregrounds composited into one clip.

As MSG-VIM trains: each foreground clip gets its own geometry (scaled down and moved so that the
people stand side by side, overlapping at times) and colour jitter; the layers are stacked in a
random depth order, so an instance's ground truth is its *visible* alpha; the guidance masks
come from the simulated segmenter and then MSG-VIM's mask augmentations (erase, paste, merge,
temporal union).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from vidmatte.data.augment import AugmentConfig, add_noise, jitter_colour, sample_geometry, warp
from vidmatte.data.guidance import MaskAugment, SegmenterErrors, augment_masks, simulate_segmenter
from vidmatte.data.items import make_item
from vidmatte.data.seeding import EpochSeeded
from vidmatte.data.videomatte import list_backgrounds, list_foreground_clips, read_background
from vidmatte.errors import VidmatteError
from vidmatte.io.composite import composite, stack_layers


@dataclass(frozen=True)
class InstanceConfig:
    """Sampling of multi-instance training clips.

    Attributes:
        frames: clip length ``T``.
        instances: (min, max) foregrounds per clip; ``max`` is the number of slots in an item.
        augment: augmentation of the background and of each foreground (its ``size`` is the
            output size).
        placement: crop-scale range of a foreground (above 1 zooms out, leaving room for others).
        spread: largest horizontal offset of a foreground, as a fraction of the width.
        errors: the segmenter's errors; ``masks`` MSG-VIM's mask augmentations on top.
        seed: base seed; an item depends on ``(seed, epoch, index)`` only.
        samples: items per epoch.
    """

    frames: int = 10
    instances: tuple[int, int] = (2, 4)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    placement: tuple[float, float] = (1.2, 2.0)
    spread: float = 0.3
    errors: SegmenterErrors = field(default_factory=SegmenterErrors)
    masks: MaskAugment = field(default_factory=MaskAugment)
    seed: int = 0
    samples: int = 1000


class InstanceMattingDataset(EpochSeeded):
    """Multi-person clips built from single-person foreground clips (e.g. VideoMatte240K).

    Items are as :func:`vidmatte.data.items.make_item` packs them, with ``instances[1]`` slots.
    """

    def __init__(
        self,
        foregrounds: str | os.PathLike,
        backgrounds: list[str | os.PathLike],
        config: InstanceConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = InstanceConfig() if config is None else config
        self.clips = [c for c in list_foreground_clips(foregrounds) if c.length >= self.config.frames]
        if not self.clips:
            raise VidmatteError(f"{foregrounds}: no foreground clip of {self.config.frames} frames or more")
        self.backgrounds = list_backgrounds(backgrounds)

    def __len__(self) -> int:
        return self.config.samples

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        config = self.config
        rng, seed = self.item_rng(config.seed, index)
        count = int(rng.integers(config.instances[0], config.instances[1] + 1))
        picks = rng.choice(len(self.clips), size=count, replace=count > len(self.clips))
        frames = config.frames
        alphas, colours = [], []
        for slot, pick in enumerate(picks):
            clip = self.clips[int(pick)]
            fgr, pha = clip.read(int(rng.integers(0, clip.length - frames + 1)), frames)
            # spread the people over the width: slot k of n is centred near (k + 0.5) / n
            centre = (slot + 0.5) / count - 0.5 + rng.uniform(-0.1, 0.1)
            # people stand on the bottom edge (where VideoMatte240K cuts them) and barely tilt
            placed = replace(
                config.augment,
                crop_scale=config.placement,
                translate=0.0,
                scale=0.0,
                rotate=min(config.augment.rotate, 3.0),
                shear=0.0,
                anchor_bottom=True,
            )
            geometry = sample_geometry(rng, frames, fgr.shape[1:3], placed)
            # move the person right by d output pixels: source = M @ (x - d, y, 1)
            d = centre * 2 * config.spread * config.augment.size[1]
            matrices = geometry.matrices.copy()
            matrices[:, :, 2] -= d * matrices[:, :, 0]
            geometry = replace(geometry, matrices=matrices)
            alphas.append(warp(pha, geometry).clip(0.0, 1.0))
            colours.append(jitter_colour(rng, warp(fgr, geometry), config.augment))
        order = rng.permutation(count)  # random depth order, back to front
        layered = stack_layers(np.stack(alphas)[order], np.stack(colours)[order])
        visible = np.empty_like(layered.visible)
        visible[order] = layered.visible  # back to the slot order
        background = read_background(self.backgrounds[int(rng.integers(len(self.backgrounds)))], frames, rng)
        camera = sample_geometry(rng, frames, background.shape[1:3], config.augment, inside=True)
        bgr = jitter_colour(rng, warp(background, camera), config.augment)
        com = add_noise(rng, composite(layered.fgr, layered.pha, bgr), config.augment)
        guidance = simulate_segmenter(visible, config.errors, rng)
        guidance.masks = augment_masks(guidance.masks, config.masks, rng)
        return make_item(com, layered.fgr, bgr, visible, guidance, config.instances[1], seed)
