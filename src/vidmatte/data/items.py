"""The training item shared by every matting data set (synthetic, VideoMatte240K, multi-instance).

An item is a dict of tensors:

- ``frames``: ``(T, 3, H, W)`` float32 in [0, 1], the composite.
- ``fgr``, ``bgr``: ``(T, 3, H, W)`` float32 in [0, 1].
- ``pha``: ``(T, 1, H, W)`` float32 in [0, 1], all instances together.
- ``alphas``: ``(M, T, 1, H, W)`` float32, each slot's target: in every frame, the visible alpha of
  the instance that the slot's guidance follows (so an identity switch of the guidance switches the
  target too), zero-padded to ``M`` slots.
- ``masks``: ``(M, T, 1, H, W)`` float32 in {0, 1}, each slot's guidance mask.
- ``valid``: ``(M,)`` bool, which slots hold a guided instance. An instance that the guidance misses
  has no slot: it is neither a target nor a reference, and ``bgr`` holds it as part of the background,
  so that no loss asks for a matte of a person the guidance never showed.

``pha`` and ``frames`` hold every instance.
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
    count, frames = alphas.shape[:2]
    if count > slots:
        raise ValueError(f"{count} instances do not fit in {slots} slots")
    targets = np.zeros((slots, *alphas.shape[1:]), np.float32)
    masks = np.zeros_like(targets)
    valid = np.zeros(slots, bool)
    for track, instance, follows in zip(guidance.masks, guidance.instance, guidance.followed(), strict=True):
        masks[instance] = track
        targets[instance] = alphas[follows, np.arange(frames)]
        valid[instance] = True
    for instance in guidance.missed:
        matte = alphas[instance][..., None]
        bgr = fgr * matte + bgr * (1 - matte)
    return {
        "frames": _channels_first(com),
        "fgr": _channels_first(fgr),
        "bgr": _channels_first(bgr),
        "pha": torch.from_numpy(alphas.sum(axis=0).clip(0, 1)[:, None].copy()),
        "alphas": torch.from_numpy(targets[:, :, None].copy()),
        "masks": torch.from_numpy(masks[:, :, None].copy()),
        "valid": torch.from_numpy(valid),
        "seed": torch.tensor(seed, dtype=torch.int64),
    }


def _channels_first(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32))
