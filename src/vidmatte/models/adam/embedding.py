"""Eq. 6 of AdaM: foreground/background information written into a frame's values."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FgBgEmbedding(nn.Module):
    """``V_fb = V + m_d E_f + (1 - m_d) E_b`` with learnable ``E_f, E_b`` in ``R^{1 x dim}``.

    The embeddings start random (supplementary section 4.1), standard normal like ``nn.Embedding``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.foreground = nn.Parameter(torch.randn(1, dim))
        self.background = nn.Parameter(torch.randn(1, dim))

    def forward(self, values: Tensor, foreground: Tensor) -> Tensor:
        """Embed the mask into the values.

        Args:
            values: ``(B, L, dim)`` float, the frame's values ``V``.
            foreground: ``(B, L)`` float in ``[0, 1]``, the foreground probability ``m_d`` of each token.

        Returns:
            ``(B, L, dim)``, the Fg/Bg embedded values ``V_fb``.
        """
        # in the values' dtype, so that under autocast the memory stays in the low precision
        m = foreground.unsqueeze(-1).to(values.dtype)
        return values + m * self.foreground.to(values.dtype) + (1 - m) * self.background.to(values.dtype)
