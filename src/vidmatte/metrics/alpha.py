"""Video matting metrics with the conventions of the published VM benchmark evaluation.

Every function takes float32 arrays in [0, 1] (an 8-bit PNG divided by 255) and returns a Python
float, already multiplied by its reporting scale. Alphas are ``(H, W)``; foregrounds ``(H, W, 3)``.
Arrays that cannot be scored together (shapes that differ, an empty frame) raise ``ValueError``.
A clip's score is the mean of its frames' scores (dtSSD counts frame 0 as 0).

Grad and Conn run as numba kernels, numerically equal to the reference formulation (OpenCV
``filter2D`` with the 9x9 Gaussian-derivative kernel; ``connectedComponentsWithStats`` at ten
thresholds) up to float32 summation order: the 9x9 kernel is an outer product, so it is applied as two
1-D passes, and the ten threshold levels share one pass over the pixels.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

MAD_SCALE = 1e3
MSE_SCALE = 1e3
GRAD_SCALE = 1e-3
CONN_SCALE = 1e-3
DTSSD_SCALE = 1e2
FGR_SCALE = 1e3

GRAD_SIGMA = 1.4
GRAD_EPSILON = 1e-2  # truncation of the Gaussian: half size = ceil(sigma * sqrt(-2 ln(sqrt(2 pi) sigma eps)))
CONN_STEP = 0.1
CONN_MIN_DIFF = np.float32(0.15)  # differences to the round-down level below this count as 0


@numba.njit(cache=True, fastmath=True)
def _error_sums(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """``(sum|p - g|, sum (p - g)^2)`` in one pass, differences taken in float32 as numpy would."""
    abs_sum = 0.0
    sq_sum = 0.0
    p = pred.ravel()
    g = true.ravel()
    for i in range(p.shape[0]):
        d = np.float64(np.float32(p[i] - g[i]))
        abs_sum += abs(d)
        sq_sum += d * d
    return abs_sum, sq_sum


@numba.njit(cache=True, fastmath=True)
def _temporal_sq_sum(
    pred: np.ndarray, pred_prev: np.ndarray, true: np.ndarray, true_prev: np.ndarray
) -> float:
    total = 0.0
    p, pp, g, gp = pred.ravel(), pred_prev.ravel(), true.ravel(), true_prev.ravel()
    for i in range(p.shape[0]):
        d = np.float64(np.float32(np.float32(p[i] - pp[i]) - np.float32(g[i] - gp[i])))
        total += d * d
    return total


def _checked(*images: np.ndarray, ndim: int | None = None) -> list[np.ndarray]:
    """The images as contiguous float32, once it is certain that they can be scored together (the
    kernels index them in step, unchecked).

    Raises:
        ValueError: shapes that differ, an empty image, or another number of dimensions than ``ndim``.
    """
    shapes = [np.shape(image) for image in images]
    if any(shape != shapes[0] for shape in shapes):
        raise ValueError(f"shapes differ: {' and '.join(str(shape) for shape in dict.fromkeys(shapes))}")
    if ndim is not None and len(shapes[0]) != ndim:
        raise ValueError(f"expected {ndim}-D images, got shape {shapes[0]}")
    if math.prod(shapes[0]) == 0:
        raise ValueError(f"empty image of shape {shapes[0]}")
    return [np.ascontiguousarray(image, dtype=np.float32) for image in images]


def mad(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute difference: ``mean|p - g| * 1e3``.

    >>> mad(np.array([[0.0, 1.0]], np.float32), np.array([[0.5, 1.0]], np.float32))
    250.0
    """
    pred, true = _checked(pred, true)
    return _error_sums(pred, true)[0] / true.size * MAD_SCALE


