"""The training item shared by every matting data set (synthetic, VideoMatte240K, multi-instance).

An item is a dict of tensors:

- ``frames``: ``(T, 3, H, W)`` float32 in [0, 1], the composite.
- ``fgr``, ``bgr``: ``(T, 3, H, W)`` float32 in [0, 1].
- ``pha``: ``(T, 1, H, W)`` float32 in [0, 1], all instances together.
- ``alphas``: ``(M, T, 1, H, W)`` float32, each instance's visible alpha, zero-padded to ``M`` slots.
- ``masks``: ``(M, T, 1, H, W)`` float32 in {0, 1}, each instance's guidance mask (all zeros for a
  missed instance or an empty slot).
- ``valid``: ``(M,)`` bool, which slots hold an instance.
- ``seed``: ``()`` int64, the seed the item was drawn with.
"""

from __future__ import annotations

import numpy as np
import torch

from vidmatte.data.guidance import Guidance


def make_item(
    com: np.ndarray,
    fgr: np.ndarray,
    bgr: np.ndarray,
    alphas: np.ndarray,
    guidance: Guidance,
    slots: int,
    seed: int,
) -> dict[str, torch.Tensor]:
    """Pack arrays into an item.

    Args:
        com, fgr, bgr: ``(T, H, W, 3)`` float32 in [0, 1].
        alphas: ``(N, T, H, W)`` visible alphas, ``N <= slots``.
        guidance: one track per detected instance; track ``k`` goes to slot ``guidance.instance[k]``.
        slots: ``M``, the padded number of instances.
        seed: recorded in the item.
    """
    count = alphas.shape[0]
    if count > slots:
        raise ValueError(f"{count} instances do not fit in {slots} slots")
    padded = np.zeros((slots, *alphas.shape[1:]), np.float32)
    padded[:count] = alphas
    masks = np.zeros_like(padded)
    for track, instance in zip(guidance.masks, guidance.instance, strict=True):
        masks[instance] = track
    return {
        "frames": _channels_first(com),
        "fgr": _channels_first(fgr),
        "bgr": _channels_first(bgr),
        "pha": torch.from_numpy(padded.sum(axis=0).clip(0, 1)[:, None].copy()),
        "alphas": torch.from_numpy(padded[:, :, None].copy()),
        "masks": torch.from_numpy(masks[:, :, None].copy()),
        "valid": torch.from_numpy(np.arange(slots) < count),
        "seed": torch.tensor(seed, dtype=torch.int64),
    }


def _channels_first(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32))
