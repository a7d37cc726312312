"""Named AdaM configurations, built from a typed :class:`AdamConfig`.

``adam-mnv2`` is the paper's model (MobileNetV2 width 1.0, 256-d three-layer transformer,
decoder widths 256/128/128/32); ``adam-fast`` is it with a pooled memory and a narrower decoder, for
CPUs; ``adam-small`` is the size the first shipped weights were trained at on CPU; ``adam-tiny`` exists
for tests and quick experiments.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vidmatte.models.adam.decoder import AdamDecoder, FirstOutputs
from vidmatte.models.adam.embedding import FgBgEmbedding
from vidmatte.models.adam.encoder import AdamEncoder
from vidmatte.models.adam.guided_filter import DeepGuidedFilter
from vidmatte.models.adam.memory import DEFAULT_CAPACITY
from vidmatte.models.adam.model import AdamModel
from vidmatte.models.adam.projection import QKVProjection
from vidmatte.models.adam.transformer import FgBgStructuringTransformer
from vidmatte.models.backbones.mobilenetv2 import MobileNetV2


@dataclass(frozen=True)
class AdamConfig:
    """Hyper-parameters of one AdaM configuration.

    Attributes:
        width_mult: MobileNetV2 channel multiplier.
        last_channels: channels of MobileNetV2's final 1x1 convolution.
        dim: transformer width (channels of ``Z``, ``Q``, ``K``, ``V``).
        heads: attention heads.
        mlp_dim: hidden width of the transformer's MLPs (decision: 4 x dim, as ViT).
        layers: transformer layers.
        decoder_channels: upscaling block widths at 1/16, 1/8, 1/4, 1/2.
        output_channels: width of the full-resolution output block.
        refiner_width: width of the guided filter's 1x1 convolutions.
        memory_capacity: short-term memory size ``N``.
        memory_pool: tokens pooled per side in each memory entry (1: the paper's, every token).
        first_outputs: the first output block's predictions (supplementary table 4: ``"mask+coarse"``
            is model (g), the paper's; ``"mask"`` model (f); ``"none"`` model (e)).
    """

    width_mult: float = 1.0
    last_channels: int = 1280
    dim: int = 256
    heads: int = 8
    mlp_dim: int = 1024
    layers: int = 3
    decoder_channels: tuple[int, int, int, int] = (256, 128, 128, 32)
    output_channels: int = 16
    refiner_width: int = 16
    memory_capacity: int = DEFAULT_CAPACITY
    memory_pool: int = 1
    first_outputs: FirstOutputs = "mask+coarse"


ADAM_MNV2 = AdamConfig()
# 7.1 GFLOP per 512x288 frame with a full memory (adam-mnv2: 27.8; attention included), for training on a
# CPU in about an hour.
ADAM_SMALL = AdamConfig(
    width_mult=0.5,
    last_channels=320,
    dim=128,
    heads=4,
    mlp_dim=256,
    decoder_channels=(96, 48, 32, 16),
    output_channels=12,
    refiner_width=12,
)
ADAM_TINY = AdamConfig(
    width_mult=0.25,
    last_channels=64,
    dim=32,
    heads=2,
    mlp_dim=64,
    decoder_channels=(32, 16, 16, 8),
    output_channels=8,
    refiner_width=8,
)


def build_adam(config: AdamConfig) -> AdamModel:
    """Assemble an :class:`AdamModel` with fresh weights from ``config``."""
    backbone = MobileNetV2(config.width_mult, config.last_channels)
    encoder = AdamEncoder(backbone, config.dim)
    f2, f4, f8 = encoder.skip_channels
    return AdamModel(
        encoder=encoder,
        projection=QKVProjection(config.dim),
        embedding=FgBgEmbedding(config.dim),
        transformer=FgBgStructuringTransformer(config.dim, config.heads, config.mlp_dim, config.layers),
        decoder=AdamDecoder(
            config.dim, (f8, f4, f2), config.decoder_channels, config.output_channels, config.first_outputs
        ),
        refiner=DeepGuidedFilter(config.output_channels, config.refiner_width),
        memory_capacity=config.memory_capacity,
        memory_pool=config.memory_pool,
    )


def adam_mnv2(**overrides) -> AdamModel:
    """The paper-faithful configuration; ``overrides`` replace :class:`AdamConfig` fields."""
    return build_adam(replace(ADAM_MNV2, **overrides))


def adam_mnv2_w15(**overrides) -> AdamModel:
    """The paper configuration with a MobileNetV2 of width 1.5, the width of MoveNet's backbone
    (``backbone_init: movenet``): channels 48/24/40/48/96/144/240/480, then 1280."""
    return build_adam(replace(ADAM_MNV2, width_mult=1.5, **overrides))


def adam_fast(**overrides) -> AdamModel:
    """The paper configuration made cheaper for CPUs (issue 16): memory entries pooled 2x2 (a quarter of
    the keys) and decoder widths 256/96/64/16 instead of 256/128/128/32: 15.9 instead of 27.8 GFLOP per
    512x288 frame. Its weights start from ``adam-mnv2``'s (:func:`vidmatte.training.narrow.narrow_adam`)."""
    return build_adam(replace(ADAM_MNV2, memory_pool=2, decoder_channels=(256, 96, 64, 16), **overrides))


def adam_mnv2_mask_only(**overrides) -> AdamModel:
    """Table 4's model (f): the paper configuration whose first output block predicts the mask alone."""
    return build_adam(replace(ADAM_MNV2, first_outputs="mask", **overrides))


def adam_mnv2_no_first_output(**overrides) -> AdamModel:
    """Table 4's model (e): no first output block; the memory's mask comes from the fine alpha."""
    return build_adam(replace(ADAM_MNV2, first_outputs="none", **overrides))


def adam_small(**overrides) -> AdamModel:
    """The CPU-trainable configuration of the shipped weights."""
    return build_adam(replace(ADAM_SMALL, **overrides))


def adam_tiny(**overrides) -> AdamModel:
    """A tiny configuration for tests."""
    return build_adam(replace(ADAM_TINY, **overrides))
