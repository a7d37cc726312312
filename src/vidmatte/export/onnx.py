"""ONNX export of AdaM's online step and MSG-VIM's per-frame step, checked against PyTorch.

Both networks are stateful over a video, so each is exported as one *step* whose state is an
explicit input and output, and the bookkeeping stays in Python (:mod:`vidmatte.inference.onnx_backend`
drives the graphs through the same :class:`~vidmatte.inference.adam.AdamSession` and
:class:`~vidmatte.inference.msgvim.MsgVimSession` code as PyTorch).

**AdaM** (:class:`AdamStepGraph`): one frame attends to a memory of any length ``S`` (frame 0 plus the
``N`` most recent frames, ``S`` = entries x tokens, ``S = 0`` for the memoryless first-frame
segmentation); it returns the mattes and the frame's new memory entry. Resizing to the network's
resolution and padding to multiples of 16 stay in Python, in the PyTorch path's own code
(:class:`~vidmatte.models.adam.geometry.FrameGeometry`); cropping, the network and the guided filter
are in the graph. The guided filter always runs; for frames that are not downsampled
the caller passes the low-resolution image as the frame and keeps the unfiltered outputs (a TorchScript
trace cannot skip a module on a shape test, and the filter costs little at the network's resolution).

**MSG-VIM** (:class:`MsgVimStepGraph`): one frame per call with the ConvRNN hidden state in and out
(a chunk of ``T`` frames is ``T`` calls: the RNN's loop over time cannot have a dynamic length in a
traced graph). A ``carry`` input of 0 starts the recurrence afresh (``h_0 = tanh(Conv_ih(F_0))``), 1
continues it. Frames must be padded to multiples of 32 (the session pads them).

Height, width, batch and memory length are dynamic. Export uses the TorchScript exporter
(``torch.onnx.export(..., dynamo=False)``): the dynamo exporter works on these graphs with torch 2.13
but takes minutes (about 200 s for adam-tiny on a loaded two-core CPU, against 6 s).
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from vidmatte.errors import VidmatteError
from vidmatte.io.atomic import AtomicOutput
from vidmatte.models.adam.geometry import TOKEN_STRIDE, FrameGeometry
from vidmatte.models.adam.memory import MemoryBank, MemoryEntry
from vidmatte.models.adam.model import MASK_STRIDE, AdamModel, foreground_tokens
from vidmatte.models.msgvim.model import MsgVim
from vidmatte.models.msgvim.temporal_guidance import TemporalFeatureGuidance, TemporalState

DEFAULT_OPSET = 17
MIN_OPSET = 14  # the first with an export of scaled_dot_product_attention
TOLERANCE = 1e-4  # largest absolute difference from PyTorch accepted by :func:`verify`
MODEL_KEY = "vidmatte.model"  # ONNX metadata: "adam" or "msgvim"
CAPACITY_KEY = "vidmatte.memory_capacity"  # ONNX metadata (AdaM): short-term memory size N

ADAM_INPUTS = ("frame", "low", "image", "memory_key", "memory_value", "entry_mask")
ADAM_OUTPUTS = (
    "alpha",
    "foreground",
    "low_alpha",
    "low_foreground",
    "coarse_alpha",
    "mask_logits",
    "entry_key",
    "entry_value",
)
MSGVIM_INPUTS = ("rgb", "target_mask", "reference_mask", "hidden", "carry")
MSGVIM_OUTPUTS = ("alpha", "next_hidden")


class AdamStepGraph(nn.Module):
    """AdaM's online step as one traceable function of tensors.

    Args:
        model: the network (its modules are shared, not copied).
    """

    def __init__(self, model: AdamModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        frame: Tensor,
        low: Tensor,
        image: Tensor,
        memory_key: Tensor,
        memory_value: Tensor,
        entry_mask: Tensor,
    ) -> tuple[Tensor, ...]:
        """Matte one frame against a memory and make its memory entry.

        Args:
            frame: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, the guide of the guided filter (pass
                ``low`` when the frame is not downsampled).
            low: ``(B, 3, h, w)`` the frame at the network's resolution.
            image: ``(B, 3, h', w')`` ``low`` padded to multiples of 16 (replicated border).
            memory_key, memory_value: ``(B, S, dim)`` the memory read (:meth:`MemoryBank.read`);
                ``S`` may be 0.
            entry_mask: ``(B, L)`` foreground probability per 1/16 token to embed this frame's entry
                with; negative values embed the predicted mask instead (the self-update).

        Returns:
            ``alpha (B, 1, H, W)`` and ``foreground (B, 3, H, W)`` after the guided filter;
            ``low_alpha (B, 1, h, w)`` and ``low_foreground (B, 3, h, w)`` before it;
            ``coarse_alpha (B, 1, h/4, w/4)`` and ``mask_logits (B, 2, h/4, w/4)`` (rounded up);
            ``entry_key`` and ``entry_value``, ``(B, L, dim)``, the frame's memory entry.
        """
        model = self.model
        height, width = low.shape[-2:]
        encoded = model.encode(image)
        memory = MemoryBank(long_term=MemoryEntry(memory_key, memory_value))
        decoded = model.decode(model.read_memory(encoded, memory), encoded, image)
        update = torch.where(entry_mask < 0, foreground_tokens(decoded.mask_logits), entry_mask)
        entry = model.encode_memory(encoded, update)
        low_alpha = decoded.alpha[..., :height, :width]
        low_foreground = decoded.foreground[..., :height, :width]
        foreground, alpha = model.refiner(
            frame, low, low_foreground, low_alpha, decoded.hidden[..., :height, :width]
        )
        quarter_height = (height + MASK_STRIDE - 1) // MASK_STRIDE
        quarter_width = (width + MASK_STRIDE - 1) // MASK_STRIDE
        return (
            alpha,
            foreground,
            low_alpha,
            low_foreground,
            decoded.coarse_alpha[..., :quarter_height, :quarter_width],
            decoded.mask_logits[..., :quarter_height, :quarter_width],
            entry.key,
            entry.value,
        )


class _CarryGate(nn.Module):
    """``Conv_hh`` scaled by a gate set per call: 0 drops the incoming state, 1 keeps it unchanged."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.gate: Tensor | None = None

    def forward(self, hidden: Tensor) -> Tensor:
        return self.conv(hidden) * self.gate


