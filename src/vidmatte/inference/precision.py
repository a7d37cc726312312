"""The precision that ``precision="auto"`` (the default of ``vidmatte matte``) resolves to on a device.

Both networks run under bfloat16 autocast on a CPU that computes bfloat16 natively (AVX512-BF16 or AMX),
each with held-out accuracy within 2% of float32 (README, Speed): AdaM about 1.3x faster at 512x288, its
guided filter and full-resolution resize staying float32 whatever the precision
(:class:`~vidmatte.models.adam.guided_filter.DeepGuidedFilter`); MSG-VIM about 1.9x faster at 512x288,
its alphas made and refined in float32 from the network's logits
(:class:`~vidmatte.models.msgvim.decoder.MsgVimDecoder`). Without native support the CPU emulates
bfloat16, several times slower than float32, so ``auto`` is float32 there, and on GPUs.
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


def auto_precision(device: torch.device) -> Precision:
    """The :data:`~vidmatte.models.precision.Precision` that ``"auto"`` means for either network, whose
    held-out accuracy in bfloat16 was checked (``benchmarks/precision_accuracy.py``,
    ``benchmarks/msgvim_precision.py``).

    Args:
        device: where the network runs.

    Returns:
        ``"bf16"`` on a CPU with native bfloat16, else ``"fp32"``.
    """
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"
