"""Named model configurations: ``build_model("adam-mnv2")``.

Each name maps to a ``"module:function"`` factory that takes no required argument and returns an
``nn.Module``; the module is imported only when that name is built.
"""

from __future__ import annotations

import importlib

from torch import nn

from vidmatte.errors import VidmatteError

# name -> "module:factory". Paper-faithful configurations first, then smaller ones for CPU.
MODEL_FACTORIES: dict[str, str] = {
    "adam-mnv2": "vidmatte.models.adam.factory:adam_mnv2",
    "adam-mnv2-w15": "vidmatte.models.adam.factory:adam_mnv2_w15",
    "adam-mnv2-mask-only": "vidmatte.models.adam.factory:adam_mnv2_mask_only",
    "adam-mnv2-no-first-output": "vidmatte.models.adam.factory:adam_mnv2_no_first_output",
    "adam-small": "vidmatte.models.adam.factory:adam_small",
    "adam-tiny": "vidmatte.models.adam.factory:adam_tiny",
    "msgvim-r34": "vidmatte.models.msgvim.factory:msgvim_r34",
    "msgvim-small": "vidmatte.models.msgvim.factory:msgvim_small",
    "msgvim-tiny": "vidmatte.models.msgvim.factory:msgvim_tiny",
}


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(MODEL_FACTORIES)


def build_model(name: str, **overrides) -> nn.Module:
    """Build the named configuration with fresh weights; ``overrides`` go to its factory."""
    if name not in MODEL_FACTORIES:
        raise VidmatteError(f"unknown model {name!r}; known: {', '.join(available_models())}")
    module_name, factory = MODEL_FACTORIES[name].split(":")
    return getattr(importlib.import_module(module_name), factory)(**overrides)
