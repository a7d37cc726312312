"""Named MSG-VIM configurations: a paper-faithful one and smaller ones for CPU."""

from __future__ import annotations

from dataclasses import dataclass, replace

from vidmatte.models.backbones.resnet import ResNetD
from vidmatte.models.msgvim.aspp import ASPP
from vidmatte.models.msgvim.decoder import MsgVimDecoder
from vidmatte.models.msgvim.encoder import MsgVimEncoder
from vidmatte.models.msgvim.mobilenet import GuidedMobileNetV2
from vidmatte.models.msgvim.model import MsgVim
from vidmatte.models.msgvim.refinement import REFINE_WIDTHS, ProgressiveRefinement
from vidmatte.models.msgvim.temporal_guidance import TemporalFeatureGuidance


@dataclass(frozen=True)
class MsgVimConfig:
    """Sizes of an MSG-VIM network.

    Attributes:
        full_channels: channels at full resolution (input shortcut, last decoder feature).
        half_channels: channels at 1/2 (stem, shortcut, last decoder stage; TFG runs on half of them).
        stage_channels: encoder stage channels at 1/4, 1/8, 1/16, 1/32 (the decoder mirrors them).
        encoder_blocks: BasicBlocks per encoder stage.
        decoder_blocks: blocks per decoder stage (1/16, 1/8, 1/4, 1/2).
        aspp_channels: channels of each ASPP branch.
        head_channels: hidden channels of the side outputs.
        spectral_norm: spectrally normalise encoder and decoder convolutions, as the reference does.
        refine_widths: dilation diameters of the progressive refinement.
        mobilenet_width: a MobileNetV2 of this width as the encoder's backbone
            (:class:`GuidedMobileNetV2`, whose own channels replace ``half_channels``,
            ``stage_channels`` and ``encoder_blocks``); ``None``: the ResNet-D.
        bottleneck_channels: channels between the ASPP and the decoder; ``None``: the deepest
            feature's.
    """

    full_channels: int = 32
    half_channels: int = 32
    stage_channels: tuple[int, int, int, int] = (64, 128, 256, 512)
    encoder_blocks: tuple[int, int, int, int] = (3, 4, 4, 2)
    decoder_blocks: tuple[int, int, int, int] = (2, 3, 3, 2)
    aspp_channels: int = 256
    head_channels: int = 32
    spectral_norm: bool = True
    refine_widths: tuple[int, int] = REFINE_WIDTHS
    mobilenet_width: float | None = None
    bottleneck_channels: int | None = None


MSGVIM_R34 = MsgVimConfig()
MSGVIM_SMALL = MsgVimConfig(
    full_channels=16,
    half_channels=16,
    stage_channels=(32, 48, 96, 192),
    encoder_blocks=(2, 2, 2, 2),
    decoder_blocks=(1, 2, 2, 1),
    aspp_channels=64,
    head_channels=16,
    spectral_norm=False,
)
MSGVIM_MNV2_W15 = replace(MSGVIM_SMALL, mobilenet_width=1.5, bottleneck_channels=192)
MSGVIM_TINY = MsgVimConfig(
    full_channels=8,
    half_channels=8,
    stage_channels=(8, 16, 16, 32),
    encoder_blocks=(1, 1, 1, 1),
    decoder_blocks=(2, 1, 1, 2),
    aspp_channels=8,
    head_channels=8,
    spectral_norm=False,
)


def build_msgvim(config: MsgVimConfig) -> MsgVim:
    """Assemble an MSG-VIM network with fresh weights from ``config``."""
    c = config
    backbone = (
        ResNetD(5, c.half_channels, c.stage_channels, c.encoder_blocks, c.spectral_norm)
        if c.mobilenet_width is None
        else GuidedMobileNetV2(c.mobilenet_width)
    )
    half, stages = backbone.half_channels, backbone.stage_channels
    bottleneck = c.bottleneck_channels or stages[3]
    decoder = MsgVimDecoder(
        TemporalFeatureGuidance(half // 2),
        in_channels=bottleneck,
        stage_channels=(*stages[2::-1], half),
        blocks=c.decoder_blocks,
        full_channels=c.full_channels,
        head_channels=c.head_channels,
        spectral_norm=c.spectral_norm,
    )
    return MsgVim(
        MsgVimEncoder(backbone, c.full_channels, c.spectral_norm),
        ASPP(stages[3], c.aspp_channels, bottleneck),
        decoder,
        ProgressiveRefinement(c.refine_widths),
    )


def msgvim_r34(**overrides) -> MsgVim:
    """The paper's network: ResNet-34-style encoder (3, 4, 4, 2), decoder (2, 3, 3, 2), spectral norm."""
    return build_msgvim(replace(MSGVIM_R34, **overrides))


def msgvim_small(**overrides) -> MsgVim:
    """About a tenth of the paper's width and depth: the default weights, trainable on a CPU."""
    return build_msgvim(replace(MSGVIM_SMALL, **overrides))


def msgvim_mnv2_w15(**overrides) -> MsgVim:
    """``msgvim-small``'s decoder on MoveNet's MobileNetV2 (width 1.5), to start from its weights."""
    return build_msgvim(replace(MSGVIM_MNV2_W15, **overrides))


def msgvim_tiny(**overrides) -> MsgVim:
    """About 0.1 M parameters, for tests."""
    return build_msgvim(replace(MSGVIM_TINY, **overrides))
