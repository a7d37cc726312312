"""VIMQ, the video instance matting quality of "Video Instance Matting" (WACV 2024).

The conventions follow the published evaluation script (``metrics_vim.py`` of the VIM repository)
number for number; only the data flow differs: frames are streamed, so each frame is reduced at once
to small ``(G, P)`` matrices of pairwise statistics (``G`` ground-truth instances, ``P`` predicted
ones), and a clip is scored from those matrices alone.

Per clip:

* **Matching**: the Hungarian algorithm on ``C[g, p] = sum_t sum_pixels |alpha_g - alpha_p|``.
* **RQ** (recognition): a matched pair whose mean per-frame mask IoU (both mattes binarised at
  ``> 0.5``; an empty union scores 0) is ``> rho = 0.5`` is a true positive, otherwise it counts as
  one FP and one FN; unmatched predictions are FPs, unmatched ground truths FNs.
  ``RQ = TP / (TP + FP/2 + FN/2) * mean IoU of the TPs``.
* **TQ** (tracking): each frame is matched again on its own L1 matrix; a TP pair scores 1 at that
  frame if the frame's matching keeps it and 0 otherwise (an identity switch). Mean over TPs, then
  over frames.
* **MQ** (matting): per TP and frame ``S = 1 - min(1, w * xi)`` with ``xi`` the unscaled full-frame
  MSE or MAD (``w = 50``) or dtSSD (``w = 10``; frame 0 scores 1). Mean over frames, then TPs.
* If ``RQ = 0`` then ``TQ = MQ = 0``.

A data set's ``VIMQ = mean(RQ) * mean(TQ) * mean(MQ) * 100`` over its clips (the product of the
means, not the mean of the per-clip products).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
from scipy.optimize import linear_sum_assignment

ERRORS = ("mse", "mad", "dtssd")
ERROR_WEIGHTS: Mapping[str, float] = {"mse": 50.0, "mad": 50.0, "dtssd": 10.0}  # omega of MQ
IOU_THRESHOLD = 0.5  # rho: a matched pair with mean IoU above this is a true positive
BINARY_THRESHOLD = 0.5  # a pixel with alpha above this is foreground for the IoU
REPORT_SCALE = 100.0  # RQ, TQ, MQ and VIMQ are reported in percent


@dataclass(frozen=True)
class FrameStatistics:
    """All pairwise statistics of one frame that VIMQ needs; every array is ``(G, P)`` float64.

    Attributes:
        l1: ``sum |g - p|`` over the frame's pixels (the matching cost).
        iou: mask IoU of the binarised mattes, in [0, 1]; 0 where the union is empty.
        mse: ``mean (g - p)^2``, unscaled, in [0, 1].
        mad: ``mean |g - p|``, unscaled, in [0, 1].
        dtssd: ``sqrt(mean(((p_t - p_{t-1}) - (g_t - g_{t-1}))^2))``, unscaled; ``None`` at a clip's
            first frame (or when dtSSD is not wanted).
    """

    l1: np.ndarray
    iou: np.ndarray
    mse: np.ndarray
    mad: np.ndarray
    dtssd: np.ndarray | None = None


def frame_statistics(
    true: np.ndarray,
    pred: np.ndarray,
    true_prev: np.ndarray | None = None,
    pred_prev: np.ndarray | None = None,
) -> FrameStatistics:
    """Reduce one frame of every ground-truth and predicted instance to pairwise statistics.

    Args:
        true: ``(G, H, W)`` float32 in [0, 1], the ground-truth mattes of the frame.
        pred: ``(P, H, W)`` float32 in [0, 1], the predicted mattes of the frame.
        true_prev: ``(G, H, W)``, the previous frame's ground truth, for dtSSD; ``None`` at frame 0.
        pred_prev: ``(P, H, W)``, the previous frame's prediction, for dtSSD.

    Returns:
        The frame's statistics; ``dtssd`` is ``None`` unless both previous frames are given.

    >>> g = np.array([[[0.0, 1.0]]], np.float32)
    >>> s = frame_statistics(g, np.array([[[0.0, 1.0]], [[1.0, 0.0]]], np.float32))
    >>> s.l1.tolist(), s.iou.tolist(), s.mse.tolist()
    ([[0.0, 2.0]], [[1.0, 0.0]], [[0.0, 1.0]])
    """
    if true.shape[1:] != pred.shape[1:]:
        raise ValueError(f"frame sizes differ: {true.shape[1:]} and {pred.shape[1:]}")
    pixels = true.shape[1] * true.shape[2]
    with_dtssd = true_prev is not None and pred_prev is not None

    def flat(stack: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(stack, dtype=np.float32).reshape(stack.shape[0], pixels)

    l1, squared, change, intersection, union = _pairwise_sums(
        flat(true),
        flat(pred),
        flat(true_prev) if with_dtssd else flat(true),
        flat(pred_prev) if with_dtssd else flat(pred),
        with_dtssd,
    )
    return FrameStatistics(
        l1=l1,
        iou=np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0),
        mse=squared / pixels,
        mad=l1 / pixels,
        dtssd=np.sqrt(change / pixels) if with_dtssd else None,
    )


@numba.njit(cache=True)
def _pairwise_sums(
    true: np.ndarray, pred: np.ndarray, true_prev: np.ndarray, pred_prev: np.ndarray, with_dtssd: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One pass over the pixels of every (ground truth, prediction) pair of ``(G, N)`` and ``(P, N)`` rows.

    Returns ``(G, P)`` float64 sums: ``|d|``, ``d^2``, ``(d - d_prev)^2`` (0 without dtSSD), with
    ``d = p - g``, and the intersection and union counts of the binarised mattes.
    """
    num_true, num_pred, pixels = true.shape[0], pred.shape[0], true.shape[1]
    l1 = np.zeros((num_true, num_pred))
    squared = np.zeros((num_true, num_pred))
    change = np.zeros((num_true, num_pred))
    intersection = np.zeros((num_true, num_pred))
    union = np.zeros((num_true, num_pred))
    for g in range(num_true):
        for p in range(num_pred):
            sum_abs = sum_sq = sum_change = 0.0
            both = either = 0
            for i in range(pixels):
                diff = np.float64(pred[p, i]) - np.float64(true[g, i])
                sum_abs += abs(diff)
                sum_sq += diff * diff
                if with_dtssd:
                    step = diff - (np.float64(pred_prev[p, i]) - np.float64(true_prev[g, i]))
                    sum_change += step * step
                true_fg = true[g, i] > BINARY_THRESHOLD
                pred_fg = pred[p, i] > BINARY_THRESHOLD
                both += true_fg and pred_fg
                either += true_fg or pred_fg
            l1[g, p], squared[g, p], change[g, p] = sum_abs, sum_sq, sum_change
            intersection[g, p], union[g, p] = both, either
    return l1, squared, change, intersection, union


