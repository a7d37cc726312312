"""The precision that ``precision="auto"`` (the default of ``vidmatte matte``) resolves to on a device.

AdaM runs its network under bfloat16 autocast on a CPU that computes bfloat16 natively (AVX512-BF16 or
AMX): about 1.3x faster at 512x288 with held-out accuracy within 2% of float32 (README, Speed). Its
guided filter and full-resolution resize stay float32 whatever the precision
(:class:`~vidmatte.models.adam.guided_filter.DeepGuidedFilter`). Without native support the CPU
emulates bfloat16, several times slower than float32, so ``auto`` is float32 there, on GPUs and for
MSG-VIM, whose accuracy in bfloat16 has not been checked.
"""

from __future__ import annotations

import torch

from vidmatte.models.precision import Precision

# torch.cpu's probes of the instruction sets that compute bfloat16 natively (private in torch 2.x:
# a torch without one of them is taken not to have it)
_NATIVE_BF16_PROBES = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles)."""
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in _NATIVE_BF16_PROBES)


def auto_precision(model: str, device: torch.device) -> Precision:
    """The :data:`~vidmatte.models.precision.Precision` that ``"auto"`` means.

    Args:
        model: ``"adam"`` or ``"msgvim"``.
        device: where the network runs.

    Returns:
        ``"bf16"`` for AdaM on a CPU with native bfloat16, else ``"fp32"``.
    """
    if model == "adam" and device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"
