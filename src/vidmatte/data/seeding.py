"""Map-style training sets whose item ``index`` depends on ``(seed, epoch, index)`` only."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset


class EpochSeeded(Dataset):
    """A data set that draws each item from its own generator, seeded by ``(seed, epoch, index)``: items
    are the same in every run and in every worker, and differ from epoch to epoch.

    Attributes:
        epoch: the epoch whose items are drawn (0 until :meth:`set_epoch`).
    """

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw different items (clips, windows, augmentations) in each epoch (call before iterating)."""
        self.epoch = epoch

    def item_rng(self, seed: int, index: int) -> tuple[np.random.Generator, int]:
        """The generator of item ``index`` of a set seeded with ``seed``, and the item's own seed."""
        item_seed = int(np.random.SeedSequence([seed, self.epoch, index]).generate_state(1)[0])
        return np.random.default_rng(item_seed), item_seed
