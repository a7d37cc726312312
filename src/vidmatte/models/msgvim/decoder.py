"""MSG-VIM decoder: residual upsample blocks with skip features, side outputs, temporal guidance at 1/2."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidmatte.models.backbones.resnet import conv3x3, init_weights, spectral_norm_convs
from vidmatte.models.msgvim.temporal_guidance import TemporalFeatureGuidance, TemporalState

OUTPUT_CHANNELS = 2  # target instance, reference (all other instances)
NEGATIVE_SLOPE = 0.2


def to_alpha(logits: Tensor) -> Tensor:
    """Map logits to [0, 1] as the reference does: ``(tanh(x) + 1) / 2``."""
    return (torch.tanh(logits) + 1) / 2


class UpsampleBlock(nn.Module):
    """Residual block of the decoder, optionally doubling the resolution.

    Residual branch: ``4x4 transposed conv (stride 2)`` when upsampling, else ``3x3 conv``, then BN,
    LeakyReLU, ``3x3 conv`` to ``out_channels``, BN (starting at zero). Shortcut when upsampling:
    nearest 2x upsampling, ``1x1 conv``, BN; else the identity (``1x1 conv``, BN if channels change).
    """

    def __init__(self, in_channels: int, out_channels: int, upsample: bool = False) -> None:
        super().__init__()
        if upsample:
            first = nn.ConvTranspose2d(in_channels, in_channels, 4, stride=2, padding=1, bias=False)
        else:
            first = conv3x3(in_channels, in_channels)
        self.residual = nn.Sequential(
            first,
            nn.BatchNorm2d(in_channels),
            nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
            conv3x3(in_channels, out_channels),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if upsample or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest") if upsample else nn.Identity(),
                nn.Conv2d(in_channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.activation = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, h, w)`` -> ``(N, C_out, 2h, 2w)`` when upsampling, else ``(N, C_out, h, w)``."""
        return self.activation(self.residual(x) + self.shortcut(x))


class TemporalUpsampleBlock(UpsampleBlock):
    """An :class:`UpsampleBlock` whose shortcut feature goes through temporal feature guidance."""

    def __init__(
        self, in_channels: int, out_channels: int, temporal: TemporalFeatureGuidance, upsample: bool = True
    ) -> None:
        super().__init__(in_channels, out_channels, upsample)
        self.temporal = temporal

    def forward(
        self, x: Tensor, batch_size: int, state: TemporalState | None = None
    ) -> tuple[Tensor, TemporalState]:
        """``(B*T, C_in, h, w)`` frames of ``batch_size`` sequences -> ``(B*T, C_out, 2h, 2w)`` and state."""
        shortcut = self.shortcut(x)
        guided, state = self.temporal(shortcut.unflatten(0, (batch_size, -1)), state)
        return self.activation(self.residual(x) + guided.flatten(0, 1)), state


def side_output(in_channels: int, hidden_channels: int) -> nn.Sequential:
    """``3x3 conv -> BN -> LeakyReLU -> 3x3 conv`` to the two output logits."""
    return nn.Sequential(
        conv3x3(in_channels, hidden_channels),
        nn.BatchNorm2d(hidden_channels),
        nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
        nn.Conv2d(hidden_channels, OUTPUT_CHANNELS, 3, padding=1),
    )


class MsgVimDecoderOutput(NamedTuple):
    """Alpha predictions at full resolution, ``(N, 2, H, W)`` float32 in [0, 1] (target, reference).

    Attributes:
        alpha_os1: from the full-resolution feature.
        alpha_os4: from the 1/4 feature, bilinearly upsampled.
        alpha_os8: from the 1/8 feature, bilinearly upsampled.
        state: the temporal state after the last frame.
    """

    alpha_os1: Tensor
    alpha_os4: Tensor
    alpha_os8: Tensor
    state: TemporalState


