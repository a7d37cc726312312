"""The alpha metrics: hand-computed cases, properties, and equality with the OpenCV formulation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.ndimage import gaussian_filter

from tests.oracles import reference_metrics as ref
from vidmatte.metrics import alpha

RTOL = 1e-4
ATOL = 1e-6


def close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, float(theirs), rel_tol=RTOL, abs_tol=ATOL)


def quantise(a: np.ndarray) -> np.ndarray:
    return (np.round(np.clip(a, 0, 1) * 255) / 255).astype(np.float32)


def soft_matte(rng: np.random.Generator, h: int, w: int, blur: float = 3.0) -> np.ndarray:
    field = gaussian_filter(rng.random((h, w)), blur)
    field = (field - field.min()) / max(field.max() - field.min(), 1e-9)
    return quantise((field - 0.45) * 6)


def row(*values: float) -> np.ndarray:
    return np.array([values], dtype=np.float32)


# ---------------------------------------------------------------------------- hand-computed cases
def test_mad_mse_hand_computed():
    pred, true = row(0.0, 0.5, 1.0, 1.0), row(0.0, 0.0, 0.5, 1.0)
    assert alpha.mad(pred, true) == pytest.approx(1e3 * (0 + 0.5 + 0.5 + 0) / 4)
    assert alpha.mse(pred, true) == pytest.approx(1e3 * (0 + 0.25 + 0.25 + 0) / 4)


def test_dtssd_hand_computed():
    # Frame differences: pred +0.5 on two of four pixels, truth unchanged -> sqrt(2 * 0.25 / 4) * 100.
    prev = np.zeros((2, 2), np.float32)
    pred = np.array([[0.5, 0.5], [0, 0]], np.float32)
    assert alpha.dtssd(pred, prev, prev, prev) == pytest.approx(100 * math.sqrt(0.5 / 4))
    # The same change in prediction and truth is no temporal error.
    assert alpha.dtssd(pred, prev, pred, prev) == 0.0


def test_fgr_metrics_use_only_foreground_pixels():
    true_pha = row(0.0, 0.2, 1.0)
    true_fgr = np.zeros((1, 3, 3), np.float32)
    pred_fgr = np.zeros((1, 3, 3), np.float32)
    pred_fgr[0, 0] = 1.0  # error under alpha 0: ignored
    pred_fgr[0, 2, 0] = 0.3  # one channel of one foreground pixel
    assert alpha.fgr_mad(pred_fgr, true_fgr, true_pha) == pytest.approx(1e3 * 0.3 / 6)
    assert alpha.fgr_mse(pred_fgr, true_fgr, true_pha) == pytest.approx(1e3 * 0.09 / 6)
    assert math.isnan(alpha.fgr_mse(pred_fgr, true_fgr, np.zeros((1, 3), np.float32)))


def test_gaussian_derivative_kernel_matches_definition():
    smooth, derive = alpha.gaussian_derivative_factors(1.4, 1e-2)
    half = math.ceil(1.4 * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * 1.4 * 1e-2)))
    assert half == 4 and smooth.shape == derive.shape == (9,)
    g = [math.exp(-(x**2) / (2 * 1.4**2)) / (1.4 * math.sqrt(2 * math.pi)) for x in range(-4, 5)]
    dg = [-x * g[x + 4] / 1.4**2 for x in range(-4, 5)]
    kernel = np.outer(g, dg)
    kernel /= np.sqrt((kernel**2).sum())
    np.testing.assert_allclose(np.outer(smooth, derive), kernel, rtol=1e-12, atol=1e-15)
    assert np.linalg.norm(np.outer(smooth, derive)) == pytest.approx(1.0)


def test_gradient_magnitude_equals_direct_2d_correlation():
    rng = np.random.default_rng(1)
    image = rng.random((13, 17)).astype(np.float32)
    smooth, derive = alpha.gaussian_derivative_factors()
    kx = np.outer(smooth, derive)
    padded = np.pad(image.astype(np.float64), 4, mode="edge")  # replicate border
    gx = np.zeros(image.shape)
    gy = np.zeros(image.shape)
    for i in range(9):
        for j in range(9):
            window = padded[i : i + 13, j : j + 17]
            gx += kx[i, j] * window
            gy += kx.T[i, j] * window
    np.testing.assert_allclose(alpha.gradient_magnitude(image, normalize=False), np.hypot(gx, gy), atol=1e-5)


def test_conn_hand_computed_round_down():
    # Thresholds 0.1 and 0.2 keep both pixels; from 0.3 the second leaves Ω (round-down 0.2); from 0.6
    # the first leaves (round-down 0.5). phi_g = [1, 1 - 0.3], phi_p = [1, 1] -> 0.3 / 1000.
    assert alpha.conn(row(0.5, 0.2), row(0.5, 0.5)) == pytest.approx(0.3e-3, rel=1e-6)


def test_conn_keeps_only_the_largest_component():
    # Pixel 0 is its own component, smaller than {2, 3}: it leaves Ω at the first threshold
    # (round-down 0) while pixels 2 and 3 stay until 0.6 (round-down 0.5).
    # phi_g = [0, 1, 0.5, 0.5]; phi_p = [0.5, 1, 1, 1] -> (0.5 + 0 + 0.5 + 0.5) / 1000.
    assert alpha.conn(row(0.5, 0, 0.5, 0.5), row(1, 0, 1, 1)) == pytest.approx(1.5e-3, rel=1e-6)


def test_conn_small_differences_do_not_count():
    # d = alpha - round_down < 0.15 gives phi = 1 on both sides.
    assert alpha.conn(row(0.1, 0.0), row(0.2, 0.0)) == 0.0


# ---------------------------------------------------------------------------------- properties
@pytest.mark.parametrize("metric", ["mad", "mse", "grad", "conn"])
def test_identical_mattes_score_zero_and_metrics_are_symmetric(metric):
    rng = np.random.default_rng(2)
    a, b = soft_matte(rng, 40, 60), soft_matte(rng, 40, 60)
    f = getattr(alpha, metric)
    assert f(a, a) == 0.0
    assert f(a, b) > 0
    assert f(a, b) == pytest.approx(f(b, a), rel=1e-6)


def test_scale_factors():
    true = np.zeros((10, 10), np.float32)
    pred = np.full((10, 10), 0.1, np.float32)
    assert alpha.mad(pred, true) == pytest.approx(100.0)  # 0.1 * 1e3
    assert alpha.mse(pred, true) == pytest.approx(10.0)  # 0.01 * 1e3
    assert alpha.dtssd(pred, true, true, true) == pytest.approx(10.0)  # sqrt(0.01) * 1e2


def test_grad_is_a_sum_over_the_frame():
    rng = np.random.default_rng(3)
    a, b = soft_matte(rng, 30, 30), soft_matte(rng, 30, 30)
    tiled = alpha.grad(np.tile(a, (1, 3)), np.tile(b, (1, 3)), normalize=False)
    # Three side-by-side copies: about three times the error (the seams add a little).
    assert 2.5 < tiled / alpha.grad(a, b, normalize=False) < 3.5


def test_grad_lr_protocol_is_invariant_to_contrast_and_hr_is_not():
    rng = np.random.default_rng(4)
    a, b = soft_matte(rng, 32, 48), soft_matte(rng, 32, 48)
    assert alpha.grad(a * 0.5, b * 0.5, normalize=True) == pytest.approx(alpha.grad(a, b), rel=1e-5)
    assert alpha.grad(a * 0.5, b * 0.5, normalize=False) == pytest.approx(
        0.25 * alpha.grad(a, b, normalize=False), rel=1e-5
    )


def test_grad_of_constant_mattes_is_zero_after_normalisation():
    ones = np.ones((20, 20), np.float32)
    assert alpha.grad(ones * 0.3, ones, normalize=True) == 0.0


# ------------------------------------------------------- equality with the OpenCV formulation
@pytest.mark.parametrize(("h", "w"), [(288, 512), (37, 23), (1, 40), (40, 1), (9, 9)])
def test_equal_to_reference_on_mattes(h, w):
    rng = np.random.default_rng(h * 1000 + w)
    true = soft_matte(rng, h, w)
    pred = quantise(true + (rng.random((h, w)) - 0.5) * 0.3 * (rng.random((h, w)) < 0.2))
    prev = soft_matte(rng, h, w)
    for normalize in (True, False):
        assert close(alpha.grad(pred, true, normalize), ref.grad(pred, true, normalize))
    assert close(alpha.conn(pred, true), ref.conn(pred, true))
    assert close(alpha.mad(pred, true), ref.mad(pred, true))
    assert close(alpha.mse(pred, true), ref.mse(pred, true))
    assert close(alpha.dtssd(pred, prev, true, prev), ref.dtssd(pred, prev, true, prev))


@pytest.mark.parametrize("seed", range(6))
def test_conn_equal_to_reference_with_many_tied_components(seed):
    rng = np.random.default_rng(seed)
    true = quantise((rng.random((24, 31)) < 0.5) * rng.choice([0.3, 0.7, 1.0], (24, 31)))
    pred = quantise((rng.random((24, 31)) < 0.6) * rng.choice([0.2, 0.5, 1.0], (24, 31)))
    assert close(alpha.conn(pred, true), ref.conn(pred, true))


def test_equal_to_reference_on_extremes():
    zeros, ones = np.zeros((16, 16), np.float32), np.ones((16, 16), np.float32)
    for a, b in [(zeros, ones), (ones, zeros), (zeros, zeros), (ones * 0.5, ones)]:
        for normalize in (True, False):
            assert close(alpha.grad(a, b, normalize), ref.grad(a, b, normalize))
        assert close(alpha.conn(a, b), ref.conn(a, b))


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    h=st.integers(1, 20),
    w=st.integers(1, 20),
)
def test_equal_to_reference_on_any_input(data, h, w):
    unit = st.floats(0, 1, width=32, allow_nan=False)
    pred = data.draw(arrays(np.float32, (h, w), elements=unit))
    true = data.draw(arrays(np.float32, (h, w), elements=unit))
    for normalize in (True, False):
        assert close(alpha.grad(pred, true, normalize), ref.grad(pred, true, normalize))
    assert close(alpha.conn(pred, true), ref.conn(pred, true))


def test_foreground_errors_on_uint8_equal_float_formulation():
    rng = np.random.default_rng(5)
    pred = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    true = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    pha = soft_matte(rng, 20, 30)
    fmad, fmse = alpha.foreground_errors(pred, true, pha)
    pred_f, true_f = pred.astype(np.float32) / 255, true.astype(np.float32) / 255
    assert close(fmad, ref.fgr_mad(pred_f, true_f, pha))
    assert close(fmse, ref.fgr_mse(pred_f, true_f, pha))
    assert close(alpha.fgr_mad(pred_f, true_f, pha), fmad)
