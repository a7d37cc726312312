"""The model-running part of :func:`vidmatte.inference.video.matte_video`, one engine per backend.

An :class:`Engine` holds one loaded network and makes what a video needs from it: an online AdaM
matter (one frame in, alpha and foreground out), a bi-directional AdaM pass over a window of frames,
or an MSG-VIM chunk matter. Everything in and out is a NumPy array, so a runtime other than PyTorch
plugs in by implementing :class:`Engine`, naming it in :data:`Backend` and loading it in a branch of
:func:`load_engine`; the decoding, encoding and output code does not change. An engine can be loaded
once and reused for many videos.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, get_args

import numpy as np

from vidmatte.errors import VidmatteError
from vidmatte.models.precision import PRECISIONS, Precision

if TYPE_CHECKING:  # the session modules import torch, which an engine of another runtime need not
    from vidmatte.inference.adam import FirstFrameSegmentor
    from vidmatte.inference.msgvim import ChunkMatter

ModelKind = Literal["adam", "msgvim"]
MODELS: tuple[ModelKind, ...] = get_args(ModelKind)
# AdaM's default is adam-fast: the paper's network with a pooled memory and a narrower decoder, as fast as
# RVM's on a CPU and at least as accurate as adam-default on the held-out set (src/vidmatte/weights/README.md)
DEFAULT_WEIGHTS = {"adam": "adam-fast", "msgvim": "msgvim-default"}
# the runtimes of load_engine, each imported only when chosen
Backend = Literal["torch", "onnxruntime"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)


@dataclass(frozen=True)
class EngineSettings:
    """What to load and how to run it.

    Attributes:
        model: ``"adam"`` or ``"msgvim"``.
        checkpoint: a weights file, or ``None`` for the shipped default of ``model``
            (:data:`DEFAULT_WEIGHTS`).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        precision: a :data:`~vidmatte.models.precision.Precision` (anything but fp32 runs under
            autocast), or ``"auto"``, which the backend resolves on loading
            (:func:`vidmatte.inference.precision.auto_precision` for torch, fp32 for onnxruntime); an
            engine's ``settings`` hold the precision it runs.
    """

    model: ModelKind = "adam"
    checkpoint: str | os.PathLike | None = None
    device: str = "cpu"
    precision: Precision | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise VidmatteError(f"unknown model {self.model!r}; expected one of {', '.join(MODELS)}")
        if self.precision != "auto" and self.precision not in PRECISIONS:
            raise VidmatteError(
                f"unknown precision {self.precision!r}; expected one of {', '.join(PRECISIONS)}"
            )

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


def load_engine(settings: EngineSettings, backend: Backend = "torch") -> Engine:
    """Load the network ``settings`` describe for ``backend`` (one of :data:`BACKENDS`).

    Raises:
        VidmatteError: unknown backend, missing or unfitting weights (weights of the other model
            included), an unavailable device.
    """
    match backend:
        case "torch":
            from vidmatte.inference.torch_engine import load_torch_engine

            return load_torch_engine(settings)
        case "onnxruntime":
            from vidmatte.inference.onnx_backend import load_onnx_engine

            return load_onnx_engine(settings)
    raise VidmatteError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
