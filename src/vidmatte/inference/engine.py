"""The model-running part of :func:`vidmatte.inference.video.matte_video`, one engine per backend.

An :class:`Engine` holds one loaded network and makes what a video needs from it: an online AdaM
matter (one frame in, alpha and foreground out), a bi-directional AdaM pass over a window of frames,
or an MSG-VIM chunk matter. Everything in and out is a NumPy array, so a runtime other than PyTorch
plugs in by implementing :class:`Engine` and adding one entry to :data:`BACKENDS`; the decoding,
encoding and output code does not change. An engine can be loaded once and reused for many videos.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from vidmatte.errors import VidmatteError

if TYPE_CHECKING:  # the session modules import torch, which an engine of another runtime need not
    from vidmatte.inference.adam import FirstFrameSegmentor
    from vidmatte.inference.msgvim import ChunkMatter

MODELS = ("adam", "msgvim")
# --dtype names -> the precision names of vidmatte.inference.adam.autocast
DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
DEFAULT_WEIGHTS = {"adam": "adam-default", "msgvim": "msgvim-default"}
# backend name -> "module:function" taking an EngineSettings and returning an Engine; imported when chosen
BACKENDS: dict[str, str] = {
    "torch": "vidmatte.inference.torch_engine:load_torch_engine",
    "onnxruntime": "vidmatte.inference.onnx_backend:load_onnx_engine",
}


@dataclass(frozen=True)
class EngineSettings:
    """What to load and how to run it.

    Attributes:
        model: ``"adam"`` or ``"msgvim"``.
        checkpoint: a weights file, or ``None`` for the shipped default of ``model``
            (:data:`DEFAULT_WEIGHTS`).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        dtype: a key of :data:`DTYPES`; anything but float32 runs under autocast.
    """

    model: str = "adam"
    checkpoint: str | os.PathLike | None = None
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise VidmatteError(f"unknown model {self.model!r}; expected one of {', '.join(MODELS)}")
        if self.dtype not in DTYPES:
            raise VidmatteError(f"unknown dtype {self.dtype!r}; expected one of {', '.join(DTYPES)}")

    @property
    def weights(self) -> str | os.PathLike:
        """The checkpoint, or the name of the shipped default weights."""
        return self.checkpoint if self.checkpoint is not None else DEFAULT_WEIGHTS[self.model]


class FrameMatter(Protocol):
    """Online matting of one video: call it on each frame in order."""

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, 3)`` uint8 RGB -> ``(alpha (H, W), foreground (H, W, 3))``, float32 in [0, 1]."""
        ...


class WindowMatter(Protocol):
    """Offline matting of one video: call it on each window of consecutive frames in order."""

    def __call__(self, frames: Sequence[np.ndarray]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """``(H, W, 3)`` uint8 frames -> ``(t, alpha, foreground)`` for ``t = T - 1, ..., 0`` of the
        window, shaped and ranged as :class:`FrameMatter` returns them."""
        ...


class Engine(Protocol):
    """A loaded network of one backend.

    Attributes:
        settings: what was loaded (``settings.model`` says which methods apply).
    """

    settings: EngineSettings

    def adam_online(
        self,
        first_mask: np.ndarray | None,
        downsample_ratio: float | None,
        segmentor: FirstFrameSegmentor | None = None,
    ) -> FrameMatter:
        """A fresh online AdaM matter for one video.

        Args:
            first_mask: ``(H, W)`` float32 in [0, 1], the first frame's foreground (already checked to
                fit the frames); ``None`` uses ``segmentor``.
            downsample_ratio: network resolution relative to the frames; ``None``: automatic.
            segmentor: segments the first frame when ``first_mask`` is ``None``; ``None``: the model's
                own mask head.
        """
        ...

    def adam_bidirectional(
        self,
        first_mask: np.ndarray | None,
        downsample_ratio: float | None,
        segmentor: FirstFrameSegmentor | None = None,
    ) -> WindowMatter:
        """A fresh offline AdaM matter for one video, called on its consecutive windows
        (:class:`~vidmatte.inference.adam.BidirectionalSession`); arguments as :meth:`adam_online`."""
        ...

    def msgvim_chunks(self) -> ChunkMatter:
        """A fresh MSG-VIM :data:`~vidmatte.inference.msgvim.ChunkMatter` for one video (``(t, H, W, 3)``
        float32 RGB and ``(N, t, H, W)`` bool target and reference masks in, ``(N, t, H, W)`` float32
        alphas in [0, 1] out), starting the temporal state afresh at every chunk, as ``matte-vim`` does
        by default (the paper's inference, and how the default weights were trained)."""
        ...


def load_engine(settings: EngineSettings, backend: str = "torch") -> Engine:
    """Load the network ``settings`` describe for ``backend`` (a key of :data:`BACKENDS`).

    Raises:
        VidmatteError: unknown backend, missing or unfitting weights (weights of the other model
            included), an unavailable device.
    """
    if backend not in BACKENDS:
        raise VidmatteError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    module_name, function = BACKENDS[backend].split(":")
    return getattr(importlib.import_module(module_name), function)(settings)
