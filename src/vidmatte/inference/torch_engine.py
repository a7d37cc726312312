"""The PyTorch :class:`~vidmatte.inference.engine.Engine`: the AdaM and MSG-VIM sessions on a network.

The network is prepared for inference here, once, when it is loaded (:func:`prepare_network`); the
sessions run it as they receive it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.fusion import fuse_conv_bn_eval

from vidmatte.errors import VidmatteError
from vidmatte.inference.adam import AdamSession, BidirectionalSession, FirstFrameSegmentor, autocast
from vidmatte.inference.engine import EngineSettings, FrameMatter, WindowMatter
from vidmatte.inference.msgvim import ChunkMatter, MsgVimSession
from vidmatte.inference.precision import auto_precision
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


def _mask(first_mask: np.ndarray | None) -> Tensor | None:
    return None if first_mask is None else torch.from_numpy(first_mask.astype(np.float32))


@dataclass
class TorchEngine:
    """A network loaded with PyTorch (see :class:`~vidmatte.inference.engine.Engine`).

    Attributes:
        settings: what was loaded.
        network: the :class:`AdamModel` or :class:`MsgVim`, prepared (:func:`prepare_network`) on
            ``device``.
        device: where it runs.
    """

    settings: EngineSettings
    network: nn.Module
    device: torch.device

    def adam_online(
        self,
        first_mask: np.ndarray | None,
        downsample_ratio: float | None,
        segmentor: FirstFrameSegmentor | None = None,
    ) -> FrameMatter:
        session = AdamSession(
            self.network, _mask(first_mask), segmentor, downsample_ratio, precision=self.settings.precision
        )

        def step(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            alpha, foreground = session.step(frame)
            return _alpha(alpha), _colour(foreground)

        return step

    def adam_bidirectional(
        self,
        first_mask: np.ndarray | None,
        downsample_ratio: float | None,
        segmentor: FirstFrameSegmentor | None = None,
    ) -> WindowMatter:
        precision = self.settings.precision
        forward = AdamSession(self.network, _mask(first_mask), segmentor, downsample_ratio, precision)
        session = BidirectionalSession(forward)

        def window(frames: Sequence[np.ndarray]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
            for t, alpha, foreground in session(frames):
                yield t, _alpha(alpha), _colour(foreground)

        return window

    def msgvim_chunks(self) -> ChunkMatter:
        session = MsgVimSession(self.network, device=self.device)

        def matte(rgb: np.ndarray, targets: np.ndarray, references: np.ndarray) -> np.ndarray:
            with autocast(self.device, self.settings.precision):
                return session(rgb, targets, references)

        return matte


def fold_batch_norms(network: nn.Module) -> int:
    """Fold, in place, each BatchNorm that directly follows a convolution in an ``nn.Sequential`` into
    that convolution (its evaluation statistics become the weights' scale and the bias); the BatchNorm
    becomes an identity. Convolutions whose weight is computed at each call (spectral norm in
    ``msgvim-r34``) keep their BatchNorm.

    The same outputs up to float rounding, one full pass over each block's output fewer: ``adam-fast``
    runs about 1.15x faster at 512x288 on a CPU. The network's weights would no longer load into a
    fresh model: it is marked (``batch_norms_folded``), and :func:`~vidmatte.models.loading.save_weights`
    refuses it.

    Returns:
        The number of BatchNorms folded.
    """
    folded = 0
    for module in network.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (conv_name, conv), (norm_name, norm) in itertools.pairwise(children):
            # a weight computed at each call (spectral norm's hook, a parametrisation) is left as it is
            computed = bool(conv._forward_pre_hooks) or parametrize.is_parametrized(conv)
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and not computed:
                setattr(module, conv_name, fuse_conv_bn_eval(conv.eval(), norm.eval()))
                setattr(module, norm_name, nn.Identity())
                folded += 1
    network.batch_norms_folded = True
    return folded


def prepare_network(network: nn.Module, channels_last: bool = True, compile: bool = False) -> nn.Module:
    """Make ``network`` ready for the sessions, in place: evaluation mode, BatchNorms folded into the
    convolutions before them (:func:`fold_batch_norms`), and the layout the sessions expect.

    Args:
        network: an :class:`AdamModel` or :class:`MsgVim`.
        channels_last: store the weights channels-last (NHWC), the layout of the frames an
            :class:`AdamSession` (``channels_last=True``) hands the network, and the one oneDNN's
            convolutions prefer: the same outputs up to float rounding, about 1.5x faster on a CPU.
        compile: compile AdaM's encoder and decoder with ``torch.compile`` (inductor; the transformer
            stays eager, its key count grows over the first frames): about 1.8x faster in bf16 on a CPU
            once compiled, at a cost of minutes of compilation on the first frame (and again for each
            new frame size).

    Returns:
        ``network``.
    """
    network.eval()
    fold_batch_norms(network)
    if channels_last:
        network.to(memory_format=torch.channels_last)
    if compile:
        if not isinstance(network, AdamModel):
            raise ValueError(f"only AdaM is compiled, not {type(network).__name__}")
        network.encoder.compile()
        network.decoder.compile()
    return network


def load_network(settings: EngineSettings) -> nn.Module:
    """``settings.weights`` on ``settings.device``, in evaluation mode, checked to be ``settings.model``.

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
    return network


def load_torch_engine(settings: EngineSettings) -> TorchEngine:
    """Load ``settings.weights`` onto ``settings.device`` and prepare them (:func:`prepare_network`);
    ``precision="auto"`` becomes :func:`~vidmatte.inference.precision.auto_precision`'s.

    Raises:
        VidmatteError: see :func:`load_network`.
    """
    device = torch.device(settings.device)
    if settings.precision == "auto":
        settings = replace(settings, precision=auto_precision(device))
    return TorchEngine(settings, prepare_network(load_network(settings)), device)
