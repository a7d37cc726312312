"""The PyTorch :class:`~vidmatte.inference.engine.Engine`: the AdaM and MSG-VIM sessions on a network."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vidmatte.errors import VidmatteError
from vidmatte.inference.adam import AdamSession, BidirectionalSession, FirstFrameSegmentor, autocast
from vidmatte.inference.engine import DTYPES, EngineSettings, FrameMatter, WindowMatter
from vidmatte.inference.msgvim import ChunkMatter, MsgVimSession
from vidmatte.models.adam.model import AdamModel
from vidmatte.models.loading import load_model
from vidmatte.models.msgvim.model import MsgVim

_NETWORKS: dict[str, type[nn.Module]] = {"adam": AdamModel, "msgvim": MsgVim}


def _alpha(alpha: Tensor) -> np.ndarray:
    """``(1, 1, H, W)`` -> ``(H, W)`` float32."""
    return alpha[0, 0].float().cpu().numpy()


def _colour(foreground: Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` -> ``(H, W, 3)`` float32."""
    return foreground[0].permute(1, 2, 0).float().cpu().numpy()


def _writable(frame: np.ndarray) -> np.ndarray:
    """Decoded frames may be read-only views (Pillow's); torch.from_numpy wants writable memory."""
    return frame if frame.flags.writeable else frame.copy()


def _mask(first_mask: np.ndarray | None) -> Tensor | None:
    return None if first_mask is None else torch.from_numpy(first_mask.astype(np.float32))


@dataclass
class TorchEngine:
    """A network loaded with PyTorch (see :class:`~vidmatte.inference.engine.Engine`).

    Attributes:
        settings: what was loaded.
        network: the :class:`AdamModel` or :class:`MsgVim`, in eval mode on ``device``.
        device: where it runs.
    """

    settings: EngineSettings
    network: nn.Module
    device: torch.device

    @property
    def precision(self) -> str:
        return DTYPES[self.settings.dtype]

    def adam_online(
        self,
        first_mask: np.ndarray | None,
        downsample_ratio: float | None,
        segmentor: FirstFrameSegmentor | None = None,
    ) -> FrameMatter:
        session = AdamSession(
            self.network, _mask(first_mask), segmentor, downsample_ratio, precision=self.precision
        )

        def step(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            alpha, foreground = session.step(_writable(frame))
            return _alpha(alpha), _colour(foreground)

        return step

    def adam_bidirectional(
        self,
        first_mask: np.ndarray | None,
        downsample_ratio: float | None,
        segmentor: FirstFrameSegmentor | None = None,
    ) -> WindowMatter:
        session = BidirectionalSession(
            self.network, _mask(first_mask), segmentor, downsample_ratio, precision=self.precision
        )

        def window(frames: Sequence[np.ndarray]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
            for t, alpha, foreground in session([_writable(frame) for frame in frames]):
                yield t, _alpha(alpha), _colour(foreground)

        return window

    def msgvim_chunks(self) -> ChunkMatter:
        session = MsgVimSession(self.network, device=self.device)

        def matte(rgb: np.ndarray, targets: np.ndarray, references: np.ndarray) -> np.ndarray:
            with autocast(self.device, self.precision):
                return session(rgb, targets, references)

        return matte


def load_torch_engine(settings: EngineSettings) -> TorchEngine:
    """Load ``settings.weights`` onto ``settings.device``.

    Raises:
        VidmatteError: unavailable device, unreadable or unfitting weights, weights of the other model.
    """
    try:
        device = torch.device(settings.device)
    except RuntimeError:
        raise VidmatteError(f"unknown device {settings.device!r} (expected cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VidmatteError(f"device {settings.device}: CUDA is not available on this machine")
    network = load_model(
        settings.weights,
        device=str(device),
        unnamed_advice="use .safetensors weights that record it (vidmatte train and convert-msgvim "
        "write them)",
    )
    expected = _NETWORKS[settings.model]
    if not isinstance(network, expected):
        raise VidmatteError(
            f"{settings.weights}: weights of a {type(network).__name__} network, not of {expected.__name__} "
            f"(--model {settings.model})"
        )
    return TorchEngine(settings, network, device)
