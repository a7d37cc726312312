"""Alpha compositing: layers stacked with the *over* operator, and the matting equation.

The matting equation is ``I = F * a + B * (1 - a)``. Layers are stacked back to front; each layer
that lands in front of another hides part of it, so an instance's *visible* alpha is its own alpha
times ``(1 - a)`` of every layer in front of it. The visible alphas of all instances sum to the
combined alpha, and the combined foreground is their alpha-weighted mean colour.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

_EPS = 1e-6


class Layered(NamedTuple):
    """The result of stacking instance layers.

    Attributes:
        visible: ``(N, ..., H, W)`` float32 in [0, 1], each instance's alpha with the parts hidden
            by instances in front of it removed (VIM's per-instance ground truth).
        pha: ``(..., H, W)`` float32 in [0, 1], the combined alpha (sum of ``visible``).
        fgr: ``(..., H, W, 3)`` float32 in [0, 1], the combined foreground colour (defined
            everywhere; where ``pha`` is zero it is the colour of the front-most layer).
    """

    visible: np.ndarray
    pha: np.ndarray
    fgr: np.ndarray


def over(
    alpha: np.ndarray, premultiplied: np.ndarray, layer_alpha: np.ndarray, layer_colour: np.ndarray
) -> None:
    """Put a layer in front of an accumulated stack, in place.

    Args:
        alpha: ``(..., H, W)`` accumulated alpha, updated in place.
        premultiplied: ``(..., H, W, 3)`` accumulated colour times alpha, updated in place.
        layer_alpha: ``(..., H, W)`` the new layer's alpha in [0, 1].
        layer_colour: ``(..., H, W, 3)`` the new layer's (straight, not premultiplied) colour.
    """
    keep = 1.0 - layer_alpha
    premultiplied *= keep[..., None]
    premultiplied += layer_colour * layer_alpha[..., None]
    alpha *= keep
    alpha += layer_alpha


def over_premultiplied(
    alpha: np.ndarray, premultiplied: np.ndarray, layer_alpha: np.ndarray, layer_premultiplied: np.ndarray
) -> None:
    """:func:`over` for a layer whose colour is already premultiplied by its alpha, in place."""
    keep = 1.0 - layer_alpha
    premultiplied *= keep[..., None]
    premultiplied += layer_premultiplied
    alpha *= keep
    alpha += layer_alpha


def unpremultiply(alpha: np.ndarray, premultiplied: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Straight colour from premultiplied colour; ``fallback`` where alpha is (near) zero."""
    colour = np.empty_like(premultiplied)
    colour[...] = fallback
    np.divide(premultiplied, alpha[..., None], out=colour, where=alpha[..., None] > _EPS)
    return np.clip(colour, 0.0, 1.0, out=colour)


def stack_layers(alphas: np.ndarray, colours: np.ndarray) -> Layered:
    """Stack instance layers given back to front.

    Args:
        alphas: ``(N, ..., H, W)`` float32 in [0, 1], index 0 the farthest instance.
        colours: ``(N, ..., H, W, 3)`` float32 in [0, 1], straight colours.

    Returns:
        The visible alphas (in the input order), combined alpha and combined foreground.
    """
    visible = alphas.astype(np.float32, copy=True)
    pha = np.zeros(alphas.shape[1:], np.float32)
    premultiplied = np.zeros(colours.shape[1:], np.float32)
    for index in range(alphas.shape[0]):
        visible[:index] *= 1.0 - alphas[index]
        over(pha, premultiplied, alphas[index], colours[index])
    return Layered(visible, pha, unpremultiply(pha, premultiplied, colours[-1]).astype(np.float32))


def composite(fgr: np.ndarray, pha: np.ndarray, bgr: np.ndarray) -> np.ndarray:
    """The matting equation ``fgr * pha + bgr * (1 - pha)``.

    Args:
        fgr, bgr: ``(..., H, W, 3)`` float in [0, 1].
        pha: ``(..., H, W)`` float in [0, 1].

    Returns:
        ``(..., H, W, 3)`` float32 in [0, 1].
    """
    a = pha[..., None]
    return (fgr * a + bgr * (1.0 - a)).astype(np.float32)


@numba.njit(nogil=True, cache=True)
def _composite_u8(fgr, pha, bgr, out):
    """:func:`composite_u8`'s loop: float32 arithmetic as numpy's, then :func:`~vidmatte.io.frames.to_u8`'s
    rounding."""
    zero, one, scale, half = np.float32(0), np.float32(1), np.float32(255), np.float32(0.5)
    for y in range(pha.shape[0]):
        for x in range(pha.shape[1]):
            a = pha[y, x]
            for c in range(3):
                value = np.float32(fgr[y, x, c] * a) + np.float32(bgr[y, x, c] * (one - a))
                out[y, x, c] = np.uint8(min(max(value, zero), one) * scale + half)


def composite_u8(fgr: np.ndarray, pha: np.ndarray, bgr: np.ndarray) -> np.ndarray:
    """``to_u8(composite(fgr, pha, bgr))`` in one pass, for one frame: a 1080p composite in about 13 ms
    of one core instead of 77 (the numpy expression makes five full-size float arrays); it releases the
    GIL, so the render thread runs beside the model.

    Args:
        fgr, bgr: ``(H, W, 3)`` float32 in [0, 1] (any strides).
        pha: ``(H, W)`` float32 in [0, 1].

    Returns:
        ``(H, W, 3)`` uint8, rounded to nearest, values outside [0, 1] clipped.
    """
    out = np.empty((*pha.shape, 3), np.uint8)
    _composite_u8(fgr, pha, bgr, out)
    return out
