"""MemoryBank: long-term frame 0, bounded short-term memory, immutability."""

import pytest
import torch

from vidmatte.models.adam.memory import MemoryBank, MemoryEntry


def entry(tag: float, tokens: int = 3, dim: int = 2) -> MemoryEntry:
    return MemoryEntry(torch.full((1, tokens, dim), tag), torch.full((1, tokens, dim), -tag))


def test_empty_bank_reads_nothing():
    bank = MemoryBank(capacity=4)
    assert len(bank) == 0
    assert bank.read() is None


def test_first_entry_is_long_term_and_kept_forever():
    bank = MemoryBank(capacity=2)
    for t in range(10):
        bank = bank.add(entry(t))
    assert bank.long_term.key[0, 0, 0] == 0
    assert [e.key[0, 0, 0].item() for e in bank.short_term] == [8, 9]


@pytest.mark.parametrize("capacity", [0, 1, 4])
def test_bank_never_exceeds_one_plus_capacity(capacity):
    bank = MemoryBank(capacity=capacity)
    for t in range(100):
        bank = bank.add(entry(t))
        assert len(bank) == min(t + 1, 1 + capacity)


def test_read_concatenates_long_then_short_term_oldest_first():
    bank = MemoryBank(capacity=4).add(entry(0)).add(entry(1)).add(entry(2))
    keys, values = bank.read()
    assert keys.shape == (1, 9, 2)
    assert keys[0, ::3, 0].tolist() == [0, 1, 2]
    assert torch.equal(values, -keys)


def test_add_leaves_the_old_bank_unchanged():
    bank = MemoryBank(capacity=1).add(entry(0)).add(entry(1))
    newer = bank.add(entry(2))
    assert bank.short_term[0].key[0, 0, 0] == 1
    assert newer.short_term[0].key[0, 0, 0] == 2


def test_prune_drops_the_oldest_short_term_entries():
    bank = MemoryBank(capacity=3, long_term=entry(0), short_term=tuple(entry(t) for t in range(1, 7)))
    assert [e.key[0, 0, 0].item() for e in bank.prune().short_term] == [4, 5, 6]


def test_negative_capacity_is_rejected():
    with pytest.raises(ValueError, match="capacity"):
        MemoryBank(capacity=-1)
