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
from vidmatte.data.items import make_item
from vidmatte.data.synthetic.clips import ClipSpec, clip_seed, generate_clip


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
    """Synthetic clips as tensors: items as :func:`vidmatte.data.items.make_item` packs them, with
    ``M = spec.instances[1]`` slots, guidance masks from the simulated segmenter (tracks matched to
    figures by their first frame), and ``seed`` the clip's seed (``generate_clip(seed, spec)``
    rebuilds it before augmentation).
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
        return make_item(com, fgr, bgr, alphas, guidance, config.spec.instances[1], seed)
