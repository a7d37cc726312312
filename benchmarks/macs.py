"""Multiply-accumulates of a forward pass, attention included.

``torch.utils.flop_counter`` has no formula for the CPU attention kernel
(``_scaled_dot_product_flash_attention_for_cpu``), so it leaves AdaM's memory reading out of its
count. This counter watches the functions themselves (a ``TorchFunctionMode``): convolutions, linear
layers, ``scaled_dot_product_attention`` (``Q K^T`` and ``A V``: ``B * heads * L * S * (d + d_v)``)
and plain matrix products. Element-wise work (normalisation, activations, resizing) is not counted,
as in the papers' figures. One MAC is two FLOPs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode


def _conv(out: Tensor, args: tuple, kwargs: dict) -> int:
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    return out.numel() * math.prod(weight.shape[1:])  # each output: C_in / groups * kh * kw MACs


def _linear(out: Tensor, args: tuple, kwargs: dict) -> int:
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    return out.numel() * weight.shape[1]


def _attention(out: Tensor, args: tuple, kwargs: dict) -> int:
    query, key = args[0], args[1]
    return query.shape[:-1].numel() * key.shape[-2] * (query.shape[-1] + out.shape[-1])


def _matmul(out: Tensor, args: tuple, kwargs: dict) -> int:
    return out.numel() * args[0].shape[-1]


_RULES: dict[Callable, tuple[str, Callable[[Tensor, tuple, dict], int]]] = {
    F.conv2d: ("conv", _conv),
    F.linear: ("linear", _linear),
    F.scaled_dot_product_attention: ("attention", _attention),
    torch.matmul: ("matmul", _matmul),
    torch.bmm: ("matmul", _matmul),
    torch.mm: ("matmul", _matmul),
    Tensor.matmul: ("matmul", _matmul),
    Tensor.__matmul__: ("matmul", _matmul),
}


class MacCounter(TorchFunctionMode):
    """Counts MACs per kind (``conv``, ``linear``, ``attention``, ``matmul``) while active.

    Example:
        >>> with MacCounter() as counter:
        ...     _ = torch.nn.Linear(4, 3)(torch.rand(2, 4))
        >>> counter.macs["linear"]
        24
    """

    def __init__(self) -> None:
        super().__init__()
        self.macs: Counter[str] = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        rule = _RULES.get(func)
        if rule is not None:
            kind, count = rule
            self.macs[kind] += count(out, args, kwargs)
        return out

    @property
    def total(self) -> int:
        """All MACs counted."""
        return sum(self.macs.values())
