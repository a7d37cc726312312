"""Contenders timed in turns in one run, and their time as a ratio to a peer with its spread.

A shared machine's speed drifts (other jobs, frequency, caches); contenders timed one after the other
see different machines. Timed in turns (A, B, then B, A, ...), they see the same drift, so the ratio of
their times per round stays meaningful under load. The spread of that ratio across rounds is the
noise of the run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


def interleaved_ms(contenders: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Milliseconds of one call of each contender per round, the order reversed every other round."""
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            start = time.perf_counter()
            contenders[name]()
            times[name].append(1e3 * (time.perf_counter() - start))
    return times


@dataclass(frozen=True)
class Ratio:
    """A contender's time over the peer's, per round.

    Attributes:
        median: median over rounds of ``time / peer time``.
        low, high: its first and third quartiles across rounds (the noise of the run).
    """

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, times: list[float], peer: list[float]) -> Ratio:
        ratios = [mine / theirs for mine, theirs in zip(times, peer, strict=True)]
        if len(ratios) < 2:
            return cls(ratios[0], ratios[0], ratios[0])
        low, median, high = statistics.quantiles(ratios, n=4, method="inclusive")
        return cls(median, low, high)

    def __str__(self) -> str:
        return f"{self.median:.2f}x (rounds' quartiles {self.low:.2f}-{self.high:.2f})"