@dataclass(frozen=True)
class ClipScore:
    """VIMQ components of one clip, as fractions in [0, 1].

    Attributes:
        rq: recognition quality.
        tq: tracking quality.
        mq: matting quality per error name (``"mse"``, ``"mad"``, ``"dtssd"``).
        matches: the clip-level ``(ground-truth index, predicted index)`` pairs that are TPs.
        true_positives, false_positives, false_negatives: the counts behind RQ.
    """

    rq: float
    tq: float
    mq: dict[str, float]
    matches: list[tuple[int, int]] = field(default_factory=list)
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    def vimq(self, error: str) -> float:
        """The clip's own product ``RQ * TQ * MQ_error`` (a data set's VIMQ is not their mean)."""
        return self.rq * self.tq * self.mq[error]


def score_clip(
    frames: Sequence[FrameStatistics],
    errors: Sequence[str] = ERRORS,
    weights: Mapping[str, float] = ERROR_WEIGHTS,
    iou_threshold: float = IOU_THRESHOLD,
) -> ClipScore:
    """Score one clip from its frames' statistics (see the module docstring for the formulas).

    Args:
        frames: one :class:`FrameStatistics` per frame, in time order, all with the same ``(G, P)``.
        errors: the matting errors to score MQ with; ``"dtssd"`` needs ``dtssd`` on frames 1 onwards.
        weights: omega per error.
        iou_threshold: rho.

    Returns:
        The clip's RQ, TQ and MQ per error.

    Raises:
        ValueError: no frame, or a frame without dtSSD when ``"dtssd"`` is asked for.
    """
    if not frames:
        raise ValueError("a clip needs at least one frame")
    num_true, num_pred = frames[0].l1.shape
    rows, cols = linear_sum_assignment(np.sum([f.l1 for f in frames], axis=0))
    false_positives = max(num_pred - num_true, 0)
    false_negatives = max(num_true - num_pred, 0)
    matches, ious = [], []
    for g, p in zip(rows.tolist(), cols.tolist(), strict=True):
        mean_iou = float(np.mean([f.iou[g, p] for f in frames]))
        if mean_iou > iou_threshold:
            matches.append((g, p))
            ious.append(mean_iou)
        else:
            false_positives += 1
            false_negatives += 1
    true_positives = len(matches)
    denominator = true_positives + 0.5 * (false_positives + false_negatives)
    rq = true_positives / denominator * float(np.mean(ious)) if true_positives else 0.0
    if rq == 0.0:
        return ClipScore(0.0, 0.0, dict.fromkeys(errors, 0.0), [], 0, false_positives, false_negatives)
    return ClipScore(
        rq=rq,
        tq=_tracking_quality(frames, matches),
        mq={error: _matting_quality(frames, matches, error, weights[error]) for error in errors},
        matches=matches,
        true_positives=true_positives,
        false_positives=false_positives,
        false_negatives=false_negatives,
    )


