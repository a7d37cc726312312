"""MSG-VIM assembled from its parts: encoder, ASPP, decoder (with temporal guidance), refinement."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidmatte.models.msgvim.aspp import ASPP
from vidmatte.models.msgvim.decoder import MsgVimDecoder
from vidmatte.models.msgvim.encoder import MsgVimEncoder
from vidmatte.models.msgvim.refinement import ProgressiveRefinement
from vidmatte.models.msgvim.temporal_guidance import TemporalState

SIZE_MULTIPLE = 32  # the encoder downsamples five times


class MsgVimOutput(NamedTuple):
    """Predictions for each frame; alphas are float32 in [0, 1] with channel 0 the target instance and
    channel 1 the reference (the other instances together), shaped like the input: ``(B, T, 2, H, W)``
    for clips, ``(B, 2, H, W)`` for single frames.

    Attributes:
        alpha: the progressive refinement of the three outputs below (what inference writes).
        alpha_os1: the full-resolution output.
        alpha_os4: the 1/4-resolution output, upsampled.
        alpha_os8: the 1/8-resolution output, upsampled.
        state: temporal state after the last frame; pass it with the next chunk of the same sequences.
    """

    alpha: Tensor
    alpha_os1: Tensor
    alpha_os4: Tensor
    alpha_os8: Tensor
    state: TemporalState


def _pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Pad ``(N, C, H, W)`` at the bottom and right to multiples of ``multiple`` (reflect, else replicate)."""
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


class MsgVim(nn.Module):
    """Mask-sequence-guided video instance matting network (Li et al., WACV 2024).

    One forward pass per instance: the frames come with that instance's guidance mask (target) and
    the union of the other instances' masks (reference). Holds no state: the temporal state goes in
    and comes out, so a long video can be processed in chunks.

    Args:
        encoder: ResNet-D encoder with shortcut features.
        aspp: pyramid pooling on the deepest feature.
        decoder: upsampling decoder with temporal feature guidance.
        refinement: fusion of the three outputs.
    """

    def __init__(
        self, encoder: MsgVimEncoder, aspp: ASPP, decoder: MsgVimDecoder, refinement: ProgressiveRefinement
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.aspp = aspp
        self.decoder = decoder
        self.refinement = refinement

    def forward(
        self, rgb: Tensor, target_mask: Tensor, reference_mask: Tensor, state: TemporalState | None = None
    ) -> MsgVimOutput:
        """Matte one instance per sequence.

        Args:
            rgb: ``(B, T, 3, H, W)`` or ``(B, 3, H, W)`` float32 in [0, 1]; any H, W (padded to
                multiples of 32 inside and cropped back).
            target_mask: ``(B, T, 1, H, W)`` or ``(B, 1, H, W)`` float32 in {0, 1}, the instance's guidance.
            reference_mask: same shape, the union of the other instances' guidance.
            state: the state returned for the previous chunk of the same sequences (same B, H, W),
                or ``None`` at the start of a video.

        Returns:
            Alphas shaped like ``rgb`` with 2 channels, and the new temporal state.
        """
        clip = rgb.dim() == 5
        if not clip:
            rgb, target_mask, reference_mask = (x.unsqueeze(1) for x in (rgb, target_mask, reference_mask))
        batch, time, _, height, width = rgb.shape
        masks = torch.cat([target_mask, reference_mask], dim=2).flatten(0, 1)
        features = self.encoder(
            _pad_to_multiple(rgb.flatten(0, 1), SIZE_MULTIPLE), _pad_to_multiple(masks, SIZE_MULTIPLE)
        )
        decoded = self.decoder(self.aspp(features.deepest), features.skips, batch, state)
        outputs = [a[..., :height, :width] for a in decoded[:3]]
        alphas = [self.refinement(outputs[2], outputs[1], outputs[0]), *outputs]
        alphas = [a.unflatten(0, (batch, time)) if clip else a for a in alphas]
        return MsgVimOutput(*alphas, state=decoded.state)
