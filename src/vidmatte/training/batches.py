"""Batches as a pure function of the step: the data position of a run is one integer per stream.

Clip ``i`` of a stream is fixed by ``(seed, i)``: a synthetic clip is generated from
``clip_seed(seed, i)``; a clip of a finite data set is item ``perm_e[i mod N]`` of epoch
``e = i div N``, with ``perm_e`` a permutation seeded by ``(seed, e)``. Batch ``b`` of rank ``r``
among ``R`` holds clips ``(b R + r) B ... (b R + r) B + B - 1``. Resuming at batch ``b`` therefore
yields exactly the batches an uninterrupted run would have seen, with any number of loader workers,
and ranks never share a clip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vidmatte.data.guidance import augment_masks
from vidmatte.data.synthetic.clips import ClipSpec, clip_seed
from vidmatte.data.synthetic.dataset import SyntheticConfig, SyntheticMattingDataset
from vidmatte.errors import VidmatteError
from vidmatte.training.config import SourceConfig

Batch = dict[str, torch.Tensor]


class IndexedClips(Dataset):
    """Clip ``i`` of a stream for every ``i >= 0`` (see the module docstring).

    Args:
        source: what the stream holds.
    """

    def __init__(self, source: SourceConfig) -> None:
        super().__init__()
        self.source = source
        self.dataset = _open(source)

    def __len__(self) -> int:  # the stream is endless; samplers index it directly
        raise TypeError("an IndexedClips stream has no length")

    def __getitem__(self, index: int) -> Batch:
        source = self.source
        if isinstance(self.dataset, SyntheticMattingDataset):
            seed = clip_seed(source.seed, index if source.clips is None else index % source.clips)
            item = self.dataset.item(seed)
            if source.mask_augment is not None:
                _augment_guidance(item, source, np.random.default_rng([seed, 3]))
            return item
        epoch, position = divmod(index, len(self.dataset))
        order = np.random.default_rng([source.seed, epoch]).permutation(len(self.dataset))
        self.dataset.set_epoch(epoch)
        return self.dataset[int(order[position])]


def _augment_guidance(item: Batch, source: SourceConfig, rng: np.random.Generator) -> None:
    """Apply MSG-VIM's mask augmentations to the guidance of the instances present (the real data
    sets apply them themselves)."""
    valid = item["valid"].numpy()
    masks = item["masks"][:, :, 0].numpy() > 0.5
    masks[valid] = augment_masks(masks[valid], source.mask_augment, rng)
    item["masks"] = torch.from_numpy(masks[:, :, None].astype(np.float32))


def _open(source: SourceConfig) -> Dataset:
    height, width = source.size
    augment = None if source.augment is None else replace(source.augment, size=(height, width))
    if source.kind == "synthetic":
        spec = ClipSpec(
            frames=source.frames,
            width=width,
            height=height,
            instances=source.instances,
            backgrounds=tuple(source.backgrounds),
            far=source.far,
            close=source.close,
        )
        return SyntheticMattingDataset(SyntheticConfig(spec=spec, errors=source.errors, augment=augment))
    if augment is None:
        raise VidmatteError(f"data kind {source.kind} needs an augment setting (it sets the clip size)")
    if source.kind in ("videomatte", "instances"):
        if source.foregrounds is None or not source.backgrounds:
            raise VidmatteError(f"data kind {source.kind} needs 'foregrounds' and 'backgrounds' folders")
        if source.kind == "videomatte":
            from vidmatte.data.videomatte import VideoMatteConfig, VideoMatteDataset

            config = VideoMatteConfig(source.frames, augment, source.errors, source.seed)
            return VideoMatteDataset(source.foregrounds, list(source.backgrounds), config)
        from vidmatte.data.guidance import MaskAugment
        from vidmatte.data.vim import InstanceConfig, InstanceMattingDataset

        masks = source.mask_augment or replace(MaskAugment(), erase=0, paste=0, merge=0, temporal=0)
        config = InstanceConfig(
            source.frames,
            source.instances,
            augment,
            source.placement,
            errors=source.errors,
            masks=masks,
            seed=source.seed,
        )
        return InstanceMattingDataset(source.foregrounds, list(source.backgrounds), config)
    if source.annotations is None or source.images is None:
        raise VidmatteError(f"data kind {source.kind} needs 'annotations' and 'images'")
    from vidmatte.data.ytvis import CocoSegmentationDataset, SegmentationConfig, YouTubeVISDataset

    config = SegmentationConfig(source.frames, source.instances[1], augment, source.seed)
    kind = YouTubeVISDataset if source.kind == "ytvis" else CocoSegmentationDataset
    return kind(source.annotations, source.images, config)


class StepBatches(Sampler[list[int]]):
    """Clip indices of batches ``start, start + 1, ...`` of one rank (endless)."""

    def __init__(self, start: int, batch_size: int, rank: int = 0, world_size: int = 1) -> None:
        self.start, self.batch_size, self.rank, self.world_size = start, batch_size, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        batch = self.start
        while True:
            first = (batch * self.world_size + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))
            batch += 1


class BatchStream:
    """The batches of one source for one rank, with the number consumed (its data position).

    Args:
        source: the clips.
        rank, world_size: this process's share.
        position: batches already consumed (from a checkpoint).
        limit: stop after this many batches (validation); ``None``: endless.
    """

    def __init__(
        self,
        source: SourceConfig,
        rank: int = 0,
        world_size: int = 1,
        position: int = 0,
        limit: int | None = None,
    ) -> None:
        self.source, self.rank, self.world_size, self.limit = source, rank, world_size, limit
        self.clips = IndexedClips(source)
        self.position = position
        self._iterator: Iterator[Batch] | None = None

    def seek(self, position: int) -> None:
        """Continue from batch ``position`` (the next batch is that one)."""
        self.position = position
        self._iterator = None

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        if self.limit is not None and self.position >= self.limit:
            raise StopIteration
        if self._iterator is None:
            sampler = StepBatches(self.position, self.source.batch_size, self.rank, self.world_size)
            loader = DataLoader(
                self.clips,
                batch_sampler=sampler,
                num_workers=self.source.workers,
                persistent_workers=False,
                prefetch_factor=2 if self.source.workers else None,
            )
            self._iterator = iter(loader)
        batch = next(self._iterator)
        self.position += 1
        return batch
