"""Convert a checkpoint of the reference MSG-VIM implementation to this package's ``msgvim-r34``.

The reference (the VIM repository, derived from MGMatting) names its modules ``encoder.layer1``,
``aspp.aspp5_bn``, ``decoder.refine_OS8``, ... and wraps spectrally normalised convolutions in a
module holding ``weight_bar``, ``weight_u`` and ``weight_v``. The architecture is the same, so the
conversion only renames: ``weight_bar`` becomes the parametrization's ``original`` and ``weight_u`` /
``weight_v`` its ``_u`` / ``_v`` (both flatten the weight along its first dimension).
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor

from vidmatte.errors import VidmatteError
from vidmatte.models.loading import check_weights, read_weights, save_weights

_SPECTRAL = {
    "weight_bar": "parametrizations.weight.original",
    "weight_u": "parametrizations.weight.0._u",
    "weight_v": "parametrizations.weight.0._v",
}
_ENCODER_STEM = {
    "conv1": "backbone.stem.0",
    "bn1": "backbone.stem.1",
    "conv2": "backbone.stem.3",
    "bn2": "backbone.stem.4",
    "conv3": "backbone.stem_down.0",
    "bn3": "backbone.stem_down.1",
}
_ENCODER_STAGES = {"layer1": "0", "layer2": "1", "layer3": "2", "layer_bottleneck": "3"}
_ASPP = {
    **{f"aspp{i}": f"branches.{i - 1}.0" for i in range(1, 5)},
    **{f"aspp{i}_bn": f"branches.{i - 1}.1" for i in range(1, 5)},
    "aspp5": "pooling.0",
    "aspp5_bn": "pooling.1",
    "conv2": "fuse.0",
    "bn2": "fuse.1",
}
_DECODER_BLOCK = {
    "conv1": "residual.0",
    "bn1": "residual.1",
    "conv2": "residual.3",
    "bn2": "residual.4",
    "upsample": "shortcut",
    "tmp_network": "temporal",
    "ih": "input_to_hidden",
    "hh": "hidden_to_hidden",
}
_DECODER_TOP = {
    "conv1": "to_full.0",
    "bn1": "to_full.1",
    "refine_OS1": "head_os1",
    "refine_OS4": "head_os4",
    "refine_OS8": "head_os8",
}


def _convert_path(parts: list[str]) -> list[str] | None:
    """Module path of the reference -> module path here, or ``None`` if it is unknown."""
    top, rest = parts[0], parts[1:]
    if top == "encoder" and rest:
        if rest[0] in _ENCODER_STEM and len(rest) == 1:
            return ["encoder", _ENCODER_STEM[rest[0]]]
        if rest[0] in _ENCODER_STAGES and len(rest) >= 3:
            block = ["shortcut" if p == "downsample" else p for p in rest[2:]]
            return ["encoder", "backbone", "stages", _ENCODER_STAGES[rest[0]], rest[1], *block]
        if rest[0] == "shortcut":
            return ["encoder", "shortcuts", *rest[1:]]
    if top == "aspp" and len(rest) == 1 and rest[0] in _ASPP:
        return ["aspp", _ASPP[rest[0]]]
    if top == "decoder" and rest:
        if rest[0] in _DECODER_TOP:
            return ["decoder", _DECODER_TOP[rest[0]], *rest[1:]]
        if rest[0] in ("layer1", "layer2", "layer3", "layer4") and len(rest) >= 3:
            stage = str(int(rest[0][-1]) - 1)
            return ["decoder", "stages", stage, rest[1], *(_DECODER_BLOCK.get(p, p) for p in rest[2:])]
    return None


def convert_reference_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a reference MSG-VIM state dict (``module.`` prefixes allowed) to this package's names.

    Raises:
        VidmatteError: a key of no known module.
    """
    converted = {}
    for key, value in state.items():
        parts = key.removeprefix("module.").split(".")
        if len(parts) >= 3 and parts[-2] == "module" and parts[-1] in _SPECTRAL:
            path, leaf = _convert_path(parts[:-2]), _SPECTRAL[parts[-1]]
        else:
            path, leaf = _convert_path(parts[:-1]), parts[-1]
        if path is None:
            raise VidmatteError(f"{key}: not a parameter of the reference MSG-VIM")
        converted[".".join([*path, leaf])] = value
    return converted


def read_reference_checkpoint(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a reference checkpoint (``.pth``, ``torch.save`` of ``{"state_dict": ...}``) and convert it.

    Raises:
        VidmatteError: unreadable file, no tensor dict inside, or an unknown key.
    """
    state, _ = read_weights(path)
    try:
        return convert_reference_state_dict(state)
    except VidmatteError as error:
        raise VidmatteError(f"{path}: {error}") from None


def convert_reference_checkpoint(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Convert a reference checkpoint to ``msgvim-r34`` safetensors weights (recording the model name).

    Raises:
        VidmatteError: the checkpoint cannot be read or does not fit ``msgvim-r34`` exactly.
    """
    from vidmatte.models.msgvim.factory import msgvim_r34

    state = read_reference_checkpoint(source)
    model = msgvim_r34()
    check_weights(model, state, source)
    model.load_state_dict(state)
    return save_weights(model, target, "msgvim-r34")