class MsgVimStepGraph(nn.Module):
    """MSG-VIM on one frame with the temporal state as an explicit input and output.

    Args:
        model: the network; a copy is made whose ConvRNN hidden-to-hidden convolution is gated by
            the ``carry`` input (the original is not modified).
    """

    def __init__(self, model: MsgVim) -> None:
        super().__init__()
        self.model = copy.deepcopy(model)
        self.gates = [
            module for module in self.model.modules() if isinstance(module, TemporalFeatureGuidance)
        ]
        for rnn in self.gates:
            rnn.hidden_to_hidden = _CarryGate(rnn.hidden_to_hidden)

    def forward(
        self, rgb: Tensor, target_mask: Tensor, reference_mask: Tensor, hidden: Tensor, carry: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Matte one frame of ``B`` instances.

        Args:
            rgb: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, ``H`` and ``W`` multiples of 32.
            target_mask, reference_mask: ``(B, 1, H, W)`` float in ``{0, 1}``.
            hidden: ``(B, C_g, H/2, W/2)`` the state after the previous frame (any values when
                ``carry`` is 0).
            carry: ``(1,)`` float, 1 to continue from ``hidden``, 0 to start a sequence.

        Returns:
            ``alpha (B, 2, H, W)`` (target, reference; progressive refinement) and the next hidden state.
        """
        for rnn in self.gates:
            rnn.hidden_to_hidden.gate = carry.view(-1, 1, 1, 1)
        out = self.model(rgb, target_mask, reference_mask, TemporalState(hidden))
        return out.alpha, out.state.hidden


def guided_channels(model: MsgVim) -> int:
    """Channels of MSG-VIM's temporal state."""
    return next(m for m in model.modules() if isinstance(m, TemporalFeatureGuidance)).guided_channels


def adam_inputs(
    model: AdamModel, height: int, width: int, low_height: int, low_width: int, entries: int, seed: int = 0
) -> tuple[Tensor, ...]:
    """Random inputs of :class:`AdamStepGraph`: a frame and a memory of ``entries`` entries.

    Half of the entry mask is negative (prediction), half a given probability.
    """
    generator = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, low_height, low_width, generator=generator)
    if (height, width) == (low_height, low_width):
        frame = low
    else:
        frame = torch.rand(1, 3, height, width, generator=generator)
    geometry = FrameGeometry(low_height, low_width, low_height, low_width)
    padded_height, padded_width = geometry.padded_size
    tokens = (padded_height // TOKEN_STRIDE) * (padded_width // TOKEN_STRIDE)
    dim = model.embedding.foreground.shape[-1]
    key = torch.randn(1, entries * tokens, dim, generator=generator)
    value = torch.randn(1, entries * tokens, dim, generator=generator)
    entry_mask = torch.rand(1, tokens, generator=generator) * 2 - 1
    return frame, low, geometry.pad(low), key, value, entry_mask


def msgvim_inputs(model: MsgVim, height: int, width: int, carry: float, seed: int = 0) -> tuple[Tensor, ...]:
    """Random inputs of :class:`MsgVimStepGraph` for ``(height, width)`` frames (multiples of 32)."""
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.rand(2, 3, height, width, generator=generator)
    target = (torch.rand(2, 1, height, width, generator=generator) > 0.5).float()
    reference = (torch.rand(2, 1, height, width, generator=generator) > 0.5).float()
    hidden = torch.rand(2, guided_channels(model), height // 2, width // 2, generator=generator) * 2 - 1
    return rgb, target, reference, hidden, torch.tensor([carry])


StepGraph = tuple[nn.Module, tuple[str, ...], tuple[str, ...], dict[str, dict[int, str]]]


def step_graph(model: nn.Module) -> StepGraph:
    """The step module of ``model``, its input and output names and its dynamic axes."""
    if isinstance(model, AdamModel):
        axes = {
            "frame": {0: "batch", 2: "height", 3: "width"},
            "low": {0: "batch", 2: "low_height", 3: "low_width"},
            "image": {0: "batch", 2: "padded_height", 3: "padded_width"},
            "memory_key": {0: "batch", 1: "memory"},
            "memory_value": {0: "batch", 1: "memory"},
            "entry_mask": {0: "batch", 1: "tokens"},
            "alpha": {0: "batch", 2: "height", 3: "width"},
            "foreground": {0: "batch", 2: "height", 3: "width"},
            "low_alpha": {0: "batch", 2: "low_height", 3: "low_width"},
            "low_foreground": {0: "batch", 2: "low_height", 3: "low_width"},
            "coarse_alpha": {0: "batch", 2: "quarter_height", 3: "quarter_width"},
            "mask_logits": {0: "batch", 2: "quarter_height", 3: "quarter_width"},
            "entry_key": {0: "batch", 1: "tokens"},
            "entry_value": {0: "batch", 1: "tokens"},
        }
        return AdamStepGraph(model), ADAM_INPUTS, ADAM_OUTPUTS, axes
    if isinstance(model, MsgVim):
        image_axes = {0: "batch", 2: "height", 3: "width"}
        half_axes = {0: "batch", 2: "half_height", 3: "half_width"}
        axes = {
            "rgb": image_axes,
            "target_mask": image_axes,
            "reference_mask": image_axes,
            "hidden": half_axes,
            "alpha": image_axes,
            "next_hidden": half_axes,
        }
        return MsgVimStepGraph(model), MSGVIM_INPUTS, MSGVIM_OUTPUTS, axes
    raise TypeError(f"no ONNX step graph for {type(model).__name__}")


def _symbolic_or(graph, left, right):
    """ONNX rule for ``a |= b`` on bool tensors: ``Or``."""
    return graph.op("Or", left, right)


def export_bytes(model: nn.Module, opset: int = DEFAULT_OPSET) -> bytes:
    """The serialised ONNX step graph of an :class:`AdamModel` or :class:`MsgVim` (put in eval mode).

    The model's kind (and AdaM's memory capacity) are recorded in the ONNX metadata.

    Raises:
        VidmatteError: onnx is not installed, or the exporter does not support ``opset``.
    """
    if opset < MIN_OPSET:
        raise VidmatteError(f"opset {opset}: the step graphs need opset {MIN_OPSET} or later")
    try:
        import onnx
    except ImportError:
        raise VidmatteError("onnx is not installed (pip install 'vidmatte[export]')") from None
    # the wrapper in eval mode too: the exporter restores the wrapper's mode afterwards, recursively
    graph, inputs, outputs, axes = step_graph(model.eval())
    graph.eval()
    # example sizes distinct from each other, so that no axis is mistaken for another while tracing
    if isinstance(model, AdamModel):
        example = adam_inputs(model, 72, 104, 36, 52, entries=2)
        metadata = {MODEL_KEY: "adam", CAPACITY_KEY: str(model.memory_capacity)}
    else:
        example = msgvim_inputs(model, 64, 96, carry=1.0)
        metadata = {MODEL_KEY: "msgvim"}
    buffer = io.BytesIO()
    # MSG-VIM's dilation ORs masks in place, an operator the TorchScript exporter has no rule for
    torch.onnx.register_custom_op_symbolic("aten::__ior_", _symbolic_or, opset)
    try:
        _trace(graph, example, buffer, inputs, outputs, axes, opset)
    except RuntimeError as error:
        if "opset" not in str(error):
            raise
        raise VidmatteError(f"opset {opset}: {str(error).splitlines()[0]}") from None
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::__ior_", opset)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, metadata)
    return proto.SerializeToString()


def _trace(
    graph: nn.Module,
    example: tuple[Tensor, ...],
    buffer: io.BytesIO,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    axes: dict[str, dict[int, str]],
    opset: int,
) -> None:
    """``torch.onnx.export`` with the TorchScript exporter into ``buffer``."""
    with warnings.catch_warnings(), torch.no_grad():
        # the tracer warns about every shape it records as a dynamic value, and the exporter that it is
        # the TorchScript one: both are expected here
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            example,
            buffer,
            dynamo=False,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=opset,
        )


def onnx_session(source: str | os.PathLike | bytes, threads: int | None = None):
    """An onnxruntime CPU session on a file or serialised model.

    Args:
        source: an ``.onnx`` file or the bytes of one.
        threads: intra-op threads (default: as many as PyTorch uses, which follows ``OMP_NUM_THREADS``).

    Raises:
        VidmatteError: onnxruntime is not installed, or the file is not a readable ONNX model.
    """
    try:
        import onnxruntime
    except ImportError:
        raise VidmatteError("onnxruntime is not installed (pip install 'vidmatte[export]')") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    name = "model" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes):
        if not Path(source).is_file():
            raise VidmatteError(f"{source}: no such ONNX file")
        source = str(source)
    try:
        return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for unreadable models
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise VidmatteError(f"{name}: not a readable ONNX model ({first_line})") from None


