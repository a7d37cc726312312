"""AdaM inference: an online session (one frame in, one matte out) and bi-directional offline matting.

Online, :class:`AdamSession` keeps the video's :class:`~vidmatte.models.adam.memory.MemoryBank`
between calls to :meth:`AdamSession.step`; the bank is bounded (frame 0 plus ``N`` recent frames),
so a session runs over any length of video in constant memory. The first frame's mask comes from
a :class:`FirstFrameSegmentor`: a mask supplied by the user (:class:`GivenMask`) or any callable with
the same signature (``matte_video`` defaults to every person that
:class:`vidmatte.segmentation.first_frame.PeopleSegmentor` finds); without one, the model's own mask
head, run by the model's first step on the frame it encodes anyway (the default here).

A session runs the network as it receives it: prepared for inference beforehand (evaluation mode,
the weights' layout, compilation: :func:`vidmatte.inference.torch_engine.prepare_network`).

Offline, :class:`BidirectionalSession` (and :func:`matte_bidirectional` for one clip) runs a forward
pass to gather the Fg/Bg memory, then a pass in reverse time starting from that memory (supplementary
section 4.3: no retraining needed).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from vidmatte.errors import VidmatteError
from vidmatte.models.adam.geometry import FrameGeometry, unit_range
from vidmatte.models.adam.memory import MemoryBank, MemoryEntry
from vidmatte.models.adam.model import AdamModel, AdamOutput
from vidmatte.models.precision import Precision, autocast_dtype

# frames without anyone that a session outputs as empty while its segmentor keeps looking; then the
# model's own mask head starts the memory
FIRST_MASK_PATIENCE = 25
PINNED_ENTRIES = 2  # forward-pass entries a bi-directional window's reverse pass keeps to its end


class FirstFrameSegmentor(Protocol):
    """Anything that gives the first frame's foreground mask."""

    def __call__(self, frame: Tensor) -> Tensor | None:
        """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> ``(B, 1, H, W)`` foreground probability in ``[0, 1]``;
        ``None`` when it finds nobody (the session then waits, and falls back to the model's own mask
        head)."""
        ...


class AdamRunner(Protocol):
    """What a session steps instead of an :class:`AdamModel`: an exported graph with the same calls
    (:class:`vidmatte.inference.onnx_backend.OnnxAdam`)."""

    def __call__(
        self,
        frames: Tensor,
        memory: MemoryBank | None = None,
        first_mask: Tensor | None = None,
        downsample_ratio: float | None = None,
    ) -> tuple[AdamOutput, MemoryBank]:
        """One ``(B, 3, H, W)`` frame, as :meth:`AdamModel.forward`."""
        ...

    def empty_memory(self) -> MemoryBank:
        """As :meth:`AdamModel.empty_memory`."""
        ...


class GivenMask:
    """The segmentor for a mask the user already has (a PNG, an RLE, a segmenter run elsewhere).

    Args:
        mask: ``(H, W)`` bool/uint8 (nonzero is foreground, or 0..255 for uint8) array or float
            tensor in ``[0, 1]``; ``(1, H, W)`` and ``(B, 1, H, W)`` tensors are accepted too.
        source: where the mask came from (a file path), to start error messages with.
    """

    def __init__(self, mask: np.ndarray | Tensor, source: str = "first-frame mask") -> None:
        self.source = source
        if isinstance(mask, np.ndarray):
            scale = 255.0 if mask.dtype == np.uint8 else 1.0
            mask = torch.from_numpy(mask.astype(np.float32) / scale)
        while mask.dim() < 4:
            mask = mask.unsqueeze(0)
        self.mask = mask.float()

    def __call__(self, frame: Tensor) -> Tensor:
        """The stored mask, on the frame's device, after checking that it fits the frame."""
        if self.mask.shape[-2:] != frame.shape[-2:]:
            size = "x".join(str(s) for s in reversed(self.mask.shape[-2:]))
            expected = "x".join(str(s) for s in reversed(frame.shape[-2:]))
            raise VidmatteError(f"{self.source}: mask size {size} does not fit frames of {expected}")
        return self.mask.to(frame.device).expand(frame.shape[0], -1, -1, -1)


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    """Autocast context for ``precision`` (``fp32``: none; ``bf16`` on CPU or GPU; ``fp16`` on GPU).

    Raises:
        ValueError: an unknown precision.
    """
    dtype = autocast_dtype(precision)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def as_frame(frame: np.ndarray | Tensor) -> Tensor:
    """A frame as the model takes it, ``(B, 3, H, W)``.

    Accepts an ``(H, W, 3)`` uint8 array, which stays uint8 in ``[0, 255]`` (a channels-last view of
    it), or a ``(3, H, W)`` / ``(B, 3, H, W)`` float tensor in ``[0, 1]``.
    """
    if isinstance(frame, np.ndarray):
        frame = np.ascontiguousarray(frame)
        # decoded frames may be read-only views (Pillow's); torch.from_numpy wants writable memory
        frame = torch.from_numpy(frame if frame.flags.writeable else frame.copy()).permute(2, 0, 1)
    return frame.unsqueeze(0) if frame.dim() == 3 else frame


