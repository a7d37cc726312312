"""AdaM's decoder Ψ: four upscaling blocks and two output blocks (supplementary section 2.1).

Upscaling block: concatenate the previous output with the skip feature of the same scale,
``3x3 conv + BN + ReLU``, ``3x3 conv``, bilinear 2x upsampling; the paper's widths are 256, 128,
128 and 32 at 1/16, 1/8, 1/4 and 1/2 (a convolution of a concatenation is computed as the sum of
each part's convolution, :func:`conv_of_parts`: the same parameters, no copy). The block at 1/16
has no skip: its input ``Z'`` already carries the frame's own feature through the transformer's
residual connections.

First output block, on the 1/4 feature after the second upscaling block: two parallel 3x3 convs
give the Fg/Bg logits ``m_p`` (2 channels, background then foreground) and the coarse alpha
``α^c``. Second output block, at full resolution after the fourth: the feature concatenated with
the input image (decision: gives the last layers the pixel detail), two ``3x3 conv + BN + ReLU``
layers, then a 3x3 conv to the fine alpha ``α^f`` and a foreground residual added to the image
(decision, as RVM: users need the foreground colour to composite). Both alphas go through a sigmoid
(decision: unlike a clamp it passes a gradient everywhere, so no pixel is stuck early in training).

The supplementary's table 4 compares three first output blocks, all buildable here
(``first_outputs``): ``"mask+coarse"`` (model (g), the paper's), ``"mask"`` (model (f), no coarse
alpha) and ``"none"`` (model (e), no first output block: the Fg/Bg mask that updates the memory is
the fine alpha, pooled to 1/4 and turned into logits). An output the decoder does not predict is
derived from the fine alpha so that the rest of the model runs unchanged, and
:attr:`AdamDecoder.predicts` tells the losses to leave it unsupervised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidmatte.models.layers import conv_bn_relu


class AdamDecoderOutput(NamedTuple):
    """Decoder outputs at the network's (padded) input size ``H x W``.

    Attributes:
        mask_logits: ``(B, 2, H/4, W/4)`` Fg/Bg logits ``m_p`` (channel 1 is foreground).
        coarse_alpha: ``(B, 1, H/4, W/4)`` coarse alpha ``α^c`` in ``[0, 1]``.
        alpha: ``(B, 1, H, W)`` fine alpha ``α^f`` in ``[0, 1]``.
        foreground: ``(B, 3, H, W)`` foreground RGB in ``[0, 1]``.
        hidden: ``(B, C, H, W)`` last hidden feature (the guided filter's input for HD).
    """

    mask_logits: Tensor
    coarse_alpha: Tensor
    alpha: Tensor
    foreground: Tensor
    hidden: Tensor


def conv_of_parts(conv: nn.Conv2d, parts: Sequence[Tensor]) -> Tensor:
    """``conv(torch.cat(parts, 1))`` without the concatenation, equal up to float rounding.

    Each part is convolved with its slice of the weight's input channels and the results are summed,
    which saves writing (and reading back) the concatenated feature; the parameters are unchanged.

    Args:
        conv: a convolution without groups whose input channels are the parts' together.
        parts: ``(B, C_i, H, W)`` tensors, ``sum(C_i) == conv.in_channels``.

    Returns:
        ``(B, conv.out_channels, H', W')``.
    """
    out, start = None, 0
    for part in parts:
        stop = start + part.shape[1]
        bias = conv.bias if out is None else None
        y = F.conv2d(part, conv.weight[:, start:stop], bias, conv.stride, conv.padding, conv.dilation)
        out, start = (y if out is None else out + y), stop
    return out


def on_concatenation(block: nn.Sequential, parts: Sequence[Tensor]) -> Tensor:
    """A block that starts with a convolution (:func:`~vidmatte.models.layers.conv_bn_relu`) applied to
    ``torch.cat(parts, 1)``."""
    return block[1:](conv_of_parts(block[0], parts))


class UpscalingBlock(nn.Module):
    """``[x, skip] -> 3x3 conv + BN + ReLU -> 3x3 conv -> bilinear 2x``."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fuse = conv_bn_relu(in_channels + skip_channels, out_channels, 3)
        self.conv = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        """``(B, C_in, h, w)`` (+ skip ``(B, C_skip, h, w)``) -> ``(B, C_out, 2h, 2w)``."""
        fused = on_concatenation(self.fuse, (x,) if skip is None else (x, skip))
        return F.interpolate(self.conv(fused), scale_factor=2, mode="bilinear", align_corners=False)


FirstOutputs = Literal["mask+coarse", "mask", "none"]
MASK_STRIDE = 4  # the first output block works at 1/4 of the network's input
_EPS = 1e-4  # keeps a derived mask's logits finite


class AdamDecoder(nn.Module):
    """Decoder Ψ.

    Args:
        dim: channels of the propagated feature ``Z'`` at 1/16.
        skip_channels: channels of the encoder's features at 1/8, 1/4 and 1/2, in that order.
        channels: widths of the four upscaling blocks at 1/16, 1/8, 1/4 and 1/2 (paper: 256, 128,
            128, 32).
        output_channels: width of the second output block's two layers at full resolution.
        first_outputs: what the first output block predicts (table 4: ``"mask+coarse"``, ``"mask"``,
            ``"none"``).

    Attributes:
        predicts: the outputs the decoder predicts itself, among ``"mask"``, ``"coarse"``, ``"fine"``.
    """

    def __init__(
        self,
        dim: int,
        skip_channels: tuple[int, int, int],
        channels: tuple[int, int, int, int],
        output_channels: int,
        first_outputs: FirstOutputs = "mask+coarse",
    ) -> None:
        super().__init__()
        c16, c8, c4, c2 = channels
        s8, s4, s2 = skip_channels
        self.up16 = UpscalingBlock(dim, 0, c16)
        self.up8 = UpscalingBlock(c16, s8, c8)
        self.up4 = UpscalingBlock(c8, s4, c4)
        self.up2 = UpscalingBlock(c4, s2, c2)
        if first_outputs not in ("mask+coarse", "mask", "none"):
            raise ValueError(f"first_outputs must be mask+coarse, mask or none, got {first_outputs!r}")
        self.predicts = frozenset({"fine", *first_outputs.split("+")} - {"none"})
        self.mask_head = nn.Conv2d(c8, 2, 3, padding=1) if "mask" in self.predicts else None
        self.coarse_head = nn.Conv2d(c8, 1, 3, padding=1) if "coarse" in self.predicts else None
        self.refine = nn.Sequential(
            conv_bn_relu(c2 + 3, output_channels, 3), conv_bn_relu(output_channels, output_channels, 3)
        )
        self.fine_head = nn.Conv2d(output_channels, 4, 3, padding=1)

    def forward(self, z: Tensor, skips: tuple[Tensor, Tensor, Tensor], image: Tensor) -> AdamDecoderOutput:
        """Decode a frame.

        Args:
            z: ``(B, dim, H/16, W/16)`` propagated feature ``Z'``.
            skips: encoder features ``(f_1/2, f_1/4, f_1/8)``.
            image: ``(B, 3, H, W)`` RGB in ``[0, 1]``.

        Returns:
            :class:`AdamDecoderOutput`.
        """
        f2, f4, f8 = skips
        quarter = self.up8(self.up16(z), f8)
        x = self.up2(self.up4(quarter, f4), f2)
        # under autocast the features are in the low precision: match them rather than promote them
        hidden = self.refine[1](on_concatenation(self.refine[0], (x, image.to(x.dtype))))
        fine = self.fine_head(hidden)
        alpha = fine[:, :1].sigmoid()
        foreground = (fine[:, 1:] + image).clamp(0, 1)
        pooled = F.avg_pool2d(alpha, MASK_STRIDE)  # stands in for what the first block does not predict
        if self.mask_head is not None:
            mask_logits = self.mask_head(quarter)
        else:  # logits (0, logit(p)) whose softmax is the pooled fine alpha p
            probability = pooled.clamp(_EPS, 1 - _EPS)
            mask_logits = torch.cat([torch.zeros_like(probability), probability.logit()], 1)
        coarse_alpha = self.coarse_head(quarter).sigmoid() if self.coarse_head is not None else pooled
        return AdamDecoderOutput(mask_logits, coarse_alpha, alpha, foreground, hidden)
