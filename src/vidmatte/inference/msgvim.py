"""The MSG-VIM session: chunks of frames and one mask sequence per instance -> one alpha sequence each.

A video is split into chunks of ``t`` consecutive frames (default 10, the paper's setting; the last,
shorter chunk is processed too). Within a chunk the instances are batched together (``instance_batch``
at a time) and each gets its own temporal state, which is reset at every chunk as in the paper or
carried over (``carry_state``). The guidance masks are read by :mod:`vidmatte.io.guidance`; the clips
of a VIM50-style folder are walked by :mod:`vidmatte.inference.vim50`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vidmatte.errors import VidmatteError
from vidmatte.models.msgvim.model import SIZE_MULTIPLE, MsgVim
from vidmatte.models.msgvim.temporal_guidance import TemporalState

CHUNK_SIZE = 10  # frames per chunk (paper, table 9)
MARGIN = 32  # reflect padding the reference adds around every frame before the network
# Peak memory of msgvim-small per instance, frame and (padded) pixel in one forward pass on a CPU (measured:
# 10.6 GB for 20 instances of 10 frames at 360x264), and what one pass may take: 20 people at 768x576 would
# otherwise ask for tens of GB at once
BYTES_PER_INSTANCE_PIXEL = 560
CPU_BATCH_BYTES = 3 * 2**30


ChunkMatter = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``(rgb (t, H, W, 3) float32, targets (N, t, H, W) bool, references (N, t, H, W) bool) -> (N, t, H, W)
float32 alphas in [0, 1]``."""


class ChunkPrediction(Protocol):
    """What a session reads of a network's output: ``(B, T, 2, H, W)`` alphas and the next state."""

    alpha: torch.Tensor
    state: TemporalState


class MsgVimRunner(Protocol):
    """What a session runs instead of :class:`MsgVim`: an exported graph with the same call."""

    def __call__(
        self,
        rgb: torch.Tensor,
        target_mask: torch.Tensor,
        reference_mask: torch.Tensor,
        state: TemporalState | None = None,
    ) -> ChunkPrediction:
        """As :meth:`MsgVim.forward` on clips."""
        ...


def _pad(x: torch.Tensor, margin: int) -> torch.Tensor:
    """Pad ``(..., H, W)`` by ``margin`` on every side and then to multiples of 32 at the bottom and right.

    Reflection as the reference does; replication where the frame is too small to reflect.
    """
    height, width = x.shape[-2:]
    bottom = margin + (-(height + 2 * margin) % SIZE_MULTIPLE)
    right = margin + (-(width + 2 * margin) % SIZE_MULTIPLE)
    mode = "reflect" if max(margin, bottom) < height and max(margin, right) < width else "replicate"
    flat = x.reshape(-1, 1, height, width)
    padded = F.pad(flat, (margin, right, margin, bottom), mode=mode)
    return padded.reshape(*x.shape[:-2], *padded.shape[-2:])


@dataclass
class MsgVimSession:
    """Runs an MSG-VIM network on the chunks of one clip; holds the instances' temporal states.

    Use a new session per clip. Calling it is a :data:`ChunkMatter`. The session runs the network as it
    receives it and keeps its settings; what it learns on the way (the temporal states, a batch that
    fits the accelerator's memory) is its own state.

    Args:
        model: the network in evaluation mode, prepared beforehand
            (:func:`vidmatte.inference.torch_engine.prepare_network`: channels-last weights run about
            1.5x faster on a CPU), or an exported graph called the same way
            (:class:`vidmatte.inference.onnx_backend.OnnxMsgVim`, CPU).
        carry_state: pass each instance's temporal state from one chunk to the next (the paper
            resets it at every chunk).
        instance_batch: instances per forward pass (``None``: on an accelerator all of a chunk's
            instances at once, halved whenever it runs out of memory, see :attr:`fitting_batch`; on a
            CPU as many as fit in :data:`CPU_BATCH_BYTES`, since a CPU process that runs out of memory
            is killed outright).
        margin: padding around each frame, as the reference.
        device: where the network runs.

    Attributes:
        fitting_batch: the instances per forward pass that fit after the accelerator ran out of memory
            (``None`` until it does); the rest of the clip keeps to it.
    """

    model: MsgVim | MsgVimRunner
    carry_state: bool = False
    instance_batch: int | None = None
    margin: int = MARGIN
    device: torch.device | str = "cpu"

    fitting_batch: int | None = field(default=None, init=False)
    _states: dict[int, torch.Tensor] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.model, MsgVim) and self.model.training:
            raise ValueError("MsgVimSession runs a model in evaluation mode: call model.eval() first")

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, targets: np.ndarray, references: np.ndarray) -> np.ndarray:
        """Matte ``N`` instances over ``t`` frames: see :data:`ChunkMatter`.

        When a batch of instances runs out of accelerator memory, the batch is halved (and stays so
        for the rest of the clip); a single instance that does not fit is an error.
        """
        count, time, height, width = targets.shape
        frames = _pad(torch.from_numpy(rgb).permute(0, 3, 1, 2), self.margin).to(self.device)
        alphas = np.zeros((count, time, height, width), np.float32)
        start = 0
        while start < count:
            step = self.fitting_batch or self.instance_batch or self._default_batch(count, frames.shape)
            group = list(range(start, min(start + step, count)))
            try:
                alphas[group] = self._matte_group(frames, targets[group], references[group], group)
            except torch.OutOfMemoryError:
                if len(group) == 1:
                    raise VidmatteError(
                        f"out of memory on {self.device} for one instance of {time} frames at "
                        f"{width}x{height}; use fewer frames per chunk"
                    ) from None
                self.fitting_batch = len(group) // 2
                continue
            start += len(group)
        return alphas

    def _default_batch(self, count: int, shape: torch.Size) -> int:
        """Instances per forward pass when none is set: all on an accelerator, a memory budget's on a CPU."""
        if torch.device(self.device).type != "cpu":
            return count
        time, _, height, width = shape
        return max(1, min(count, CPU_BATCH_BYTES // (BYTES_PER_INSTANCE_PIXEL * time * height * width)))

    def _matte_group(
        self, frames: torch.Tensor, targets: np.ndarray, references: np.ndarray, group: list[int]
    ) -> np.ndarray:
        """Padded ``(t, 3, H', W')`` frames and ``(b, t, H, W)`` masks of ``group`` -> ``(b, t, H, W)``."""
        height, width = targets.shape[-2:]
        masks = _pad(torch.from_numpy(np.stack([targets, references], axis=2)).float(), self.margin)
        masks = masks.to(self.device)
        state = None
        if self.carry_state and group[0] in self._states:
            state = TemporalState(torch.cat([self._states[i] for i in group]))
        out = self.model(frames.expand(len(group), *frames.shape), masks[:, :, :1], masks[:, :, 1:], state)
        if self.carry_state:
            self._states.update(zip(group, out.state.hidden.split(1), strict=True))
        crop = out.alpha[:, :, 0, self.margin : self.margin + height, self.margin : self.margin + width]
        return crop.float().cpu().numpy()