def mse(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean squared error: ``mean (p - g)^2 * 1e3``.

    >>> mse(np.array([[0.0, 1.0]], np.float32), np.array([[0.5, 1.0]], np.float32))
    125.0
    """
    pred, true = _checked(pred, true)
    return _error_sums(pred, true)[1] / true.size * MSE_SCALE


def dtssd(pred: np.ndarray, pred_prev: np.ndarray, true: np.ndarray, true_prev: np.ndarray) -> float:
    """Temporal coherence error between consecutive frames.

    ``dtSSD = sqrt(sum(((p_t - p_{t-1}) - (g_t - g_{t-1}))^2) / (H * W)) * 1e2``; a clip's first
    frame has no predecessor and scores 0 (it still counts in the clip's mean).

    >>> z = np.zeros((1, 4), np.float32)
    >>> dtssd(np.full((1, 4), 0.5, np.float32), z, z, z)
    50.0
    """
    pred, pred_prev, true, true_prev = _checked(pred, pred_prev, true, true_prev)
    total = _temporal_sq_sum(pred, pred_prev, true, true_prev)
    return math.sqrt(total / true.size) * DTSSD_SCALE


@numba.njit(cache=True)
def _foreground_errors(pred: np.ndarray, true: np.ndarray, true_pha: np.ndarray) -> tuple[float, float, int]:
    """Sums of |p - g| and (p - g)^2 over the channels of pixels where ``true_pha > 0``, and their count."""
    abs_sum = 0.0
    sq_sum = 0.0
    count = 0
    for y in range(true_pha.shape[0]):
        for x in range(true_pha.shape[1]):
            if true_pha[y, x] > 0:
                for c in range(3):
                    d = np.float32(np.float32(pred[y, x, c]) / 255) - np.float32(
                        np.float32(true[y, x, c]) / 255
                    )
                    abs_sum += abs(d)
                    sq_sum += d * d
                count += 3
    return abs_sum, sq_sum, count


def foreground_errors(
    pred_fgr: np.ndarray, true_fgr: np.ndarray, true_pha: np.ndarray
) -> tuple[float, float]:
    """Foreground ``(MAD, MSE)`` over the pixels where the ground-truth alpha is > 0, all channels, ``* 1e3``.

    Args:
        pred_fgr, true_fgr: ``(H, W, 3)`` uint8 (scored as ``/ 255``) or float in [0, 1].
        true_pha: ``(H, W)`` ground-truth alpha, uint8 or float.

    Returns:
        ``(fgr_mad, fgr_mse)``; both NaN where the ground truth has no foreground pixel.
    """
    if pred_fgr.shape != true_fgr.shape or pred_fgr.shape != (*np.shape(true_pha), 3):
        raise ValueError(f"shapes differ: {pred_fgr.shape}, {true_fgr.shape} and alpha {np.shape(true_pha)}")
    if pred_fgr.dtype == np.uint8 and true_fgr.dtype == np.uint8:
        abs_sum, sq_sum, count = _foreground_errors(pred_fgr, true_fgr, true_pha)
        if count == 0:
            return math.nan, math.nan
        return abs_sum / count * FGR_SCALE, sq_sum / count * FGR_SCALE
    mask = true_pha > 0
    if not mask.any():
        return math.nan, math.nan
    return mad(pred_fgr[mask], true_fgr[mask]), mse(pred_fgr[mask], true_fgr[mask])


def fgr_mad(pred_fgr: np.ndarray, true_fgr: np.ndarray, true_pha: np.ndarray) -> float:
    """Foreground MAD over the pixels where the ground-truth alpha is > 0, all channels, ``* 1e3``.

    Returns NaN where the ground truth has no foreground pixel (the frame has no foreground to score).
    """
    return foreground_errors(pred_fgr, true_fgr, true_pha)[0]


def fgr_mse(pred_fgr: np.ndarray, true_fgr: np.ndarray, true_pha: np.ndarray) -> float:
    """Foreground MSE over the pixels where the ground-truth alpha is > 0, all channels, ``* 1e3``.

    Returns NaN where the ground truth has no foreground pixel.
    """
    return foreground_errors(pred_fgr, true_fgr, true_pha)[1]


def gaussian_derivative_factors(
    sigma: float = GRAD_SIGMA, epsilon: float = GRAD_EPSILON
) -> tuple[np.ndarray, np.ndarray]:
    """The two 1-D factors of the unit-norm first-order Gaussian derivative kernel.

    The reference 2-D kernel is ``K_x[i, j] = G(i - h) G'(j - h) / ||G ⊗ G'||`` with
    ``G(x) = exp(-x^2 / 2 sigma^2) / (sigma sqrt(2 pi))`` and ``G'(x) = -x G(x) / sigma^2``, and
    ``K_y = K_x^T``. Since the norm of an outer product is the product of the norms,
    ``K_x = outer(smooth, derive)`` with each factor normalised on its own.

    Returns:
        ``(smooth, derive)``: float64 arrays of length ``2h + 1`` (9 for sigma 1.4).
    """
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    smooth = np.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    derive = -x * smooth / sigma**2
    return smooth / np.linalg.norm(smooth), derive / np.linalg.norm(derive)


_SMOOTH, _DERIVE = (f.astype(np.float32) for f in gaussian_derivative_factors())


def _minmax_scale(image: np.ndarray, normalize: bool) -> tuple[float, float]:
    """``(scale, shift)`` mapping the image's range onto [0, 1], as OpenCV's ``NORM_MINMAX`` does
    (a constant image maps to 0); ``(1, 0)`` without normalisation."""
    if not normalize:
        return 1.0, 0.0
    low, high = float(image.min()), float(image.max())
    scale = 1.0 / (high - low) if high - low > np.finfo(np.float64).eps else 0.0
    return scale, -low * scale


@numba.njit(cache=True)
def _padded(image: np.ndarray, scale: float, shift: float, half: int) -> np.ndarray:
    """``image * scale + shift`` as float32, with ``half`` replicated pixels around it."""
    height, width = image.shape
    out = np.empty((height + 2 * half, width + 2 * half), np.float32)
    for y in range(height + 2 * half):
        row = image[min(max(y - half, 0), height - 1)]
        line = out[y]
        for x in range(width):
            line[half + x] = np.float32(row[x] * scale + shift)
        for x in range(half):
            line[x] = line[half]
            line[half + width + x] = line[half + width - 1]
    return out


class _Scratch(NamedTuple):
    """Row buffers reused by :func:`_magnitude_row`."""

    vert_smooth: np.ndarray  # (W + 2h,) float32
    vert_derive: np.ndarray  # (W + 2h,) float32
    gy: np.ndarray  # (W,) float32


@numba.njit(cache=True)
def _scratch(width: int, half: int) -> _Scratch:
    return _Scratch(
        np.empty(width + 2 * half, np.float32),
        np.empty(width + 2 * half, np.float32),
        np.empty(width, np.float32),
    )


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _magnitude_row(
    padded: np.ndarray, y: int, smooth: np.ndarray, derive: np.ndarray, scratch: _Scratch, out: np.ndarray
) -> None:
    """Row ``y`` of ``sqrt(gx^2 + gy^2)`` into ``out``.

    ``gx`` smooths along y then derives along x; ``gy`` the reverse. ``smooth`` is even and ``derive``
    odd around the centre tap, so each pass folds symmetric taps together; the loops run tap by tap
    along contiguous rows so that they vectorise.
    """
    half = smooth.shape[0] // 2
    width = out.shape[0]
    vert_smooth, vert_derive, gy = scratch
    centre = padded[y + half]
    for x in range(padded.shape[1]):
        vert_smooth[x] = smooth[half] * centre[x]
        vert_derive[x] = 0.0
    for k in range(1, half + 1):
        below = padded[y + half + k]
        above = padded[y + half - k]
        ws = smooth[half + k]
        wd = derive[half + k]
        for x in range(padded.shape[1]):
            vert_smooth[x] += ws * (below[x] + above[x])
            vert_derive[x] += wd * (below[x] - above[x])
    for x in range(width):
        out[x] = 0.0
        gy[x] = smooth[half] * vert_derive[half + x]
    for k in range(1, half + 1):
        ws = smooth[half + k]
        wd = derive[half + k]
        for x in range(width):
            out[x] += wd * (vert_smooth[half + x + k] - vert_smooth[half + x - k])
            gy[x] += ws * (vert_derive[half + x + k] + vert_derive[half + x - k])
    for x in range(width):
        out[x] = np.sqrt(out[x] * out[x] + gy[x] * gy[x])


@numba.njit(cache=True)
def _gradient_magnitude(
    image: np.ndarray, scale: float, shift: float, smooth: np.ndarray, derive: np.ndarray
):
    half = smooth.shape[0] // 2
    padded = _padded(image, scale, shift, half)
    scratch = _scratch(image.shape[1], half)
    magnitude = np.empty(image.shape, np.float32)
    for y in range(image.shape[0]):
        _magnitude_row(padded, y, smooth, derive, scratch, magnitude[y])
    return magnitude


@numba.njit(cache=True)
def _grad_error(
    pred: np.ndarray,
    true: np.ndarray,
    pred_map: tuple[float, float],
    true_map: tuple[float, float],
    smooth: np.ndarray,
    derive: np.ndarray,
) -> float:
    """``sum((|∇g| - |∇p|)^2)`` computed row by row, never holding the full gradient images."""
    half = smooth.shape[0] // 2
    pred_padded = _padded(pred, pred_map[0], pred_map[1], half)
    true_padded = _padded(true, true_map[0], true_map[1], half)
    scratch = _scratch(pred.shape[1], half)
    pred_row = np.empty(pred.shape[1], np.float32)
    true_row = np.empty(pred.shape[1], np.float32)
    total = 0.0
    for y in range(pred.shape[0]):
        _magnitude_row(pred_padded, y, smooth, derive, scratch, pred_row)
        _magnitude_row(true_padded, y, smooth, derive, scratch, true_row)
        for x in range(pred.shape[1]):
            d = np.float64(true_row[x] - pred_row[x])
            total += d * d
    return total


def gradient_magnitude(image: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Magnitude of the Gaussian-derivative gradient (sigma 1.4, replicate border).

    Args:
        image: ``(H, W)`` float32.
        normalize: min-max normalise to [0, 1] first (the 512x288 protocol); a constant image becomes 0.

    Returns:
        ``(H, W)`` float32.
    """
    (image,) = _checked(image, ndim=2)
    scale, shift = _minmax_scale(image, normalize)
    return _gradient_magnitude(image, scale, shift, _SMOOTH, _DERIVE)


def grad(pred: np.ndarray, true: np.ndarray, normalize: bool = True) -> float:
    """Gradient error: ``sum((|∇g| - |∇p|)^2) * 1e-3`` (a sum over the frame, not a mean).

    ``∇`` is the first-order Gaussian derivative filter (sigma 1.4, 9x9, unit L2 norm, replicate
    border). The 512x288 protocol min-max normalises both mattes first; the 1920x1080 protocol does not
    (``normalize=False``).
    """
    pred, true = _checked(pred, true, ndim=2)
    total = _grad_error(
        pred, true, _minmax_scale(pred, normalize), _minmax_scale(true, normalize), _SMOOTH, _DERIVE
    )
    return float(total * GRAD_SCALE)


def conn_thresholds(step: float = CONN_STEP) -> np.ndarray:
    """The threshold levels ``0, 0.1, ..., 1.0`` exactly as ``np.arange(0, 1 + step, step)`` makes them."""
    return np.arange(0, 1 + step, step)


@numba.njit(cache=True)
def _find(parent: np.ndarray, r: int) -> int:
    while parent[r] != r:
        parent[r] = parent[parent[r]]
        r = parent[r]
    return r


@numba.njit(cache=True)
def _round_down_map(true: np.ndarray, pred: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per pixel, the threshold just below the first level at which it leaves the largest component.

    Level ``i`` keeps ``Ω_i``, the largest 4-connected component of ``(g >= θ_i) & (p >= θ_i)``
    (ties go to the component met first in raster order, as OpenCV labels them). A pixel outside
    ``Ω_i`` but inside ``Ω_1 … Ω_{i-1}`` gets ``θ_{i-1}``; a pixel in every ``Ω_i`` gets 1.

    The masks are nested (``mask_i ⊆ mask_{i-1}``), so each level's horizontal runs are found inside
    the previous level's runs and labelled by union-find on runs, not pixels.
    """
    height, width = true.shape
    levels = thresholds.shape[0]
    # level[y, x]: the highest i with min(g, p) >= θ_i, i.e. the last mask the pixel belongs to.
    level = np.zeros((height, width), np.int8)
    for y in range(height):
        for x in range(width):
            m = min(true[y, x], pred[y, x])
            i = 0
            while i + 1 < levels and m >= thresholds[i + 1]:
                i += 1
            level[y, x] = i
    # alive[y, x] = a: the pixel is in Ω_1 … Ω_a and not in Ω_{a+1}; its round-down is θ_a.
    alive = np.zeros((height, width), np.int8)
    max_runs = height * ((width + 1) // 2)
    run_y = np.empty(max_runs, np.int32)
    run_a = np.empty(max_runs, np.int32)
    run_b = np.empty(max_runs, np.int32)
    new_y = np.empty(max_runs, np.int32)
    new_a = np.empty(max_runs, np.int32)
    new_b = np.empty(max_runs, np.int32)
    parent = np.empty(max_runs, np.int64)
    size = np.empty(max_runs, np.int64)
    n_runs = height  # level 0 is every pixel: one run per row
    for y in range(height):
        run_y[y] = y
        run_a[y] = 0
        run_b[y] = width
    for i in range(1, levels):
        count = 0
        for r in range(n_runs):
            y = run_y[r]
            x = run_a[r]
            while x < run_b[r]:
                if level[y, x] >= i:
                    start = x
                    while x < run_b[r] and level[y, x] >= i:
                        x += 1
                    new_y[count] = y
                    new_a[count] = start
                    new_b[count] = x
                    count += 1
                else:
                    x += 1
        run_y, new_y = new_y, run_y
        run_a, new_a = new_a, run_a
        run_b, new_b = new_b, run_b
        n_runs = count
        if n_runs == 0:
            break
        for r in range(n_runs):
            parent[r] = r
            size[r] = 0
        # Join runs of consecutive rows that share a column; the smaller index stays the root, so a
        # component's root is its first run in raster order.
        prev_start = 0
        prev_end = 0
        r = 0
        while r < n_runs:
            y = run_y[r]
            row_end = r
            while row_end < n_runs and run_y[row_end] == y:
                row_end += 1
            if prev_end > prev_start and run_y[prev_start] == y - 1:
                p = prev_start
                for q in range(r, row_end):
                    while p < prev_end and run_b[p] <= run_a[q]:
                        p += 1
                    s = p
                    while s < prev_end and run_a[s] < run_b[q]:
                        root_p = _find(parent, s)
                        root_q = _find(parent, q)
                        if root_p < root_q:
                            parent[root_q] = root_p
                        elif root_q < root_p:
                            parent[root_p] = root_q
                        s += 1
                    if s > p:
                        p = s - 1
            prev_start = r
            prev_end = row_end
            r = row_end
        for r in range(n_runs):
            size[_find(parent, r)] += run_b[r] - run_a[r]
        best = 0
        for r in range(n_runs):
            if parent[r] == r and size[r] > size[best]:
                best = r
        for r in range(n_runs):
            if _find(parent, r) == best:
                y = run_y[r]
                for x in range(run_a[r], run_b[r]):
                    if alive[y, x] == i - 1:
                        alive[y, x] = i
    round_down = np.empty((height, width), np.float32)
    values = thresholds.astype(np.float32)
    values[levels - 1] = 1.0
    for y in range(height):
        for x in range(width):
            round_down[y, x] = values[alive[y, x]]
    return round_down


@numba.njit(cache=True)
def _conn_error(true: np.ndarray, pred: np.ndarray, round_down: np.ndarray, min_diff: np.float32) -> float:
    total = 0.0
    one = np.float32(1.0)
    for y in range(true.shape[0]):
        for x in range(true.shape[1]):
            dg = np.float32(true[y, x] - round_down[y, x])
            dp = np.float32(pred[y, x] - round_down[y, x])
            phi_g = one - dg if dg >= min_diff else one
            phi_p = one - dp if dp >= min_diff else one
            total += abs(np.float32(phi_g - phi_p))
    return total


def conn(pred: np.ndarray, true: np.ndarray, step: float = CONN_STEP) -> float:
    """Connectivity error: ``sum|φ_g - φ_p| * 1e-3``.

    At thresholds ``θ = 0.1 … 1.0``, ``Ω_θ`` is the largest 4-connected component of
    ``(g >= θ) & (p >= θ)``. A pixel's round-down value ``l`` is the threshold just below the first
    level at which it leaves ``Ω`` (1 if it never does); with ``d = α - l``,
    ``φ = 1 - d·[d >= 0.15]``.
    """
    pred, true = _checked(pred, true, ndim=2)
    round_down = _round_down_map(true, pred, conn_thresholds(step))
    return float(_conn_error(true, pred, round_down, CONN_MIN_DIFF) * CONN_SCALE)
