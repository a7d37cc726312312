"""One vocabulary for the precision a network runs in, shared by the command line, the engines, the
sessions and the trainer.

``fp32`` runs in float32; ``bf16`` and ``fp16`` run under autocast in bfloat16 or float16 (bf16 on a CPU
or a GPU, fp16 on a GPU). Where the device may decide (the trainer), ``auto`` is a setting too.
Importing this module does not import torch (the command line builds its options from it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
PrecisionSetting = Literal["auto", Precision]
"""A precision, or ``auto``: bf16 autocast on a GPU that has it, fp16 on another GPU, fp32 on a CPU."""
PRECISION_SETTINGS: tuple[str, ...] = get_args(PrecisionSetting)
# the torch dtype names that `vidmatte matte --dtype` took first; still read as their precision
DTYPE_NAMES: dict[str, Precision] = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def precision_named(name: str) -> str:
    """``name`` in this vocabulary: a torch dtype name of :data:`DTYPE_NAMES` becomes its precision,
    anything else is returned unchanged (for the caller to check).

    >>> precision_named("bfloat16"), precision_named("bf16")
    ('bf16', 'bf16')
    """
    return DTYPE_NAMES.get(name, name)


def autocast_dtype(precision: Precision) -> torch.dtype | None:
    """The autocast dtype of ``precision``; ``None`` for fp32 (no autocast).

    Raises:
        ValueError: not one of :data:`PRECISIONS`.
    """
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