def _difference(graph: nn.Module, session, names: tuple[str, ...], inputs: tuple[Tensor, ...]) -> float:
    """Largest absolute difference between the PyTorch step and the ONNX session on ``inputs``."""
    with torch.no_grad():
        expected = graph(*inputs)
    got = session.run(None, {name: x.numpy() for name, x in zip(names, inputs, strict=True)})
    pairs = zip(got, expected, strict=True)
    return max(float(np.abs(g - e.numpy()).max()) if e.numel() else 0.0 for g, e in pairs)


def verify(
    model: nn.Module, source: str | os.PathLike | bytes, tolerance: float = TOLERANCE, name: str | None = None
) -> float:
    """Compare the exported step with PyTorch on random inputs; return the largest absolute difference.

    AdaM: two frame sizes (one downsampled, one not, neither the export's) and memories of 0, 1 and
    3 entries. MSG-VIM: two frame sizes, starting and carrying the state.

    Args:
        model: the network that was exported.
        source: the export (file or bytes).
        tolerance: the largest absolute difference accepted on any output.
        name: what to call the export in the error message (default: the file, or "exported model").

    Raises:
        VidmatteError: the difference exceeds ``tolerance``.
    """
    session = onnx_session(source)
    graph, names, _, _ = step_graph(model.eval())
    if isinstance(model, AdamModel):
        cases = [adam_inputs(model, 96, 64, 48, 32, entries, seed=entries) for entries in (0, 1, 3)] + [
            adam_inputs(model, 41, 55, 41, 55, entries, seed=10 + entries) for entries in (0, 2)
        ]
    else:
        cases = [
            msgvim_inputs(model, h, w, carry, seed=i)
            for i, (h, w, carry) in enumerate([(32, 64, 0.0), (32, 64, 1.0), (96, 64, 1.0), (96, 64, 0.0)])
        ]
    difference = max(_difference(graph, session, names, inputs) for inputs in cases)
    if not difference <= tolerance:
        name = name or ("exported model" if isinstance(source, bytes) else str(source))
        raise VidmatteError(f"{name}: differs from PyTorch by {difference:.3g} (tolerance {tolerance:g})")
    return difference


def export_onnx(
    model: nn.Module, out: str | os.PathLike, opset: int = DEFAULT_OPSET, tolerance: float = TOLERANCE
) -> float:
    """Export ``model``'s step graph to ``out``, verify it against PyTorch, and only then publish it.

    The file is written under a temporary name and renamed when verified, so a failed export leaves
    no file that looks complete.

    Returns:
        The largest absolute difference from PyTorch found by :func:`verify`.

    Raises:
        VidmatteError: the export differs from PyTorch, or ``out`` cannot be written.
    """
    data = export_bytes(model, opset)
    target = AtomicOutput(out)
    try:
        target.partial.write_bytes(data)
        difference = verify(model, target.partial, tolerance, name=str(out))
        target.commit()
    except OSError as error:
        target.discard()
        raise VidmatteError(f"{out}: cannot write there ({error.strerror or error})") from None
    except BaseException:
        target.discard()
        raise
    return difference
