"""AdaM's Fg/Bg memory: the keys and embedded values of past frames, bounded in size.

The paper keeps concatenating past frames' keys ``K`` and Fg/Bg embedded values ``V_fb`` and
"discards the oldest w.r.t. the limitation criteria". Our criteria (a decision, matching its long-
and short-term attention): the first entry (frame 0, embedded with the segmentor's mask) is kept for
the whole video as long-term memory; the ``capacity`` most recent frames form short-term memory and
the oldest of them is dropped when a new one arrives. A bank may also hold a few pinned entries that
are never dropped: the bi-directional reverse pass pins entries of the forward pass spread over the
window, so that what the forward pass saw stays readable to the end. The bank is an immutable value:
:meth:`add` returns a new bank and leaves the old one untouched, so a caller can keep, copy or branch
it (the bi-directional pass restarts from the forward pass's bank).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch
from torch import Tensor

DEFAULT_CAPACITY = 4


class MemoryEntry(NamedTuple):
    """One frame's contribution to memory.

    Attributes:
        key: ``(B, L, dim)`` keys ``K`` of the frame's ``L`` tokens.
        value: ``(B, L, dim)`` Fg/Bg embedded values ``V_fb``.
    """

    key: Tensor
    value: Tensor


@dataclass(frozen=True)
class MemoryBank:
    """Long-term entry (frame 0), pinned entries, and at most ``capacity`` short-term entries, oldest first.

    Attributes:
        capacity: short-term size ``N``; the bank holds at most ``1 + len(pinned) + N`` entries.
        long_term: the first entry added, kept for the whole video; ``None`` while empty.
        pinned: entries kept as long as the bank (none but in a bi-directional reverse pass).
        short_term: the most recent entries after the first, oldest first.
    """

    capacity: int = DEFAULT_CAPACITY
    long_term: MemoryEntry | None = None
    short_term: tuple[MemoryEntry, ...] = field(default_factory=tuple)
    pinned: tuple[MemoryEntry, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.capacity < 0:
            raise ValueError(f"memory capacity must be >= 0, got {self.capacity}")

    def __len__(self) -> int:
        return (self.long_term is not None) + len(self.pinned) + len(self.short_term)

    @property
    def entries(self) -> tuple[MemoryEntry, ...]:
        """Long-term entry (if any), pinned entries, then short-term entries, oldest first."""
        return ((self.long_term,) if self.long_term is not None else ()) + self.pinned + self.short_term

    def add(self, entry: MemoryEntry) -> MemoryBank:
        """A bank with ``entry`` added: as long-term memory if the bank is empty, else short-term, pruned."""
        if self.long_term is None:
            return replace(self, long_term=entry)
        return replace(self, short_term=(*self.short_term, entry)).prune()

    def prune(self) -> MemoryBank:
        """A bank whose short-term memory keeps only the ``capacity`` most recent entries."""
        if len(self.short_term) <= self.capacity:
            return self
        return replace(self, short_term=self.short_term[len(self.short_term) - self.capacity :])

    def read(self) -> MemoryEntry | None:
        """Keys and values of all entries concatenated, ``(B, len(self) * L, dim)``; ``None`` if empty."""
        entries = self.entries
        if not entries:
            return None
        if len(entries) == 1:
            return entries[0]
        return MemoryEntry(torch.cat([e.key for e in entries], 1), torch.cat([e.value for e in entries], 1))
