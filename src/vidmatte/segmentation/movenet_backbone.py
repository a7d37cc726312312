"""MoveNet's MobileNetV2 (width 1.5, trained on COCO people) as the starting point of AdaM's backbone.

The shipped person detector (:mod:`vidmatte.segmentation.movenet`) holds a MobileNetV2 of width 1.5
whose batch norms are folded into its convolutions' biases. :func:`load_movenet_mobilenetv2` copies
it into a :class:`~vidmatte.models.backbones.mobilenetv2.MobileNetV2` of the same width and unfolds
the batch norms again: it runs the detector's backbone on calibration images, records each
convolution's output mean and variance, and sets every batch norm so that, in evaluation mode, it
adds back exactly the folded bias (``gamma = sqrt(var + eps)``, ``beta = bias + mean``) while
normalising with statistics that a training batch will see again. The detector reads pixels scaled
to [-1, 1] and AdaM's backbone reads ImageNet-normalised ones, so the stem's weights and bias absorb
the change of input scale. What differs from the detector is padding (TensorFlow's ``"SAME"`` against
symmetric) and the dilated last stages, which change strides, not weights.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidmatte.errors import VidmatteError
from vidmatte.models.adam.encoder import IMAGENET_MEAN, IMAGENET_STD
from vidmatte.models.backbones.imagenet import BackboneLoadReport
from vidmatte.models.backbones.mobilenetv2 import ConvBNReLU6, InvertedResidual, MobileNetV2
from vidmatte.segmentation.movenet import WIDTH_MULTIPLIER, load_person_detector

MOVENET = "movenet"  # the ``backbone_init`` value that names this starting point


def _imagenet_mean_std() -> tuple[Tensor, Tensor]:
    """AdaM's input normalisation, as :class:`~vidmatte.models.adam.encoder.AdamEncoder`'s."""
    return torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _pairs(backbone: MobileNetV2, detector: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]]:
    """``(conv, its batch norm, the detector's folded conv)`` for every convolution, in order."""
    ours: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = [(backbone.stem[0], backbone.stem[1])]
    theirs: list[nn.Conv2d] = [detector.stem]
    blocks = [block for stage in backbone.stages for block in stage]
    if len(blocks) != len(detector.blocks):
        raise VidmatteError(f"MoveNet has {len(detector.blocks)} blocks, the backbone {len(blocks)}")
    for block, folded in zip(blocks, detector.blocks, strict=True):
        assert isinstance(block, InvertedResidual)
        layers = list(block.block)
        convs = [(layer[0], layer[1]) for layer in layers if isinstance(layer, ConvBNReLU6)]
        ours += [*convs, (layers[-2], layers[-1])]
        theirs += [conv for conv in (folded.expand, folded.depthwise, folded.project) if conv is not None]
    ours.append((backbone.head[0], backbone.head[1]))
    theirs.append(detector.last)
    return [(conv, norm, source) for (conv, norm), source in zip(ours, theirs, strict=True)]


def load_movenet_mobilenetv2(backbone: MobileNetV2, calibration: Tensor) -> BackboneLoadReport:
    """Copy the shipped MoveNet's MobileNetV2 into ``backbone`` and unfold its batch norms.

    Args:
        backbone: a MobileNetV2 of width 1.5 with 1280 last channels (``adam-mnv2-w15``'s).
        calibration: ``(N, 3, H, W)`` float RGB in [0, 1], ``H`` and ``W`` multiples of 32: real
            photographs whose convolution statistics set the batch norms.

    Raises:
        VidmatteError: a backbone of another width.
    """
    detector = load_person_detector().backbone
    pairs = _pairs(backbone, detector)
    for conv, _, source in pairs:
        if conv.weight.shape != source.weight.shape:
            raise VidmatteError(
                f"MoveNet's backbone has width {WIDTH_MULTIPLIER}: its {tuple(source.weight.shape)} "
                f"weights do not fit a {tuple(conv.weight.shape)} convolution (use adam-mnv2-w15)"
            )
    mean, std = _imagenet_mean_std()
    with torch.no_grad():
        for index, (conv, norm, source) in enumerate(pairs):
            weight, bias = source.weight.float(), source.bias.float()
            if index == 0:  # [-1, 1] = 2 * (std * x + mean) - 1 for an ImageNet-normalised x
                bias = bias + (weight * (2 * mean - 1)).sum(dim=(1, 2, 3))
                weight = weight * 2 * std
            conv.weight.copy_(weight)
            norm.weight.fill_(1.0)
            norm.bias.copy_(bias)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)  # the identity: the folded network as it was
        statistics = _convolution_statistics(backbone, [norm for _, norm, _ in pairs], calibration)
        for (_, norm, _), (channel_mean, channel_var) in zip(pairs, statistics, strict=True):
            norm.running_mean.copy_(channel_mean)
            norm.running_var.copy_(channel_var)
            norm.weight.copy_(torch.sqrt(channel_var + norm.eps))
            norm.bias.add_(channel_mean)
    loaded = tuple(backbone.state_dict())
    return BackboneLoadReport(loaded, ("pyramid and heads of MoveNet",))


def _convolution_statistics(
    backbone: MobileNetV2, norms: list[nn.BatchNorm2d], calibration: Tensor
) -> list[tuple[Tensor, Tensor]]:
    """Per-channel mean and variance of each batch norm's input over ``calibration``."""
    moments: dict[nn.Module, list[tuple[Tensor, Tensor]]] = {norm: [] for norm in norms}

    def record(module: nn.Module, inputs: tuple[Tensor, ...], _: Tensor) -> None:
        x = inputs[0].double()
        moments[module].append((x.mean(dim=(0, 2, 3)), (x * x).mean(dim=(0, 2, 3))))

    hooks = [norm.register_forward_hook(record) for norm in norms]
    was_training = backbone.training
    backbone.eval()
    try:
        mean, std = _imagenet_mean_std()
        for image in calibration:
            backbone((image[None] - mean) / std)
    finally:
        for hook in hooks:
            hook.remove()
        backbone.train(was_training)
    result = []
    for norm in norms:
        first, second = (torch.stack(moment).mean(0) for moment in zip(*moments[norm], strict=True))
        result.append((first.float(), (second - first * first).clamp_min(1e-6).float()))
    return result


def calibration_images(size: int = 256) -> Tensor:
    """scikit-image's sample photographs (people, animals, objects), ``(N, 3, size, size)`` in [0, 1]."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    images = [torch.from_numpy(np.ascontiguousarray(p)).permute(2, 0, 1).float()[None] / 255 for p in photos]
    return torch.cat([F.interpolate(x, (size, size), mode="bilinear", antialias=True) for x in images])
