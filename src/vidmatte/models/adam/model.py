"""AdaM assembled from its parts, with its stages exposed and its memory passed in and out.

Per frame ``t`` (Algorithm 1 of the supplementary): encode ``F^t = Φ(I^t)`` and project
``Q, K, V`` (:meth:`AdamModel.encode`); propagate ``Z' = Ξ(Q, [K̂, K], [V̂_fb, V])``
(:meth:`AdamModel.read_memory`); decode ``m_p, α^c, α^f`` and the foreground
(:meth:`AdamModel.decode`); embed the predicted mask into ``V`` and add ``(K, V_fb)`` to memory
(:meth:`AdamModel.encode_memory`, the self-update mechanism). Memory starts from frame 0 embedded
with the first-frame mask: one given by the caller, or the model's own mask head run without memory.

The module holds no state: :meth:`AdamModel.forward` takes a clip and an optional
:class:`~vidmatte.models.adam.memory.MemoryBank` and returns the outputs and the new bank, so a clip
processed at once equals the same clip processed frame by frame with the bank carried over.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidmatte.models.adam.decoder import MASK_STRIDE, AdamDecoder, AdamDecoderOutput
from vidmatte.models.adam.embedding import FgBgEmbedding
from vidmatte.models.adam.encoder import AdamEncoder
from vidmatte.models.adam.geometry import FrameGeometry
from vidmatte.models.adam.guided_filter import DeepGuidedFilter
from vidmatte.models.adam.memory import DEFAULT_CAPACITY, MemoryBank, MemoryEntry
from vidmatte.models.adam.projection import QKVProjection
from vidmatte.models.adam.transformer import FgBgStructuringTransformer

TOKENS_PER_MASK_CELL = 4  # 1/4 -> 1/16


class EncodedFrame(NamedTuple):
    """A frame's encoder features and its Eq. 1 projections.

    Attributes:
        skips: ``(f_1/2, f_1/4, f_1/8)`` encoder features.
        grid: ``(h, w)`` size of the 1/16 token grid.
        query, key, value: ``(B, h * w, dim)`` each.
    """

    skips: tuple[Tensor, Tensor, Tensor]
    grid: tuple[int, int]
    query: Tensor
    key: Tensor
    value: Tensor

    def select(self, batch: int, index: int) -> EncodedFrame:
        """Frame ``index`` of an encoding of ``batch`` clips flattened as ``(batch * T, ...)``."""

        def pick(x: Tensor) -> Tensor:
            return x.unflatten(0, (batch, -1))[:, index]

        return EncodedFrame(
            tuple(pick(s) for s in self.skips), self.grid, pick(self.query), pick(self.key), pick(self.value)
        )


class AdamOutput(NamedTuple):
    """AdaM's outputs for ``T`` frames of size ``H x W`` (the leading ``T`` is absent for a single frame).

    Attributes:
        alpha: ``(B, T, 1, H, W)`` float alpha matte in ``[0, 1]`` (``α^f``, guided-filtered for HD).
        foreground: ``(B, T, 3, H, W)`` float foreground RGB in ``[0, 1]``.
        coarse_alpha: ``(B, T, 1, h, w)`` coarse alpha ``α^c`` in ``[0, 1]`` at 1/4 of the network's
            size (``h = ceil(low_height / 4)``).
        mask_logits: ``(B, T, 2, h, w)`` Fg/Bg logits ``m_p`` (background, foreground).
    """

    alpha: Tensor
    foreground: Tensor
    coarse_alpha: Tensor
    mask_logits: Tensor


def foreground_tokens(mask_logits: Tensor) -> Tensor:
    """``(B, 2, h, w)`` logits at 1/4 -> ``(B, h/4 * w/4)`` foreground probability ``m_d`` per token."""
    probability = mask_logits.softmax(1)[:, 1:]
    return F.avg_pool2d(probability, TOKENS_PER_MASK_CELL).flatten(1)


class AdamModel(nn.Module):
    """AdaM: encoder Φ, Eq. 1 projections, Fg/Bg embedding, structuring network Ξ, decoder Ψ, HD refiner.

    Args:
        encoder: :class:`AdamEncoder`.
        projection: :class:`QKVProjection` of the encoder's ``dim``-channel tokens.
        embedding: :class:`FgBgEmbedding` of width ``dim``.
        transformer: :class:`FgBgStructuringTransformer`.
        decoder: :class:`AdamDecoder`.
        refiner: :class:`DeepGuidedFilter` used when frames are downsampled.
        memory_capacity: short-term memory size ``N`` of the banks this model starts.
        memory_pool: each memory entry keeps the mean key and value of every ``memory_pool`` x
            ``memory_pool`` tokens (decision, for speed: 2 reads a quarter of the keys; 1, the paper's,
            keeps every token). The frame's own keys, attended beside the memory, stay whole.
    """

    def __init__(
        self,
        encoder: AdamEncoder,
        projection: QKVProjection,
        embedding: FgBgEmbedding,
        transformer: FgBgStructuringTransformer,
        decoder: AdamDecoder,
        refiner: DeepGuidedFilter,
        memory_capacity: int = DEFAULT_CAPACITY,
        memory_pool: int = 1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection = projection
        self.embedding = embedding
        self.transformer = transformer
        self.decoder = decoder
        self.refiner = refiner
        self.memory_capacity = memory_capacity
        if memory_pool < 1:
            raise ValueError(f"memory_pool must be >= 1, got {memory_pool}")
        self.memory_pool = memory_pool

    # ------------------------------------------------------------------------------------ stages
    def encode(self, image: Tensor) -> EncodedFrame:
        """Stage 1: features and ``Q, K, V`` of a ``(B, 3, H, W)`` RGB image in ``[0, 1]``.

        ``H`` and ``W`` must be multiples of 16 (:class:`FrameGeometry` pads frames to that).
        """
        skips, z = self.encoder(image)
        query, key, value = self.projection(z.flatten(2).transpose(1, 2))
        return EncodedFrame(skips, (z.shape[-2], z.shape[-1]), query, key, value)

    def read_memory(self, frame: EncodedFrame, memory: MemoryBank) -> Tensor:
        """Stage 2: ``Z'``, ``(B, dim, h, w)``, the frame's tokens after attending to memory and itself."""
        keys, values = frame.key, frame.value
        stored = memory.read()
        if stored is not None:
            keys, values = torch.cat([stored.key, keys], 1), torch.cat([stored.value, values], 1)
        tokens = self.transformer(frame.query, keys, values)
        return tokens.transpose(1, 2).unflatten(2, frame.grid)

    def decode(self, features: Tensor, frame: EncodedFrame, image: Tensor) -> AdamDecoderOutput:
        """Stage 3: decode ``Z'`` with the frame's skip features; ``image`` is the network's input."""
        return self.decoder(features, frame.skips, image)

    def encode_memory(self, frame: EncodedFrame, foreground: Tensor) -> MemoryEntry:
        """Stage 4: the frame's memory entry, its values embedded with ``(B, L)`` foreground probabilities
        and, with ``memory_pool`` > 1, pooled over the token grid (a window cut by the grid's edge
        averages the tokens it holds)."""
        entry = MemoryEntry(frame.key, self.embedding(frame.value, foreground))
        if self.memory_pool == 1:
            return entry
        return MemoryEntry(*(self._pool(x, frame.grid) for x in entry))

    def _pool(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """``(B, h * w, dim)`` -> ``(B, ceil(h / p) * ceil(w / p), dim)`` means of ``p x p`` tokens."""
        plane = tokens.transpose(1, 2).unflatten(2, grid)
        pooled = F.avg_pool2d(plane, self.memory_pool, ceil_mode=True, count_include_pad=False)
        return pooled.flatten(2).transpose(1, 2)

    def empty_memory(self) -> MemoryBank:
        """A bank with this model's short-term capacity and no entry."""
        return MemoryBank(self.memory_capacity)

    def segment(self, frames: Tensor, downsample_ratio: float | None = None) -> Tensor:
        """The mask head run without memory: the built-in first-frame segmentor.

        Args:
            frames: ``(B, 3, H, W)`` float RGB in ``[0, 1]``.
            downsample_ratio: as in :meth:`forward`.

        Returns:
            ``(B, 1, H, W)`` foreground probability in ``[0, 1]``.
        """
        geometry = FrameGeometry.for_size(frames.shape[-2], frames.shape[-1], downsample_ratio)
        image = geometry.pad(geometry.downsample(frames))
        return self._own_mask(self.encode(image), image, geometry)

    def _own_mask(self, frame: EncodedFrame, image: Tensor, geometry: FrameGeometry) -> Tensor:
        """The mask head's ``(B, 1, height, width)`` foreground probability for an encoded frame, decoded
        with an empty memory (it attends to itself only) and brought to the frame's full size."""
        logits = self.decode(self.read_memory(frame, self.empty_memory()), frame, image).mask_logits
        probability = geometry.crop(logits.softmax(1)[:, 1:], MASK_STRIDE)
        size = (geometry.height, geometry.width)
        return F.interpolate(probability, size, mode="bilinear", align_corners=False)

    # ---------------------------------------------------------------------------------- forward
    def forward(
        self,
        frames: Tensor,
        memory: MemoryBank | None = None,
        first_mask: Tensor | None = None,
        masks: Tensor | None = None,
        downsample_ratio: float | None = None,
    ) -> tuple[AdamOutput, MemoryBank]:
        """Matte a clip causally, frame after frame.

        Args:
            frames: ``(B, T, 3, H, W)`` (or one frame ``(B, 3, H, W)``) RGB, float in ``[0, 1]`` or
                uint8 in ``[0, 255]`` (decoded frames: resized as uint8, faster).
            memory: the bank returned for the previous frames of the same video; ``None`` (or an
                empty bank) starts a video: its first frame initialises the long-term memory.
            first_mask: ``(B, 1, H, W)`` float in ``[0, 1]``, the segmentor's mask of the first
                frame when starting a video; ``None`` uses the model's own mask head on the first
                frame's encoding (the same as passing :meth:`segment` of that frame, without encoding
                it twice).
            masks: ``(B, T, 1, H, W)`` float in ``[0, 1]`` written into memory instead of the
                predicted masks (ground truth in training); ``None`` is the self-update mechanism.
            downsample_ratio: the network works at this fraction of ``H x W`` and the guided
                filter restores the full size; ``None`` chooses it so that the long side is ~512.

        Returns:
            ``(outputs, memory)``: :class:`AdamOutput` (with a ``T`` axis iff ``frames`` had one)
            and the bank after the last frame.
        """
        single = frames.dim() == 4
        if single:
            frames = frames.unsqueeze(1)
            masks = None if masks is None else masks.unsqueeze(1)
        batch, length, _, height, width = frames.shape
        geometry = FrameGeometry.for_size(height, width, downsample_ratio)
        images = geometry.pad(geometry.downsample(frames.flatten(0, 1))).unflatten(0, (batch, length))
        encoded = self.encode(images.flatten(0, 1))
        if memory is None:
            memory = self.empty_memory()
        outputs = []
        for t in range(length):
            frame, image = encoded.select(batch, t), images[:, t]
            if len(memory) == 0:
                mask = self._own_mask(frame, image, geometry) if first_mask is None else first_mask
                memory = memory.add(self.encode_memory(frame, geometry.mask_tokens(mask)))
            decoded = self.decode(self.read_memory(frame, memory), frame, image)
            update = (
                foreground_tokens(decoded.mask_logits) if masks is None else geometry.mask_tokens(masks[:, t])
            )
            memory = memory.add(self.encode_memory(frame, update))
            outputs.append(self._restore(decoded, geometry, frames[:, t], image))
        stacked = AdamOutput(*(torch.stack(field, 1) for field in zip(*outputs, strict=True)))
        if single:
            stacked = AdamOutput(*(x.squeeze(1) for x in stacked))
        return stacked, memory

    def _restore(
        self, decoded: AdamDecoderOutput, geometry: FrameGeometry, frame: Tensor, image: Tensor
    ) -> AdamOutput:
        """Crop the padding and, for downsampled frames, guided-filter back to the input size."""
        alpha, foreground = geometry.crop(decoded.alpha), geometry.crop(decoded.foreground)
        if geometry.downsampled:
            foreground, alpha = self.refiner(
                frame, geometry.crop(image), foreground, alpha, geometry.crop(decoded.hidden)
            )
        return AdamOutput(
            alpha,
            foreground,
            geometry.crop(decoded.coarse_alpha, MASK_STRIDE),
            geometry.crop(decoded.mask_logits, MASK_STRIDE),
        )
