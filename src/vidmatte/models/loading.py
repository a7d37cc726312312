"""Load trained weights: the shipped defaults by name, or a checkpoint file, with strict checks.

Weights are safetensors files (``.safetensors``) or plain tensor dicts saved by ``torch.save``
(``.pt``, ``.pth``), read with ``torch.load(weights_only=True)`` so that a pickle cannot run code.
A safetensors file written by this package records the model it belongs to in its metadata
(``"model": "adam-small"``), so ``load_model(path)`` knows which network to build.

Every load is strict: missing keys, unexpected keys, tensors of another shape and non-finite
values are refused with a one-line :class:`VidmatteError` that names the file and the mismatch.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from vidmatte.errors import VidmatteError
from vidmatte.models.registry import available_models, build_model

MODEL_KEY = "model"  # safetensors metadata key naming the registry configuration
# name -> (file in a weights folder, registry configuration)
DEFAULT_WEIGHTS: dict[str, tuple[str, str]] = {
    "adam-default": ("adam-default.safetensors", "adam-mnv2"),
    "adam-fast": ("adam-fast.safetensors", "adam-fast"),
    "msgvim-default": ("msgvim-default.safetensors", "msgvim-small"),
}
# Inside the package (package data), so that an installed wheel carries them as a source checkout does.
WEIGHTS_FOLDER = Path(__file__).resolve().parents[1] / "weights"
PICKLE_SUFFIXES = (".pt", ".pth")


def read_weights(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and metadata of a weights file (metadata is empty for ``.pt`` files).

    Raises:
        VidmatteError: missing or unreadable file, a pickle that holds anything but tensors
            (refused without running it), or no tensor dict inside.
    """
    path = Path(path)
    if not path.is_file():
        raise VidmatteError(f"{path}: no such weights file")
    if path.suffix in PICKLE_SUFFIXES:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        # arbitrary bytes fail inside the restricted unpickler in many ways (KeyError on an unknown
        # opcode, UnpicklingError, EOFError, ...); none of them runs code
        except Exception as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise VidmatteError(f"{path}: refused, not a plain tensor file ({first_line})") from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise VidmatteError(f"{path}: expected a dict of tensors")
        return state, {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            return {key: handle.get_tensor(key) for key in handle.keys()}, metadata  # noqa: SIM118
    except (OSError, SafetensorError) as error:
        raise VidmatteError(f"{path}: cannot read weights ({error})") from None


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a safetensors file without reading its tensors (empty for ``.pt`` files)."""
    path = Path(path)
    if path.suffix in PICKLE_SUFFIXES:
        return {}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (OSError, SafetensorError) as error:
        raise VidmatteError(f"{path}: cannot read weights ({error})") from None


def check_weights(model: nn.Module, state: dict[str, Tensor], source: str | os.PathLike) -> None:
    """Refuse weights that do not fit ``model`` exactly, or hold NaN or infinite values.

    Raises:
        VidmatteError: ``"<source>: weights do not fit <Model>: 2 missing (first: a.b); ..."`` or
            ``"<source>: non-finite values in <key>"``.
    """
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        details = [
            f"{len(keys)} {what} (first: {keys[0]})"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong))
            if keys
        ]
        raise VidmatteError(f"{source}: weights do not fit {type(model).__name__}: {'; '.join(details)}")
    for key in sorted(state):
        value = state[key]
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise VidmatteError(f"{source}: non-finite values in {key}")


def load_weights_into(
    model: nn.Module, path: str | os.PathLike, expected_model: str | None = None
) -> nn.Module:
    """Load a weights file into ``model`` (cast to the model's dtypes) after :func:`check_weights`.

    Args:
        model: the network to fill.
        path: ``.safetensors``, ``.pt`` or ``.pth`` file.
        expected_model: registry name ``model`` was built from; a safetensors file recording
            another model is refused.

    Raises:
        VidmatteError: see :func:`read_weights` and :func:`check_weights`; a file of another model.
    """
    state, metadata = read_weights(path)
    recorded = metadata.get(MODEL_KEY)
    if expected_model is not None and recorded is not None and recorded != expected_model:
        raise VidmatteError(f"{path}: weights of {recorded}, not of {expected_model}")
    check_weights(model, state, path)
    model.load_state_dict(state)
    return model


def resolve_weights(name_or_path: str | os.PathLike) -> tuple[Path, str | None]:
    """The file behind a default name (``adam-default``) or a path, and the model it is known to hold."""
    if str(name_or_path) in DEFAULT_WEIGHTS:
        filename, model_name = DEFAULT_WEIGHTS[str(name_or_path)]
        path = WEIGHTS_FOLDER / filename
        if not path.is_file():
            raise VidmatteError(f"{path}: default weights {name_or_path} are not installed")
        return path, model_name
    return Path(name_or_path), None


def load_model(
    name_or_path: str | os.PathLike,
    model: str | None = None,
    device: str = "cpu",
    *,
    unnamed_advice: str = "pass model=<name>",
) -> nn.Module:
    """A trained network in evaluation mode.

    Args:
        name_or_path: ``adam-default`` / ``msgvim-default`` (the shipped weights, no network
            access), or a weights file (a training checkpoint's ``.safetensors`` included).
        model: registry name of the network; needed only when the file does not record it
            (``.pt`` files, safetensors written elsewhere).
        device: where to put the network.
        unnamed_advice: how the caller's user names the network of a file that does not record it
            (the end of that error message).

    A guided filter that was never trained is disabled (see :mod:`vidmatte.models.adam.guided_filter`).

    Raises:
        VidmatteError: unknown name, unreadable or mismatched weights, no way to tell the model.
    """
    path, known = resolve_weights(name_or_path)
    if path.suffix not in (".safetensors", *PICKLE_SUFFIXES):
        defaults = ", ".join(DEFAULT_WEIGHTS)
        raise VidmatteError(f"{path}: not a weights file (.safetensors, .pt) nor a default name ({defaults})")
    name = model or known or read_metadata(path).get(MODEL_KEY)
    if name is None:
        raise VidmatteError(
            f"{path}: the file does not say which model it holds ({', '.join(available_models())}); "
            f"{unnamed_advice}"
        )
    network = load_weights_into(build_model(name), path, expected_model=name)
    refiner = getattr(network, "refiner", None)
    if refiner is not None:
        refiner.enabled = refiner.is_trained()
    return network.to(device).eval()


def save_weights(
    model: nn.Module, path: str | os.PathLike, model_name: str, dtype: torch.dtype | None = None
) -> Path:
    """Write ``model``'s weights as safetensors recording ``model_name``, floats cast to ``dtype``.

    Shipped weights use ``dtype=torch.float16`` (half the size); loading casts them back.

    Raises:
        ValueError: ``model`` was prepared for inference with its BatchNorms folded
            (:func:`~vidmatte.inference.torch_engine.fold_batch_norms`): its weights fit no model.
    """
    from safetensors.torch import save_file

    if getattr(model, "batch_norms_folded", False):
        raise ValueError(
            f"{path}: not written: the network's BatchNorms were folded for inference (prepare_network); "
            "save its weights before preparing it"
        )

    def cast(x: Tensor) -> Tensor:
        return x.to(dtype) if dtype is not None and x.is_floating_point() else x

    tensors = {k: cast(v.detach().cpu()).contiguous() for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={MODEL_KEY: model_name})
    return path