class MsgVimDecoder(nn.Module):
    """Four upsampling stages from 1/32 to 1/2, a 4x4 transposed convolution to full resolution.

    After each stage the encoder's shortcut feature of that resolution is added. Side outputs come
    from the 1/8 and 1/4 features and the full-resolution one. The first block of the last stage
    (1/4 -> 1/2) carries the temporal feature guidance on its shortcut, as in the reference.

    Args:
        temporal: the TFG module for the 1/2-resolution feature.
        in_channels: channels of the ASPP output.
        stage_channels: output channels of the four stages (1/16, 1/8, 1/4, 1/2), equal to the
            encoder's shortcut channels at those resolutions.
        blocks: blocks per stage (MSG-VIM: 2, 3, 3, 2).
        full_channels: channels at full resolution (the encoder's full-resolution shortcut).
        head_channels: hidden channels of the side outputs.
        spectral_norm: spectrally normalise the convolutions of the stages and of the last upsampling.
    """

    def __init__(
        self,
        temporal: TemporalFeatureGuidance,
        in_channels: int = 512,
        stage_channels: tuple[int, int, int, int] = (256, 128, 64, 32),
        blocks: tuple[int, int, int, int] = (2, 3, 3, 2),
        full_channels: int = 32,
        head_channels: int = 32,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        for index, (c_in, c_out, n) in enumerate(
            zip((in_channels, *stage_channels[:3]), stage_channels, blocks, strict=True)
        ):
            first = (
                TemporalUpsampleBlock(c_in, c_out, temporal)
                if index == 3
                else UpsampleBlock(c_in, c_out, True)
            )
            self.stages.append(nn.Sequential(first, *(UpsampleBlock(c_out, c_out) for _ in range(n - 1))))
        self.to_full = nn.Sequential(
            nn.ConvTranspose2d(stage_channels[3], full_channels, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(full_channels),
            nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
        )
        self.head_os8 = side_output(stage_channels[1], head_channels)
        self.head_os4 = side_output(stage_channels[2], head_channels)
        self.head_os1 = side_output(full_channels, head_channels)
        init_weights(self)
        blocks = [block for block in self.modules() if isinstance(block, UpsampleBlock)]
        for block in blocks:
            nn.init.zeros_(block.residual[-1].weight)
        if spectral_norm:  # the blocks and the last upsampling, not the RNN nor the side outputs
            for block in blocks:
                spectral_norm_convs(block.residual)
                spectral_norm_convs(block.shortcut)
            spectral_norm_convs(self.to_full)

    def forward(
        self,
        x: Tensor,
        skips: tuple[Tensor, Tensor, Tensor, Tensor, Tensor],
        batch_size: int,
        state: TemporalState | None = None,
    ) -> MsgVimDecoderOutput:
        """Decode ``N = B*T`` frames of ``batch_size`` sequences.

        Args:
            x: ``(N, in_channels, H/32, W/32)`` ASPP output.
            skips: encoder shortcut features at 1/1, 1/2, 1/4, 1/8, 1/16 (finest first).
            batch_size: ``B``; frames are ordered sequence-major (``N = B*T``).
            state: temporal state from the previous chunk, or ``None``.

        Returns:
            The three alpha predictions at ``(H, W)`` and the new temporal state.
        """
        full, half, quarter, eighth, sixteenth = skips
        x = self.stages[0](x) + sixteenth
        x = self.stages[1](x) + eighth
        os8 = self.head_os8(x)
        x = self.stages[2](x) + quarter
        os4 = self.head_os4(x)
        first, *rest = self.stages[3]
        x, state = first(x, batch_size, state)
        for block in rest:
            x = block(x)
        x = self.to_full(x + half) + full
        size = full.shape[2:]
        # the logits leave autocast's low precision before the upsampling and tanh: in bfloat16, tanh
        # rounds alphas near 0 and 1 to steps of 1/512, which moves them across the refinement's 1/255
        # thresholds (and the alphas come out float32, as MsgVimOutput says)
        os1, os4, os8 = (logits.float() for logits in (self.head_os1(x), os4, os8))
        return MsgVimDecoderOutput(
            alpha_os1=to_alpha(os1),
            alpha_os4=to_alpha(F.interpolate(os4, size=size, mode="bilinear", align_corners=False)),
            alpha_os8=to_alpha(F.interpolate(os8, size=size, mode="bilinear", align_corners=False)),
            state=state,
        )
