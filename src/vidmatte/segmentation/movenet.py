"""MoveNet MultiPose Lightning (Google, TF Hub, Apache-2.0): a person detector rebuilt in PyTorch.

The network is a MobileNetV2 of width 1.5 (batch norms folded into the convolutions' biases), a
feature pyramid that brings its 1/32 features back to 1/4 with the 1/16, 1/8 and 1/4 ones, and six
CenterNet heads (person centres, box sizes and offsets, keypoint heatmaps, regressions and offsets);
:mod:`vidmatte.segmentation.movenet_decoding` turns them into six people with 17 COCO keypoints
(nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles), a box and a score each. The
backbone's blocks are numbered as the graph's (``blocks.13`` is its ``block_13``, ``blocks.0`` its
``expanded_conv``), so that ``scripts/convert_movenet.py`` maps the TensorFlow.js weights one to
one; convolutions pad as TensorFlow's ``"SAME"``, which puts the extra row and column of a
stride-2 convolution at the bottom and right.

With the shipped weights (``weights/movenet_multipose.safetensors``, the graph's own float16
values) the outputs match the original graph's, run by TensorFlow, within 1e-4 (measured: 6e-6) of
the input size on keypoints and boxes and 1e-4 on scores (``tests/test_movenet.py``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidmatte.errors import VidmatteError
from vidmatte.models.backbones.mobilenetv2 import LAST_CHANNELS, STAGE_SETTINGS, STEM_CHANNELS, make_divisible
from vidmatte.models.loading import WEIGHTS_FOLDER, load_weights_into
from vidmatte.segmentation.movenet_decoding import NUM_KEYPOINTS, NUM_PEOPLE, MoveNetHeads, decode_poses

MODEL_NAME = "movenet-multipose"
WEIGHTS_PATH = WEIGHTS_FOLDER / "movenet_multipose.safetensors"
WIDTH_MULTIPLIER = 1.5
INPUT_MULTIPLE = 32  # the backbone's stride: input sides must be multiples of it
INPUT_SCALE = 0.007843017578125  # 1 / 127.5 as the graph stores it (float16): pixels -> [-1, 1]
# The stages whose outputs feed the pyramid (1/4, 1/8, 1/16; the last conv gives 1/32).
PYRAMID_STAGES = (1, 2, 3)
PYRAMID_CHANNELS = (24, 32, 64)  # at 1/4, 1/8, 1/16 (and 64 again at 1/32)
HEAD_HIDDEN = 96
HEAD_CHANNELS = {
    "center": 1,
    "box_scale": 2,
    "box_offset": 2,
    "keypoint_heatmap": NUM_KEYPOINTS,
    "keypoint_regression": 2 * NUM_KEYPOINTS,
    "keypoint_offset": 2 * NUM_KEYPOINTS,
}


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a bias and TensorFlow's ``"SAME"`` padding (odd kernels, stride 1 or 2).

    For stride 2 on an even size TensorFlow pads one row and column after the image and none before,
    unlike ``padding=1``; the input's sides must be even then.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, groups: int = 1
    ) -> None:
        padding = (kernel_size - 1) // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H / stride, W / stride)``."""
        if self.stride[0] > 1:
            extra = self.kernel_size[0] - self.stride[0]
            x = F.pad(x, (extra // 2, extra - extra // 2, extra // 2, extra - extra // 2))
        return super().forward(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand (1x1, ReLU6), depthwise 3x3 (ReLU6), project (1x1, linear), + input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = SameConv2d(in_channels, hidden) if expansion != 1 else None
        self.depthwise = SameConv2d(hidden, hidden, 3, stride, groups=hidden)
        self.project = SameConv2d(hidden, out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H / stride, W / stride)``."""
        y = x if self.expand is None else F.relu6(self.expand(x))
        y = self.project(F.relu6(self.depthwise(y)))
        return x + y if self.residual else y


class MobileNetV2Features(nn.Module):
    """MobileNetV2 of width 1.5 with folded batch norms: features at 1/4, 1/8, 1/16 and 1/32."""

    def __init__(self) -> None:
        super().__init__()
        channels = make_divisible(STEM_CHANNELS * WIDTH_MULTIPLIER)
        self.stem = SameConv2d(3, channels, 3, stride=2)
        blocks: list[nn.Module] = []
        self.stage_ends: list[int] = []  # index of each stage's last block
        self.channels: list[int] = []
        for expansion, out, repeats, stride in STAGE_SETTINGS:
            out_channels = make_divisible(out * WIDTH_MULTIPLIER)
            for repeat in range(repeats):
                blocks.append(
                    InvertedResidual(channels, out_channels, stride if repeat == 0 else 1, expansion)
                )
                channels = out_channels
            self.stage_ends.append(len(blocks) - 1)
            self.channels.append(out_channels)
        self.blocks = nn.ModuleList(blocks)
        self.last = SameConv2d(channels, LAST_CHANNELS)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(B, 3, H, W)`` in [-1, 1] -> features at 1/4 (40 ch), 1/8 (48), 1/16 (96), 1/32 (1280)."""
        taps = {self.stage_ends[stage] for stage in PYRAMID_STAGES}
        x = F.relu6(self.stem(x))
        features = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in taps:
                features.append(x)
        return features[0], features[1], features[2], F.relu6(self.last(x))


class SeparableConv(nn.Module):
    """Depthwise 3x3 (no bias) -> pointwise 1x1 (bias) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``, non-negative."""
        return F.relu(self.pointwise(self.depthwise(x)))


class FeaturePyramid(nn.Module):
    """Top-down pathway from 1/32 to 1/4: upsample x2 (bilinear), add a 1x1 lateral, separable conv."""

    def __init__(self, backbone_channels: tuple[int, int, int, int]) -> None:
        super().__init__()
        c4, c8, c16, c32 = backbone_channels
        p4, p8, p16 = PYRAMID_CHANNELS
        self.top = nn.Conv2d(c32, p16, 1)
        self.lateral16 = nn.Conv2d(c16, p16, 1)
        self.smooth16 = SeparableConv(p16, p8)
        self.lateral8 = nn.Conv2d(c8, p8, 1)
        self.smooth8 = SeparableConv(p8, p4)
        self.lateral4 = nn.Conv2d(c4, p4, 1)
        self.smooth4 = SeparableConv(p4, p4)

    def forward(self, f4: Tensor, f8: Tensor, f16: Tensor, f32: Tensor) -> Tensor:
        """Backbone features -> ``(B, 24, H / 4, W / 4)``."""
        x = self.top(f32)
        for lateral, smooth, skip in (
            (self.lateral16, self.smooth16, f16),
            (self.lateral8, self.smooth8, f8),
            (self.lateral4, self.smooth4, f4),
        ):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False) + lateral(skip)
            x = smooth(x)
        return x


class Head(nn.Module):
    """One CenterNet head: separable conv (24 -> 96, ReLU) then 1x1 to its output channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.hidden = SeparableConv(in_channels, HEAD_HIDDEN)
        self.output = nn.Conv2d(HEAD_HIDDEN, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, h, w)`` -> ``(B, C_out, h, w)`` raw."""
        return self.output(self.hidden(x))


class MoveNetMultiPose(nn.Module):
    """MoveNet MultiPose Lightning: up to six people, 17 keypoints, a box and a score each.

    Build it with :func:`load_person_detector` (the shipped weights); on a whole image use
    :func:`detect_people`, which resizes and maps the results back to the image's pixels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.backbone = MobileNetV2Features()
        channels = tuple(self.backbone.channels[stage] for stage in PYRAMID_STAGES)
        self.pyramid = FeaturePyramid((*channels, LAST_CHANNELS))
        self.heads = nn.ModuleDict(
            {name: Head(PYRAMID_CHANNELS[0], out) for name, out in HEAD_CHANNELS.items()}
        )

    def head_maps(self, images: Tensor) -> MoveNetHeads:
        """The raw head maps.

        Args:
            images: ``(B, 3, H, W)`` float RGB in [0, 255], ``H`` and ``W`` multiples of 32.

        Returns:
            :class:`MoveNetHeads` of ``(B, C, H / 4, W / 4)`` maps.
        """
        height, width = images.shape[-2:]
        if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
            raise ValueError(f"input {width}x{height}: sides must be multiples of {INPUT_MULTIPLE}")
        features = self.pyramid(*self.backbone(images * INPUT_SCALE - 1.0))
        return MoveNetHeads(**{name: head(features) for name, head in self.heads.items()})

    def forward(self, images: Tensor) -> Tensor:
        """The original graph's output.

        Args:
            images: ``(B, 3, H, W)`` float RGB in [0, 255], ``H`` and ``W`` multiples of 32.

        Returns:
            ``(B, 6, 56)``: per person 17 x (y, x, score), then ymin, xmin, ymax, xmax, score, positions
            normalised to the input (see :func:`~vidmatte.segmentation.movenet_decoding.decode_poses`).
        """
        return decode_poses(self.head_maps(images), (images.shape[-2], images.shape[-1]))


@dataclass(frozen=True)
class PersonDetections:
    """People found in one image, in decreasing order of score (at most six).

    Attributes:
        boxes: ``(N, 4)`` float32 x0, y0, x1, y1 in pixels of the image, clipped to it.
        keypoints: ``(N, 17, 3)`` float32 x, y in pixels and score in [0, 1], COCO order.
        scores: ``(N,)`` float32 in [0, 1].
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def load_person_detector(
    device: str | torch.device = "cpu", weights: str | os.PathLike = WEIGHTS_PATH
) -> MoveNetMultiPose:
    """MoveNet MultiPose with the shipped weights (or ``weights``), in evaluation mode on ``device``.

    Raises:
        VidmatteError: a missing, unreadable or mismatched weights file, named in the message.
    """
    model = load_weights_into(MoveNetMultiPose(), weights, expected_model=MODEL_NAME)
    return model.to(device).eval()


def network_size(height: int, width: int, input_width: int) -> tuple[int, int, int]:
    """``(resized_height, network_height, network_width)`` for an image of ``height x width``.

    The image is scaled to ``network_width`` (``input_width`` rounded up to a multiple of 32) and
    padded at the bottom to ``network_height``, the next multiple of 32.
    """
    network_width = max(INPUT_MULTIPLE, math.ceil(input_width / INPUT_MULTIPLE) * INPUT_MULTIPLE)
    resized_height = max(1, round(height * network_width / width))
    network_height = math.ceil(resized_height / INPUT_MULTIPLE) * INPUT_MULTIPLE
    return resized_height, network_height, network_width


@torch.no_grad()
def detect_people(
    model: MoveNetMultiPose, image: np.ndarray, min_score: float = 0.2, input_width: int = 768
) -> PersonDetections:
    """Find up to six people in an RGB image.

    Args:
        model: from :func:`load_person_detector`.
        image: ``(H, W, 3)`` uint8 RGB, any size.
        min_score: people scoring below it are dropped.
        input_width: the network's input width (rounded up to a multiple of 32); the image is
            scaled to it (antialiased bilinear) and padded at the bottom to a multiple of 32. The
            network finds people best when they are up to about a third of its input high: 768 suits
            pedestrians in a 768x576 street scene, a close-up wants 256-384.

    Returns:
        :class:`PersonDetections` in the image's pixels, people scoring at least ``min_score``.

    Raises:
        VidmatteError: ``image`` is not ``(H, W, 3)`` uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) == 0:
        raise VidmatteError(f"image: expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    resized_height, network_height, network_width = network_size(height, width, input_width)
    device = next(model.parameters()).device
    x = torch.tensor(image, device=device).permute(2, 0, 1)[None].float()
    if (resized_height, network_width) != (height, width):
        x = F.interpolate(
            x, (resized_height, network_width), mode="bilinear", align_corners=False, antialias=True
        )
    x = F.pad(x, (0, 0, 0, network_height - resized_height))
    people = model(x)[0].cpu().numpy()  # (6, 56), normalised to the padded input
    # normalised y of the padded input -> image pixels: x (network_height / resized_height) x height
    scale_y = network_height / resized_height * height
    keypoints = people[:, : 3 * NUM_KEYPOINTS].reshape(NUM_PEOPLE, NUM_KEYPOINTS, 3)
    keypoints = np.stack([keypoints[..., 1] * width, keypoints[..., 0] * scale_y, keypoints[..., 2]], axis=-1)
    ymin, xmin, ymax, xmax = people[:, 3 * NUM_KEYPOINTS : 3 * NUM_KEYPOINTS + 4].T
    boxes = np.stack([xmin * width, ymin * scale_y, xmax * width, ymax * scale_y], axis=-1)
    boxes = np.clip(boxes, 0.0, [width, height, width, height])
    scores = people[:, -1]
    keep = np.flatnonzero(scores >= min_score)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    return PersonDetections(
        boxes=boxes[keep].astype(np.float32),
        keypoints=keypoints[keep].astype(np.float32),
        scores=scores[keep].astype(np.float32),
    )
