"""The onnxruntime backend: exported step graphs driven by the PyTorch sessions' own bookkeeping.

:class:`OnnxAdam` runs :class:`~vidmatte.export.onnx.AdamStepGraph` and :class:`OnnxMsgVim` runs
:class:`~vidmatte.export.onnx.MsgVimStepGraph`; each has the call signature of its PyTorch network, so
:class:`~vidmatte.inference.adam.AdamSession`, :func:`~vidmatte.inference.adam.matte_bidirectional` and
:class:`~vidmatte.inference.msgvim.MsgVimSession` take them in place of the network: the memory bank,
the first-frame segmentation, chunking and state carrying are the same code for both runtimes.
Tensors cross to onnxruntime as float32 NumPy arrays on the CPU.

``vidmatte matte --backend onnxruntime`` loads an ``.onnx`` file given as ``--checkpoint``, or exports
the weights (the shipped defaults, or a weights file) to ONNX in memory and checks them first.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vidmatte.errors import VidmatteError
from vidmatte.export.onnx import (
    ADAM_INPUTS,
    ADAM_OUTPUTS,
    CAPACITY_KEY,
    MODEL_KEY,
    MSGVIM_INPUTS,
    MSGVIM_OUTPUTS,
    export_bytes,
    onnx_session,
    verify,
)
from vidmatte.inference.engine import EngineSettings
from vidmatte.inference.torch_engine import TorchEngine, load_network
from vidmatte.models.adam.geometry import TOKEN_STRIDE, FrameGeometry, unit_range
from vidmatte.models.adam.memory import MemoryBank, MemoryEntry
from vidmatte.models.adam.model import AdamOutput
from vidmatte.models.msgvim.temporal_guidance import TemporalState

ONNX_SUFFIX = ".onnx"
PREDICTED = -1.0  # entry mask value asking the graph to embed its own predicted mask


def _numpy(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().float().cpu().numpy())


class _Step(NamedTuple):
    """The outputs of one AdaM step graph call, as tensors (see :data:`ADAM_OUTPUTS`)."""

    alpha: Tensor
    foreground: Tensor
    low_alpha: Tensor
    low_foreground: Tensor
    coarse_alpha: Tensor
    mask_logits: Tensor
    entry_key: Tensor
    entry_value: Tensor


class OnnxAdam:
    """AdaM's step graph in onnxruntime, callable like :class:`~vidmatte.models.adam.model.AdamModel`.

    Args:
        session: an onnxruntime session of an exported AdaM step (:func:`open_onnx` makes one).
        memory_capacity: short-term memory size ``N`` of the banks it starts.
    """

    def __init__(self, session, memory_capacity: int) -> None:
        self.session = session
        self.memory_capacity = memory_capacity
        self.dim = int(session.get_inputs()[ADAM_INPUTS.index("memory_key")].shape[2])

    def empty_memory(self) -> MemoryBank:
        """A bank with the exported model's short-term capacity and no entry."""
        return MemoryBank(self.memory_capacity)

    def _run(
        self, frame: Tensor, geometry: FrameGeometry, memory: MemoryBank, entry_mask: Tensor | None
    ) -> _Step:
        """One graph call on a ``(B, 3, H, W)`` frame; ``entry_mask`` ``(B, L)`` or ``None`` (predicted)."""
        low = geometry.downsample(frame)
        image = geometry.pad(low)
        stored = memory.read()
        batch = frame.shape[0]
        if stored is None:
            stored = MemoryEntry(torch.zeros(batch, 0, self.dim), torch.zeros(batch, 0, self.dim))
        if entry_mask is None:
            tokens = (image.shape[-2] // TOKEN_STRIDE) * (image.shape[-1] // TOKEN_STRIDE)
            entry_mask = torch.full((batch, tokens), PREDICTED)
        # frames that are not downsampled need no guided filter: its input is then the small image
        guide = frame if geometry.downsampled else low
        inputs = (guide, low, image, stored.key, stored.value, entry_mask)
        outputs = self.session.run(
            list(ADAM_OUTPUTS), {name: _numpy(x) for name, x in zip(ADAM_INPUTS, inputs, strict=True)}
        )
        return _Step(*(torch.from_numpy(x) for x in outputs))

    def segment(self, frames: Tensor, downsample_ratio: float | None = None) -> Tensor:
        """Memoryless mask head, as :meth:`AdamModel.segment`: ``(B, 3, H, W)`` -> ``(B, 1, H, W)``."""
        geometry = FrameGeometry.for_size(frames.shape[-2], frames.shape[-1], downsample_ratio)
        logits = self._run(frames, geometry, self.empty_memory(), None).mask_logits
        probability = logits.softmax(1)[:, 1:]
        return F.interpolate(probability, frames.shape[-2:], mode="bilinear", align_corners=False)

    def __call__(
        self,
        frames: Tensor,
        memory: MemoryBank | None = None,
        first_mask: Tensor | None = None,
        downsample_ratio: float | None = None,
    ) -> tuple[AdamOutput, MemoryBank]:
        """Matte one frame, as :meth:`AdamModel.forward` does for a ``(B, 3, H, W)`` frame (float in
        ``[0, 1]`` or uint8 in ``[0, 255]``).

        Returns:
            ``(outputs, memory)``: :class:`AdamOutput` without a time axis, and the new bank.
        """
        if frames.dim() != 4:
            raise ValueError(f"the ONNX step takes one frame (B, 3, H, W), got shape {tuple(frames.shape)}")
        frames = unit_range(frames)
        geometry = FrameGeometry.for_size(frames.shape[-2], frames.shape[-1], downsample_ratio)
        memory = self.empty_memory() if memory is None else memory
        if len(memory) == 0:
            # frame 0 embedded with the given mask, or the mask head's (as AdamModel), starts the memory
            mask = self.segment(frames, downsample_ratio) if first_mask is None else first_mask
            start = self._run(frames, geometry, memory, geometry.mask_tokens(mask.float()))
            memory = memory.add(MemoryEntry(start.entry_key, start.entry_value))
        step = self._run(frames, geometry, memory, None)
        memory = memory.add(MemoryEntry(step.entry_key, step.entry_value))
        alpha, foreground = (
            (step.alpha, step.foreground) if geometry.downsampled else (step.low_alpha, step.low_foreground)
        )
        return AdamOutput(alpha, foreground, step.coarse_alpha, step.mask_logits), memory


class ChunkOutput(NamedTuple):
    """What :class:`~vidmatte.inference.msgvim.MsgVimSession` reads of a chunk's predictions.

    Attributes:
        alpha: ``(B, T, 2, H, W)`` float32 in [0, 1] (target, reference).
        state: the temporal state after the last frame.
    """

    alpha: Tensor
    state: TemporalState


class OnnxMsgVim:
    """MSG-VIM's per-frame step graph in onnxruntime, callable like :class:`MsgVim` on clips.

    Args:
        session: an onnxruntime session of an exported MSG-VIM step.
    """

    def __init__(self, session) -> None:
        self.session = session
        self.guided_channels = int(session.get_inputs()[MSGVIM_INPUTS.index("hidden")].shape[1])

    def __call__(
        self, rgb: Tensor, target_mask: Tensor, reference_mask: Tensor, state: TemporalState | None = None
    ) -> ChunkOutput:
        """Matte a chunk frame by frame, the state carried between frames.

        Args:
            rgb: ``(B, T, 3, H, W)`` float32 in [0, 1], ``H`` and ``W`` multiples of 32.
            target_mask, reference_mask: ``(B, T, 1, H, W)`` float32 in {0, 1}.
            state: the previous chunk's state, or ``None`` to start.
        """
        batch, time, _, height, width = rgb.shape
        if height % 32 or width % 32:
            raise ValueError(f"frames of {width}x{height} must be padded to multiples of 32 first")
        if state is None:
            hidden, carry = torch.zeros(batch, self.guided_channels, height // 2, width // 2), 0.0
        else:
            hidden, carry = state.hidden, 1.0
        alphas = []
        for t in range(time):
            inputs = (rgb[:, t], target_mask[:, t], reference_mask[:, t], hidden, torch.tensor([carry]))
            alpha, next_hidden = self.session.run(
                list(MSGVIM_OUTPUTS), {name: _numpy(x) for name, x in zip(MSGVIM_INPUTS, inputs, strict=True)}
            )
            alphas.append(torch.from_numpy(alpha))
            hidden, carry = torch.from_numpy(next_hidden), 1.0
        return ChunkOutput(torch.stack(alphas, 1), TemporalState(hidden))


def open_onnx(source: str | os.PathLike | bytes, threads: int | None = None) -> OnnxAdam | OnnxMsgVim:
    """The runner of an exported step graph (file or bytes), chosen by the model its metadata records.

    Raises:
        VidmatteError: unreadable file, or one not written by :mod:`vidmatte.export.onnx`.
    """
    session = onnx_session(source, threads)
    metadata = session.get_modelmeta().custom_metadata_map
    kind = metadata.get(MODEL_KEY)
    if kind == "adam":
        return OnnxAdam(session, int(metadata[CAPACITY_KEY]))
    if kind == "msgvim":
        return OnnxMsgVim(session)
    name = "model" if isinstance(source, bytes) else str(source)
    raise VidmatteError(f"{name}: not an ONNX model exported by vidmatte (no {MODEL_KEY} metadata)")


class OnnxEngine(TorchEngine):
    """The :class:`~vidmatte.inference.engine.Engine` of the onnxruntime backend.

    The sessions of :class:`TorchEngine` run unchanged; its network is an :class:`OnnxAdam` or
    :class:`OnnxMsgVim` (CPU, float32).
    """


def load_onnx_engine(settings: EngineSettings) -> OnnxEngine:
    """An onnxruntime engine: ``settings.checkpoint`` is an ``.onnx`` file, or weights exported on loading.

    Raises:
        VidmatteError: a device other than the CPU, a precision other than fp32, an ONNX file of the
            other model, unreadable weights, or an export that differs from PyTorch.
    """
    if torch.device(settings.device).type != "cpu":
        raise VidmatteError(f"the onnxruntime backend runs on the CPU, not on {settings.device}")
    if settings.precision == "auto":
        settings = replace(settings, precision="fp32")
    if settings.precision != "fp32":
        raise VidmatteError(f"the onnxruntime backend runs fp32, not {settings.precision}")
    if settings.checkpoint is not None and Path(settings.checkpoint).suffix == ONNX_SUFFIX:
        runner = open_onnx(settings.checkpoint)
        expected = OnnxAdam if settings.model == "adam" else OnnxMsgVim
        if not isinstance(runner, expected):
            other = "msgvim" if settings.model == "adam" else "adam"
            raise VidmatteError(f"{settings.checkpoint}: an ONNX export of {other}, not of {settings.model}")
    else:
        network = load_network(settings)
        data = export_bytes(network)
        verify(network, data)
        runner = open_onnx(data)
    return OnnxEngine(settings, runner, torch.device("cpu"))
