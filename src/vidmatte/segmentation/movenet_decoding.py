"""MoveNet MultiPose's post-processing: from its CenterNet head maps to six people with 17 keypoints.

This is the decoding that the original TensorFlow.js graph (MoveNet MultiPose Lightning, TF Hub)
runs after its heads, written op for op from that graph so that the result matches it:

1. Person centres: the sigmoid of the centre map, kept where it equals its 5x5 max-pool (a local
   peak), the six highest (ties to the lower row-major index, as TensorFlow's ``TopKV2``).
2. At each centre: a box from the size map (clamped at 0) and the offset map, clipped to the map;
   17 regressed keypoints, centre + regression vector.
3. Each keypoint is refined to the peak of the sigmoid keypoint heatmap, weighted by a Gaussian
   ``exp(-d^2 / (0.3 * min(h, w)))`` of the distance ``d`` (in map cells) to the regressed keypoint
   and masked to the person's box; its position is that cell + the keypoint offset map; its score is
   the highest weighted heatmap value of any of the six people at that cell.
4. Person score: centre score x mean of the keypoint scores above 0.127 (0 when none is).

Map cells are 4 input pixels (the heads' stride); outputs are normalised by the input's height and
width. The constants are the float16 values that the graph stores.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

NUM_PEOPLE = 6
NUM_KEYPOINTS = 17
HEAD_STRIDE = 4  # input pixels per map cell
OUTPUT_WIDTH = NUM_KEYPOINTS * 3 + 5  # 17 x (y, x, score), box (ymin, xmin, ymax, xmax), score
PEAK_WINDOW = 5  # max-pool window of the centre peaks
PEAK_TOLERANCE = 1.0132789611816406e-06  # |centre - max-pool| below this is a peak (1e-6 in float16)
GAUSSIAN_SCALE = 0.300048828125  # of min(h, w); 0.3 in float16
KEYPOINT_THRESHOLD = 0.126953125  # keypoints above it count towards the person's score


class MoveNetHeads(NamedTuple):
    """The six head maps of MoveNet MultiPose, raw (before any sigmoid), at 1/4 of the input.

    Channel pairs are (y, x) in map cells.
    """

    center: Tensor  # (B, 1, h, w) person-centre logits
    box_scale: Tensor  # (B, 2, h, w) box height and width
    box_offset: Tensor  # (B, 2, h, w) box centre offset from the cell
    keypoint_heatmap: Tensor  # (B, 17, h, w) keypoint logits
    keypoint_regression: Tensor  # (B, 34, h, w) keypoint vector from a person's centre, 17 x (y, x)
    keypoint_offset: Tensor  # (B, 34, h, w) keypoint offset from the cell, 17 x (y, x)


def gather_cells(maps: Tensor, rows: Tensor, columns: Tensor) -> Tensor:
    """Values of ``maps`` ``(B, C, h, w)`` at cells ``rows``, ``columns`` ``(B, N)`` long -> ``(B, N, C)``."""
    batch, channels, _, width = maps.shape
    index = (rows * width + columns)[:, None, :].expand(batch, channels, -1)
    return maps.flatten(2).gather(2, index).transpose(1, 2)


def person_centres(center_logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The six highest local peaks of the centre map.

    Args:
        center_logits: ``(B, 1, h, w)``.

    Returns:
        ``(scores, rows, columns)``, each ``(B, 6)``: sigmoid scores in [0, 1], descending, and cells (long).
    """
    center = torch.sigmoid(center_logits)
    pooled = F.max_pool2d(center, PEAK_WINDOW, stride=1, padding=PEAK_WINDOW // 2)
    peaks = center * ((center - pooled).abs() < PEAK_TOLERANCE)
    scores, index = torch.sort(peaks.flatten(1), dim=1, descending=True, stable=True)
    width = center.shape[-1]
    index = index[:, :NUM_PEOPLE]
    return scores[:, :NUM_PEOPLE], index // width, index % width


def person_boxes(heads: MoveNetHeads, rows: Tensor, columns: Tensor) -> Tensor:
    """Boxes of the people centred at ``rows``, ``columns`` ``(B, 6)``.

    Returns:
        ``(B, 6, 4)`` ymin, xmin, ymax, xmax in map cells, clipped to ``[0, h]`` and ``[0, w]``.
    """
    height, width = heads.center.shape[-2:]
    size = gather_cells(heads.box_scale, rows, columns).clamp(min=0.0)
    offset = gather_cells(heads.box_offset, rows, columns)
    centre_y = rows.to(size.dtype) + offset[..., 0]
    centre_x = columns.to(size.dtype) + offset[..., 1]
    half_height, half_width = size[..., 0] * 0.5, size[..., 1] * 0.5
    return torch.stack(
        [
            (centre_y - half_height).clamp(0.0, height),
            (centre_x - half_width).clamp(0.0, width),
            (centre_y + half_height).clamp(0.0, height),
            (centre_x + half_width).clamp(0.0, width),
        ],
        dim=-1,
    )


def refine_keypoints(
    heads: MoveNetHeads, rows: Tensor, columns: Tensor, boxes: Tensor
) -> tuple[Tensor, Tensor]:
    """Keypoints of the people centred at ``rows``, ``columns``, refined on the keypoint heatmap.

    Args:
        heads: the head maps, ``(B, C, h, w)``.
        rows, columns: ``(B, 6)`` long, the people's centre cells.
        boxes: ``(B, 6, 4)`` their boxes in map cells (see :func:`person_boxes`).

    Returns:
        ``(positions, scores)``: ``(B, 6, 17, 2)`` (y, x) in map cells and ``(B, 6, 17)`` in [0, 1].
    """
    batch, _, height, width = heads.center.shape
    regression = gather_cells(heads.keypoint_regression, rows, columns).unflatten(-1, (NUM_KEYPOINTS, 2))
    regressed_y = rows[..., None].to(regression.dtype) + regression[..., 0]  # (B, 6, 17)
    regressed_x = columns[..., None].to(regression.dtype) + regression[..., 1]
    grid_y = torch.arange(height, device=rows.device, dtype=regression.dtype)[:, None]
    grid_x = torch.arange(width, device=rows.device, dtype=regression.dtype)[None, :]
    # (B, 6, 17, h, w): squared distance of every cell to every regressed keypoint
    distance = (grid_y - regressed_y[..., None, None]) ** 2 + (grid_x - regressed_x[..., None, None]) ** 2
    weight = torch.exp(-distance / (min(height, width) * GAUSSIAN_SCALE))
    ymin, xmin, ymax, xmax = (boxes[..., i, None, None] for i in range(4))  # (B, 6, 1, 1)
    inside = (grid_y >= ymin) & (grid_y < ymax) & (grid_x >= xmin) & (grid_x < xmax)  # (B, 6, h, w)
    heatmap = torch.sigmoid(heads.keypoint_heatmap)[:, None]  # (B, 1, 17, h, w)
    weighted = heatmap * weight * inside[:, :, None].to(weight.dtype)
    cells = weighted.flatten(3).argmax(dim=3)  # (B, 6, 17), first maximum in row-major order
    best = weighted.amax(dim=1).flatten(2)  # (B, 17, h * w): the best of the six people per cell
    keypoint_index = torch.arange(NUM_KEYPOINTS, device=rows.device)
    offsets = heads.keypoint_offset.unflatten(1, (NUM_KEYPOINTS, 2)).flatten(3)  # (B, 17, 2, h * w)
    offset = offsets[torch.arange(batch, device=rows.device)[:, None, None], keypoint_index, :, cells]
    scores = best[torch.arange(batch, device=rows.device)[:, None, None], keypoint_index, cells]
    positions = torch.stack([cells // width, cells % width], dim=-1).to(offset.dtype) + offset
    return positions, scores


def decode_poses(heads: MoveNetHeads, input_size: tuple[int, int]) -> Tensor:
    """The graph's output: six people, each 17 keypoints, a box and a score.

    Args:
        heads: the head maps ``(B, C, h, w)`` with ``h, w = H / 4, W / 4``.
        input_size: ``(H, W)`` of the network's input.

    Returns:
        ``(B, 6, 56)`` float: per person 17 x (y, x, score), then ymin, xmin, ymax, xmax, score;
        positions in [0, 1] of the input (keypoints may fall slightly outside), people in
        decreasing order of centre score (not of the final score).
    """
    input_height, input_width = input_size
    centre_scores, rows, columns = person_centres(heads.center)
    boxes = person_boxes(heads, rows, columns)
    positions, keypoint_scores = refine_keypoints(heads, rows, columns, boxes)
    # the graph scales by (4 / H, 4 / W) for keypoints but divides (boxes x 4) by (H, W, H, W)
    keypoint_scale = positions.new_tensor([HEAD_STRIDE / input_height, HEAD_STRIDE / input_width])
    keypoints = positions * keypoint_scale
    box_scale = boxes.new_tensor([input_height, input_width, input_height, input_width])
    normalised_boxes = (boxes * HEAD_STRIDE / box_scale).clamp(0.0, 1.0)
    counted = keypoint_scores > KEYPOINT_THRESHOLD
    total = (centre_scores[..., None] * torch.where(counted, keypoint_scores, 0.0)).sum(-1)
    person_scores = total * (1.0 / counted.sum(-1).clamp(min=1).to(total.dtype))  # the graph's reciprocal
    return torch.cat(
        [
            torch.cat([keypoints, keypoint_scores[..., None]], dim=-1).flatten(2),
            normalised_boxes,
            person_scores[..., None],
        ],
        dim=-1,
    )
