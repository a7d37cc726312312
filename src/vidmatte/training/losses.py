"""Matting losses: L1, Laplacian pyramid, composition, foreground, Fg/Bg cross-entropy, and AdaM's sum.

Every function takes tensors with any number of leading dimensions (``(B, C, H, W)`` or clips
``(B, T, C, H, W)``) and returns a scalar mean. The generic terms are shared with MSG-VIM.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vidmatte.models.adam.model import AdamOutput

LAPLACIAN_LEVELS = 5
MASK_THRESHOLD = 0.5  # the Fg/Bg target of m_p is alpha > 0.5
# Burt-Adelson 5-tap binomial filter; the 2-D kernel is its outer product.
_BINOMIAL_5 = (1.0, 4.0, 6.0, 4.0, 1.0)


def _images(x: Tensor) -> Tensor:
    """Flatten the leading dimensions: ``(..., C, H, W)`` -> ``(N, C, H, W)``."""
    return x.reshape(-1, *x.shape[-3:])


def l1_loss(pred: Tensor, true: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean absolute error, optionally restricted to where ``weight`` is nonzero.

    ``L = Σ w |p - g| / Σ w`` over all elements, ``w`` broadcast to ``pred``'s shape (``w = 1``
    without weight). An all-zero weight gives 0 (nothing to supervise), not NaN.
    """
    error = (pred - true).abs()
    if weight is None:
        return error.mean()
    weight = weight.expand_as(error).to(error.dtype)
    return (error * weight).sum() / weight.sum().clamp_min(1)


def _blur(x: Tensor) -> Tensor:
    """5x5 binomial blur with replicated borders, ``(N, C, H, W)`` -> same."""
    taps = torch.tensor(_BINOMIAL_5, dtype=x.dtype, device=x.device)
    kernel = torch.outer(taps, taps) / taps.sum() ** 2
    channels = x.shape[1]
    padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
    return F.conv2d(padded, kernel.expand(channels, 1, 5, 5), groups=channels)


def laplacian_pyramid(x: Tensor, levels: int = LAPLACIAN_LEVELS) -> list[Tensor]:
    """Band-pass levels of a Laplacian pyramid, finest first.

    Level ``i`` is ``G_i - up(G_{i+1})`` with ``G_0 = x`` and ``G_{i+1}`` the binomially blurred
    ``G_i`` subsampled by 2 (odd sizes round up); ``up`` is bilinear interpolation back to the size
    of ``G_i``, so a constant image has all-zero levels, borders included. The low-pass residual is
    not included.

    Args:
        x: ``(N, C, H, W)`` float.
        levels: number of band-pass levels.

    Returns:
        ``levels`` tensors, the ``i``-th of size ``ceil(H / 2^i) x ceil(W / 2^i)``.
    """
    pyramid = []
    current = x
    for _ in range(levels):
        down = _blur(current)[..., ::2, ::2]
        up = F.interpolate(down, current.shape[-2:], mode="bilinear", align_corners=False)
        pyramid.append(current - up)
        current = down
    return pyramid


def laplacian_loss(pred: Tensor, true: Tensor, levels: int = LAPLACIAN_LEVELS) -> Tensor:
    """Laplacian pyramid L1: ``Σ_i 2^i / levels * mean|L_i(p) - L_i(g)|``, ``i = 0`` the finest level."""
    pred_levels = laplacian_pyramid(_images(pred), levels)
    true_levels = laplacian_pyramid(_images(true), levels)
    return sum(
        (2**i / levels) * l1_loss(p, g) for i, (p, g) in enumerate(zip(pred_levels, true_levels, strict=True))
    )


def composition_loss(
    alpha: Tensor, foreground: Tensor, background: Tensor, image: Tensor, weight: Tensor | None = None
) -> Tensor:
    """L1 between the image and its re-composition with the predicted alpha.

    ``L = mean |α F + (1 - α) B - I|`` with ``F``, ``B`` the true foreground and background,
    ``α`` ``(..., 1, H, W)`` and ``F``, ``B``, ``I`` ``(..., 3, H, W)`` in ``[0, 1]``.
    """
    return l1_loss(alpha * foreground + (1 - alpha) * background, image, weight)


def foreground_loss(pred_foreground: Tensor, true_foreground: Tensor, true_alpha: Tensor) -> Tensor:
    """L1 on the foreground colour where the true alpha is above zero (elsewhere it is undefined)."""
    return l1_loss(pred_foreground, true_foreground, true_alpha > 0)


def mask_loss(mask_logits: Tensor, true_alpha: Tensor) -> Tensor:
    """Cross-entropy of the Fg/Bg logits ``m_p`` against the mask ``α > 0.5``.

    Args:
        mask_logits: ``(..., 2, h, w)`` logits (background, foreground).
        true_alpha: ``(..., 1, H, W)`` alpha or binary mask in ``[0, 1]``, area-resized to ``h x w``
            before thresholding.
    """
    logits = _images(mask_logits)
    alpha = F.interpolate(_images(true_alpha).float(), logits.shape[-2:], mode="area")
    return F.cross_entropy(logits.float(), (alpha[:, 0] > MASK_THRESHOLD).long())


def alpha_loss(pred: Tensor, true: Tensor) -> Tensor:
    """``L1 + L_lap`` of an alpha matte, the true matte area-resized to the prediction's size."""
    if pred.shape[-2:] != true.shape[-2:]:
        true = F.interpolate(_images(true), pred.shape[-2:], mode="area").reshape(*pred.shape)
    return l1_loss(pred, true) + laplacian_loss(pred, true)


@dataclass(frozen=True)
class AdamLossWeights:
    """Weights of AdaM's loss terms (the paper does not publish ``ω``; decision: all 1).

    A zero weight skips its term (stage 1 trains on segmentation with ``mask`` alone).
    """

    mask: float = 1.0
    coarse: float = 1.0
    fine: float = 1.0
    foreground: float = 1.0


def adam_loss(
    output: AdamOutput,
    true_alpha: Tensor,
    true_foreground: Tensor | None = None,
    weights: AdamLossWeights = AdamLossWeights(),
) -> tuple[Tensor, dict[str, Tensor]]:
    """AdaM's loss (supplementary Eq. 6) plus the foreground term.

    ``L = ω_m CE(m_p) + ω_c (L1 + L_lap)(α^c) + ω_f (L1 + L_lap)(α^f) + ω_fg L1_{α>0}(F)``.

    Args:
        output: the model's outputs for ``(B, T)`` frames (or ``(B,)`` single frames).
        true_alpha: ``(B, T, 1, H, W)`` true alpha in ``[0, 1]`` (a binary mask for segmentation data).
        true_foreground: ``(B, T, 3, H, W)`` true foreground; ``None`` skips the foreground term.
        weights: :class:`AdamLossWeights`.

    Returns:
        ``(total, terms)``: the weighted sum and each unweighted term by name, all scalars.
    """
    terms: dict[str, Tensor] = {}
    if weights.mask:
        terms["mask"] = mask_loss(output.mask_logits, true_alpha)
    if weights.coarse:
        terms["coarse"] = alpha_loss(output.coarse_alpha, true_alpha)
    if weights.fine:
        terms["fine"] = alpha_loss(output.alpha, true_alpha)
    if weights.foreground and true_foreground is not None:
        terms["foreground"] = foreground_loss(output.foreground, true_foreground, true_alpha)
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    return total, terms
