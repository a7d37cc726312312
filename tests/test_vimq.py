"""VIMQ maths on hand-built clips whose scores follow from the formulas by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from vidmatte.metrics.vimq import ERRORS, ClipScore, frame_statistics, score_clip, score_dataset

H, W = 12, 16


def _box(top: int, left: int, value: float = 1.0) -> np.ndarray:
    """A ``(H, W)`` matte with a 4x4 square of ``value`` at ``(top, left)``, soft 0.5 ring around it."""
    alpha = np.zeros((H, W), np.float32)
    alpha[max(top - 1, 0) : top + 5, max(left - 1, 0) : left + 5] = 0.25
    alpha[top : top + 4, left : left + 4] = value
    return alpha


def _clip(instances: list[list[np.ndarray]]) -> np.ndarray:
    """``instances[i][t]`` -> ``(T, N, H, W)``."""
    return np.stack([np.stack(frames) for frames in instances], axis=1)


def _score(true: np.ndarray, pred: np.ndarray, errors=ERRORS) -> ClipScore:
    """Stream ``(T, G, H, W)`` and ``(T, P, H, W)`` clips frame by frame into :func:`score_clip`."""
    stats = [
        frame_statistics(true[t], pred[t], true[t - 1] if t else None, pred[t - 1] if t else None)
        for t in range(true.shape[0])
    ]
    return score_clip(stats, errors)


def _three_people(frames: int) -> np.ndarray:
    return _clip([[_box(1, 1 + t % 3) for t in range(frames)], [_box(6, 8)] * frames, [_box(1, 11)] * frames])


def test_perfect_prediction_scores_100():
    true = _three_people(4)
    score = _score(true, true.copy())
    assert (score.rq, score.tq) == (1.0, 1.0)
    assert score.mq == dict.fromkeys(ERRORS, 1.0)
    assert score.matches == [(0, 0), (1, 1), (2, 2)]
    assert score_dataset([score, score]) == {
        "RQ": 100.0,
        "TQ": 100.0,
        **{f"{kind}_{e}": 100.0 for e in ERRORS for kind in ("MQ", "VIMQ")},
    }


def test_predicted_order_does_not_matter():
    true = _three_people(3)
    score = _score(true, true[:, [2, 0, 1]])
    assert score.rq == 1.0 and score.tq == 1.0
    assert sorted(score.matches) == [(0, 1), (1, 2), (2, 0)]


@pytest.mark.parametrize(("frames", "swapped"), [(5, 1), (8, 3), (10, 2)])
def test_identity_switch_in_k_frames_lowers_tq_by_k_over_t(frames, swapped):
    true = _three_people(frames)
    pred = true.copy()
    pred[:swapped, [0, 1]] = true[:swapped, [1, 0]]  # instances 0 and 1 trade places in k frames
    score = _score(true, pred)
    kept = (frames - swapped) / frames
    # The two swapped pairs keep 0 of k frames, the third all; IoU of the swapped frames is 0.
    assert score.tq == pytest.approx((2 * kept + 1) / 3)
    assert score.rq == pytest.approx((2 * kept + 1) / 3)  # TP = 3, mean IoU of the TPs
    assert score.true_positives == 3


@pytest.mark.parametrize(("true_count", "pred_count"), [(3, 2), (3, 1), (2, 3)])
def test_missing_or_extra_instances_lower_rq_as_the_formula_says(true_count, pred_count):
    people = _three_people(3)
    true = people[:, :true_count]
    pred = people[:, :pred_count]
    score = _score(true, pred)
    tp = min(true_count, pred_count)
    fp, fn = max(pred_count - true_count, 0), max(true_count - pred_count, 0)
    assert (score.true_positives, score.false_positives, score.false_negatives) == (tp, fp, fn)
    assert score.rq == pytest.approx(tp / (tp + fp / 2 + fn / 2))
    assert score.tq == 1.0 and score.mq["mse"] == 1.0


def test_poor_match_counts_one_fp_and_one_fn():
    true = _three_people(2)[:, :2]
    pred = true.copy()
    pred[:, 1] = np.roll(true[:, 1], 3, axis=-1)  # IoU of the shifted 4x4 box: 1/7 < 0.5
    score = _score(true, pred)
    assert (score.true_positives, score.false_positives, score.false_negatives) == (1, 1, 1)
    assert score.rq == pytest.approx(1 / (1 + 0.5 + 0.5))
    assert score.matches == [(0, 0)]


def test_no_true_positive_zeroes_tq_and_mq():
    true = _three_people(2)[:, :1]
    score = _score(true, np.zeros_like(true))
    assert (score.rq, score.tq, score.mq["mse"]) == (0.0, 0.0, 0.0)


def test_empty_frames_score_iou_zero():
    # An instance visible in half of the frames of a perfect prediction has a mean IoU of 0.5: not a TP.
    visible = _box(2, 2)
    true = _clip([[visible, visible, np.zeros_like(visible), np.zeros_like(visible)]])
    assert _score(true, true.copy()).true_positives == 0
    true = _clip([[visible, visible, visible, np.zeros_like(visible)]])
    assert _score(true, true.copy()).rq == pytest.approx(0.75)


def test_matting_quality_per_error():
    true = np.ones((3, 1, H, W), np.float32)
    pred = true.copy()
    pred[1] = 0.99  # frame 1 off by 0.01 everywhere, frames 0 and 2 exact
    score = _score(true, pred)
    # MSE 1e-4 -> S = 1 - 50e-4; MAD 1e-2 -> S = 0.5; dtSSD 0.01 at frames 1 and 2 -> S = 0.9.
    assert score.mq["mse"] == pytest.approx((2 + 1 - 50 * 1e-4) / 3, abs=1e-6)
    assert score.mq["mad"] == pytest.approx((2 + 0.5) / 3, abs=1e-6)
    assert score.mq["dtssd"] == pytest.approx((1 + 0.9 + 0.9) / 3, abs=1e-5)


def test_large_error_is_clipped_at_zero():
    true = np.ones((2, 1, H, W), np.float32)
    pred = np.full_like(true, 0.6)  # still foreground, but MAD 0.4 -> 50 * 0.4 = 20 -> S = 0
    assert _score(true, pred).mq["mad"] == 0.0


def _whole_clip_vimq(true: np.ndarray, pred: np.ndarray) -> tuple[float, float, dict[str, float]]:
    """An independent oracle on whole ``(T, N, H, W)`` clips, written from SPEC section 4."""
    frames = true.shape[0]
    t_flat = true.transpose(1, 0, 2, 3).reshape(true.shape[1], frames * H * W).astype(np.float64)
    p_flat = pred.transpose(1, 0, 2, 3).reshape(pred.shape[1], frames * H * W).astype(np.float64)
    rows, cols = linear_sum_assignment(np.abs(t_flat[:, None] - p_flat[None]).sum(-1))
    fp, fn, tps, ious = max(len(p_flat) - len(t_flat), 0), max(len(t_flat) - len(p_flat), 0), [], []
    for g, p in zip(rows, cols, strict=True):
        gb, pb = true[:, g] > 0.5, pred[:, p] > 0.5
        inter, union = (gb & pb).sum((1, 2)), (gb | pb).sum((1, 2))
        iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0).mean()
        if iou > 0.5:
            tps.append((g, p))
            ious.append(iou)
        else:
            fp, fn = fp + 1, fn + 1
    if not tps:
        return 0.0, 0.0, dict.fromkeys(ERRORS, 0.0)
    rq = len(tps) / (len(tps) + fp / 2 + fn / 2) * np.mean(ious)
    per_frame = [
        linear_sum_assignment(np.abs(true[t][:, None] - pred[t][None]).sum((2, 3))) for t in range(frames)
    ]
    tq = np.mean([[dict(zip(*m, strict=True)).get(g) == p for g, p in tps] for m in per_frame])
    diff = pred[:, [p for _, p in tps]].astype(np.float64) - true[:, [g for g, _ in tps]]
    dt = np.sqrt(np.square(diff[1:] - diff[:-1]).mean((2, 3)))
    mq = {
        "mse": np.mean(1 - np.minimum(1, 50 * np.square(diff).mean((2, 3)))),
        "mad": np.mean(1 - np.minimum(1, 50 * np.abs(diff).mean((2, 3)))),
        "dtssd": np.mean(np.concatenate([np.ones((1, len(tps))), 1 - np.minimum(1, 10 * dt)])),
    }
    return rq, tq, mq


def _random_boxes(rng: np.random.Generator, frames: int, count: int) -> np.ndarray:
    boxes = [_box(*rng.integers(0, 10, 2)) for _ in range(frames * count)]
    return np.array(boxes, np.float32).reshape(frames, count, H, W)


@pytest.mark.parametrize("seed", range(10))
def test_streaming_equals_whole_clip_oracle(seed):
    rng = np.random.default_rng(seed)
    frames, num_true, num_pred = rng.integers(3, 8), rng.integers(1, 4), rng.integers(0, 5)
    true = _random_boxes(rng, frames, num_true)
    noise = rng.integers(0, 3, (frames, num_pred, H, W)) / 255
    pred = np.clip(_random_boxes(rng, frames, num_pred) + noise, 0, 1).astype(np.float32)
    for k in range(min(num_pred, num_true)):  # likely TPs, with identity switches in some frames
        pred[:, k] = np.clip(true[:, k] + noise[:, k], 0, 1)
    if min(num_pred, num_true) >= 2:
        switched = rng.random(frames) < 0.3
        pred[switched, :2] = pred[switched][:, [1, 0]]
    score = _score(true, pred)
    rq, tq, mq = _whole_clip_vimq(true, pred)
    assert score.rq == pytest.approx(rq)
    assert score.tq == pytest.approx(tq)
    for error in ERRORS:
        assert score.mq[error] == pytest.approx(mq[error])


def test_dataset_vimq_is_the_product_of_means_not_the_mean_of_products():
    clips = [ClipScore(1.0, 1.0, {"mse": 1.0}), ClipScore(0.5, 0.5, {"mse": 0.5})]
    overall = score_dataset(clips, ["mse"])
    assert overall["VIMQ_mse"] == pytest.approx(0.75**3 * 100)
    assert overall["VIMQ_mse"] != pytest.approx(np.mean([c.vimq("mse") for c in clips]) * 100)


def test_dtssd_needs_previous_frames():
    true = _three_people(2)
    stats = [frame_statistics(true[t], true[t]) for t in range(2)]
    with pytest.raises(ValueError, match="dtssd"):
        score_clip(stats, ["dtssd"])
    assert score_clip(stats, ["mse"]).mq == {"mse": 1.0}
