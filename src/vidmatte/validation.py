"""Range checks of configuration fields, with one message shape for every config."""

from __future__ import annotations

from collections.abc import Iterable


def check_fields(config: object, names: Iterable[str], low: float, high: float | None = None) -> None:
    """Refuse a field of ``config`` outside ``[low, high]`` (``[low, inf)`` without ``high``).

    Raises:
        ValueError: ``"holes must be in [0, 1], got 1.5"``, ``"birth_frames must be at least 1, got 0"``
            or ``"boundary must not be negative, got -2"``, for the first field out of range.

    >>> check_fields(type("Config", (), {"rate": 0.5})(), ["rate"], 0, 1)
    """
    for name in names:
        value = getattr(config, name)
        if high is not None and not low <= value <= high:
            raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value}")
        if high is None and value < low:
            bound = "not be negative" if low == 0 else f"be at least {low:g}"
            raise ValueError(f"{name} must {bound}, got {value}")
