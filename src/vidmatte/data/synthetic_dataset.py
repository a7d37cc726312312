"""A torch data set that generates synthetic matting clips on the fly, for training.

Each worker of a ``DataLoader`` draws its own clips: the clip seeds come from
``(seed, rank, worker, n)``, so workers (and distributed ranks) never repeat each other and a run
is reproducible. With ``clips`` set, the data set is finite and yields exactly the clips that
``vidmatte synth --seed SEED`` writes (the same seeds), split between workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from vidmatte.data.augment import AugmentConfig, augment_clip
from vidmatte.data.guidance import SegmenterErrors, simulate_segmenter
from vidmatte.data.synthesize import clip_seed
from vidmatte.data.synthetic import ClipSpec, generate_clip


@dataclass(frozen=True)
class SyntheticConfig:
    """What the data set generates.

    Attributes:
        spec: the clips (size, length, number of figures).
        seed: base seed.
        errors: the guidance masks' segmenter error model.
        augment: augmentation applied to every clip (``None``: the generator's output as is);
            its ``size`` sets the output size.
        clips: number of clips for a finite data set, ``None`` for an endless stream.
        rank: distributed rank (``0`` for one process); ranks draw different clips.
    """

    spec: ClipSpec = field(default_factory=lambda: ClipSpec(frames=8, width=256, height=144))
    seed: int = 0
    errors: SegmenterErrors = field(default_factory=SegmenterErrors)
    augment: AugmentConfig | None = None
    clips: int | None = None
    rank: int = 0


class SyntheticMattingDataset(IterableDataset):
    """Synthetic clips as tensors.

    Each item is a dict:

    - ``frames``: ``(T, 3, H, W)`` float32 in [0, 1], the composite.
    - ``fgr``, ``bgr``: ``(T, 3, H, W)`` float32 in [0, 1].
    - ``pha``: ``(T, 1, H, W)`` float32 in [0, 1], all figures together.
    - ``alphas``: ``(M, T, 1, H, W)`` float32, each figure's visible alpha, zero-padded to
      ``M = spec.instances[1]``.
    - ``masks``: ``(M, T, 1, H, W)`` float32 in {0, 1}, the guidance mask of each figure from the
      simulated segmenter (tracks matched to figures by their first frame; a missed figure or a
      padding slot is all zeros).
    - ``valid``: ``(M,)`` bool, which slots hold a figure.
    - ``seed``: ``()`` int64, the clip's seed (``generate_clip(seed, spec)`` rebuilds it).
    """

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        super().__init__()
        self.config = SyntheticConfig() if config is None else config

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        config = self.config
        if config.clips is not None:
            for index in range(worker, config.clips, workers):
                yield self.item(clip_seed(config.seed, index))
            return
        n = 0
        while True:
            sequence = np.random.SeedSequence([config.seed, config.rank, worker, n])
            yield self.item(int(sequence.generate_state(1)[0]))
            n += 1

    def item(self, seed: int) -> dict[str, torch.Tensor]:
        """The item made from the clip of ``seed``."""
        config = self.config
        clip = generate_clip(seed, config.spec)
        rng = np.random.default_rng([seed, 2])
        fgr, bgr, alphas, com = clip.fgr, clip.bgr, clip.alphas, clip.com
        if config.augment is not None:
            augmented = augment_clip(rng, fgr, alphas, bgr, config.augment)
            fgr, bgr, alphas, com = augmented.fgr, augmented.bgr, augmented.alphas, augmented.com
        guidance = simulate_segmenter(alphas, config.errors, np.random.default_rng([seed, 1]))
        slots = config.spec.instances[1]
        padded = np.zeros((slots, *alphas.shape[1:]), np.float32)
        padded[: len(alphas)] = alphas
        masks = np.zeros_like(padded)
        for track, instance in zip(guidance.masks, guidance.instance, strict=True):
            masks[instance] = track
        valid = np.arange(slots) < len(alphas)
        return {
            "frames": _channels_first(com),
            "fgr": _channels_first(fgr),
            "bgr": _channels_first(bgr),
            "pha": torch.from_numpy(padded.sum(axis=0).clip(0, 1)[:, None].copy()),
            "alphas": torch.from_numpy(padded[:, :, None].copy()),
            "masks": torch.from_numpy(masks[:, :, None].copy()),
            "valid": torch.from_numpy(valid),
            "seed": torch.tensor(seed, dtype=torch.int64),
        }


def _channels_first(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32))
