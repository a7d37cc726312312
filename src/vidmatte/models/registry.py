"""Named model configurations: ``build_model("adam-mnv2")``.

:data:`ModelName` lists the names; :func:`build_model` calls each name's factory function, imported
inside its branch so that only the chosen network's modules load.
"""

from __future__ import annotations

from typing import Literal, get_args

from torch import nn

from vidmatte.errors import VidmatteError

# Paper-faithful configurations first, then smaller ones for CPU.
ModelName = Literal[
    "adam-mnv2",
    "adam-mnv2-w15",
    "adam-mnv2-mask-only",
    "adam-mnv2-no-first-output",
    "adam-fast",
    "adam-small",
    "adam-tiny",
    "msgvim-r34",
    "msgvim-small",
    "msgvim-mnv2-w15",
    "msgvim-tiny",
]
MODEL_NAMES: tuple[ModelName, ...] = get_args(ModelName)


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(MODEL_NAMES)


def build_model(name: str, **overrides) -> nn.Module:
    """Build the named configuration (a :data:`ModelName`) with fresh weights; ``overrides`` go to its
    factory.

    Raises:
        VidmatteError: an unknown name.
    """
    match name:
        case "adam-mnv2":
            from vidmatte.models.adam.factory import adam_mnv2 as factory
        case "adam-mnv2-w15":
            from vidmatte.models.adam.factory import adam_mnv2_w15 as factory
        case "adam-mnv2-mask-only":
            from vidmatte.models.adam.factory import adam_mnv2_mask_only as factory
        case "adam-mnv2-no-first-output":
            from vidmatte.models.adam.factory import adam_mnv2_no_first_output as factory
        case "adam-fast":
            from vidmatte.models.adam.factory import adam_fast as factory
        case "adam-small":
            from vidmatte.models.adam.factory import adam_small as factory
        case "adam-tiny":
            from vidmatte.models.adam.factory import adam_tiny as factory
        case "msgvim-r34":
            from vidmatte.models.msgvim.factory import msgvim_r34 as factory
        case "msgvim-small":
            from vidmatte.models.msgvim.factory import msgvim_small as factory
        case "msgvim-mnv2-w15":
            from vidmatte.models.msgvim.factory import msgvim_mnv2_w15 as factory
        case "msgvim-tiny":
            from vidmatte.models.msgvim.factory import msgvim_tiny as factory
        case _:
            raise VidmatteError(f"unknown model {name!r}; known: {', '.join(available_models())}")
    return factory(**overrides)