class AdamSession:
    """Online AdaM matting of one video, frame by frame.

    Args:
        model: an :class:`AdamModel` in evaluation mode (see
            :func:`~vidmatte.inference.torch_engine.prepare_network`; the session does not change it),
            or an :class:`AdamRunner` of an exported graph (float32).
        first_mask: the first frame's mask (see :class:`GivenMask`); ``None`` uses ``segmentor``.
        segmentor: the first-frame segmentor when ``first_mask`` is ``None``; ``None``: the model's own
            mask head. While a segmentor finds nobody (it returns ``None``), frames come out empty
            (alpha 0) and it tries the next one; after :data:`FIRST_MASK_PATIENCE` such frames the
            model's own head starts the memory, with a warning.
        downsample_ratio: network resolution relative to the frames; ``None`` picks it so that the
            long side is about 512 pixels (HD frames then go through the guided filter).
        precision: ``"fp32"``, ``"bf16"`` (CPU or GPU autocast) or ``"fp16"`` (GPU autocast).
        channels_last: hand the network float frames it sees at full size channels-last (NHWC), to
            match weights stored so (``prepare_network``'s default): the same outputs up to float
            rounding, faster on CPU. Float frames that are downsampled stay planar (NCHW). Decoded
            uint8 frames on a CPU are channels-last as they come (the ``(H, W, 3)`` array) and stay so.

    Example:
        >>> from vidmatte import build_model
        >>> session = AdamSession(build_model("adam-tiny").eval())
        >>> frame = np.zeros((45, 70, 3), np.uint8)  # (H, W, 3) uint8 RGB, any size
        >>> alpha, foreground = session.step(frame)
        >>> tuple(alpha.shape), tuple(foreground.shape)
        ((1, 1, 45, 70), (1, 3, 45, 70))
    """

    def __init__(
        self,
        model: AdamModel | AdamRunner,
        first_mask: np.ndarray | Tensor | None = None,
        segmentor: FirstFrameSegmentor | None = None,
        downsample_ratio: float | None = None,
        precision: Precision = "fp32",
        channels_last: bool = True,
    ) -> None:
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model: AdamModel | AdamRunner = model
        if isinstance(model, AdamModel):
            if model.training:
                raise ValueError("AdamSession runs a model in evaluation mode: call model.eval() first")
            self.device = next(model.parameters()).device
        else:  # an exported graph (vidmatte.inference.onnx_backend): CPU tensors in and out, float32
            if precision != "fp32":
                raise ValueError("an exported AdaM runs in float32")
            self.device = torch.device("cpu")
        self.downsample_ratio = downsample_ratio
        self.precision = precision
        autocast(self.device, precision)  # validates the precision now rather than at the first frame
        if first_mask is not None:
            segmentor = GivenMask(first_mask)
        self.segmentor = segmentor
        self.memory: MemoryBank = model.empty_memory()
        self.waited = 0  # frames the segmentor found nobody on, before the memory started

    @torch.inference_mode()
    def step(self, frame: np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
        """Matte the next frame.

        Args:
            frame: ``(H, W, 3)`` uint8 array, or ``(3, H, W)`` / ``(B, 3, H, W)`` float tensor in ``[0, 1]``.

        Returns:
            ``(alpha, foreground)``: ``(B, 1, H, W)`` and ``(B, 3, H, W)`` float32 in ``[0, 1]``.
        """
        image = as_frame(frame)
        # a decoded uint8 frame stays as it is on the CPU: the model resizes it as uint8 and the guided
        # filter's CPU kernel reads it in place, with no full-size float copy
        if image.is_floating_point() or self.device.type != "cpu":
            image = unit_range(image.to(self.device))
            # a float frame to downsample is made planar (NCHW): the resize and the guided filter,
            # memory-bound at full resolution, run faster on planes; the network sees the resized frame
            downsampled = FrameGeometry.for_size(*image.shape[-2:], self.downsample_ratio).downsampled
            layout = torch.contiguous_format if downsampled else self.memory_format
            image = image.contiguous(memory_format=layout)
        with autocast(self.device, self.precision):
            # None on frame 0: the model's own mask head, on the encoding of its first step
            first_mask = None
            if len(self.memory) == 0 and self.segmentor is not None:
                unit = unit_range(image)
                first_mask = self.segmentor(unit)
                if first_mask is None and self.waited < FIRST_MASK_PATIENCE:
                    # nobody yet (a fade-in, an empty shot): wait
                    self.waited += 1
                    return unit.new_zeros(unit.shape[0], 1, *unit.shape[2:]).float(), unit.float()
                if first_mask is None:
                    warnings.warn(
                        f"the first-frame segmentor found nobody in {self.waited + 1} frames: the model "
                        "segments this frame itself",
                        stacklevel=2,
                    )
            output, self.memory = self.model(
                image, self.memory, first_mask=first_mask, downsample_ratio=self.downsample_ratio
            )
        return output.alpha.float(), output.foreground.float()


class BidirectionalSession:
    """Offline AdaM of one video in windows: a forward pass gathers memory, a reverse pass gives the result.

    The forward pass is one online pass over the whole video, window after window (each window's
    forward pass continues from the previous one's memory, so no window is re-seeded). After a
    window's forward pass, its reverse pass starts from that memory, with ``pinned`` entries of the
    forward pass, spread evenly over the window, kept readable for the whole reverse pass (the bounded
    short-term memory would otherwise have dropped every forward entry after ``capacity`` reverse
    frames); frame 0's long-term entry stays too. The reverse pass's memory is then discarded.

    Args:
        forward: the session of the forward pass (its model, first mask, segmentor, downsample ratio,
            precision and layout serve the reverse passes too), before its first step.
        average: yield the mean of the forward and reverse passes instead of the reverse pass (keeps
            a window's forward mattes as float16).
        pinned: forward-pass entries of a window kept through its reverse pass.

    Calling it on a window's frames (each as :meth:`AdamSession.step` accepts it; read twice, by index,
    so it can be a lazy sequence) yields ``(t, alpha, foreground)`` for ``t = T - 1, ..., 0`` of the
    window, shaped and ranged as :meth:`AdamSession.step` returns them.
    """

    def __init__(self, forward: AdamSession, average: bool = False, pinned: int = PINNED_ENTRIES) -> None:
        self.forward = forward
        self.average = average
        self.pinned = pinned

    def __call__(self, frames: Sequence[np.ndarray | Tensor]) -> Iterator[tuple[int, Tensor, Tensor]]:
        session = self.forward
        count = len(frames)
        keep = {count * (k + 1) // (self.pinned + 1) for k in range(self.pinned)}
        kept: list[MemoryEntry] = []
        forward: list[tuple[Tensor, Tensor]] = []
        for t in range(count):
            alpha, foreground = session.step(frames[t])
            if t in keep and session.memory.short_term:
                kept.append(session.memory.short_term[-1])
            if self.average:
                forward.append((alpha.half(), foreground.half()))
        reverse = copy.copy(session)
        reverse.memory = replace(session.memory, pinned=tuple(kept))
        for t in reversed(range(count)):
            alpha, foreground = reverse.step(frames[t])
            if self.average:
                alpha = (alpha + forward[t][0].float()) / 2
                foreground = (foreground + forward[t][1].float()) / 2
            yield t, alpha, foreground


def matte_bidirectional(
    model: AdamModel | AdamRunner,
    frames: Sequence[np.ndarray | Tensor],
    first_mask: np.ndarray | Tensor | None = None,
    segmentor: FirstFrameSegmentor | None = None,
    downsample_ratio: float | None = None,
    precision: Precision = "fp32",
    average: bool = False,
    channels_last: bool = True,
) -> Iterator[tuple[int, Tensor, Tensor]]:
    """Offline AdaM of a whole clip as one window of :class:`BidirectionalSession` (same arguments).

    Yields:
        ``(t, alpha, foreground)`` for ``t = T - 1, ..., 0`` (reverse time order), shaped and
        ranged as :meth:`AdamSession.step` returns them.
    """
    forward = AdamSession(model, first_mask, segmentor, downsample_ratio, precision, channels_last)
    session = BidirectionalSession(forward, average)
    yield from session(frames)