def _tracking_quality(frames: Sequence[FrameStatistics], matches: list[tuple[int, int]]) -> float:
    """Share of (TP, frame) pairs that the frame's own Hungarian matching keeps."""
    per_frame = []
    for frame in frames:
        rows, cols = linear_sum_assignment(frame.l1)
        kept = dict(zip(rows.tolist(), cols.tolist(), strict=True))
        per_frame.append(np.mean([kept.get(g) == p for g, p in matches]))
    return float(np.mean(per_frame))


def _matting_quality(
    frames: Sequence[FrameStatistics], matches: list[tuple[int, int]], error: str, weight: float
) -> float:
    """Mean over TPs of the mean over frames of ``1 - min(1, weight * xi)``."""
    if error not in ERRORS:
        raise ValueError(f"unknown error {error!r}; known: {', '.join(ERRORS)}")
    per_match = []
    for g, p in matches:
        scores = []
        for t, frame in enumerate(frames):
            if error == "dtssd" and t == 0:
                scores.append(1.0)
                continue
            matrix = getattr(frame, error)
            if matrix is None:
                raise ValueError(f"frame {t} has no {error} statistics")
            scores.append(1.0 - min(1.0, weight * float(matrix[g, p])))
        per_match.append(np.mean(scores))
    return float(np.mean(per_match))


def score_dataset(clips: Sequence[ClipScore], errors: Sequence[str] = ERRORS) -> dict[str, float]:
    """Aggregate clips: means of RQ, TQ and MQ, and ``VIMQ = mean(RQ) * mean(TQ) * mean(MQ)``.

    Returns:
        ``{"RQ", "TQ", "MQ_<error>", "VIMQ_<error>"}``, all in percent (x 100).

    >>> score_dataset([ClipScore(1.0, 1.0, {"mse": 0.5}), ClipScore(0.5, 1.0, {"mse": 1.0})], ["mse"])
    {'RQ': 75.0, 'TQ': 100.0, 'MQ_mse': 75.0, 'VIMQ_mse': 56.25}
    """
    if not clips:
        raise ValueError("no clip to aggregate")
    rq = float(np.mean([c.rq for c in clips]))
    tq = float(np.mean([c.tq for c in clips]))
    result = {"RQ": rq * REPORT_SCALE, "TQ": tq * REPORT_SCALE}
    for error in errors:
        mq = float(np.mean([c.mq[error] for c in clips]))
        result[f"MQ_{error}"] = mq * REPORT_SCALE
        result[f"VIMQ_{error}"] = rq * tq * mq * REPORT_SCALE
    return result
