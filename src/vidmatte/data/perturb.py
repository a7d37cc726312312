"""Simulated matting errors: a stand-in prediction for exercising evaluators without a model.

The errors resemble a real network's: boundaries blurred (fine strands lost), the soft band grown or
shrunk, a flicker that changes from frame to frame, a faint false-positive blob, and a colour cast on
the foreground.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from vidmatte.data.benchmarks import write_vm_clip
from vidmatte.data.synthetic.clips import ClipSpec, clip_seed, generate_clip


def perturb_alpha(pha: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Degrade a ground-truth alpha sequence the way an imperfect model would.

    Args:
        pha: ``(T, H, W)`` float32 in [0, 1].
        strength: scales every error; 0 returns the input unchanged.

    Returns:
        ``(T, H, W)`` float32 in [0, 1].
    """
    if strength == 0:
        return pha.astype(np.float32, copy=True)
    frames, height, width = pha.shape
    blurred = gaussian_filter(pha, sigma=(0, 1.2 * strength, 1.2 * strength))
    # A gamma above 1 shrinks the soft band, below 1 grows it; its jitter over time is the flicker.
    gamma = np.exp(rng.normal(0.0, 0.15 * strength) + rng.normal(0.0, 0.05 * strength, (frames, 1, 1)))
    out = np.power(blurred, gamma)
    # A faint blob drifting across the background.
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    vy, vx = rng.normal(0, 0.01 * height), rng.normal(0, 0.01 * width)
    radius = 0.08 * min(height, width)
    t = np.arange(frames)[:, None, None]
    y, x = np.mgrid[:height, :width]
    blob = np.exp(-((y - cy - vy * t) ** 2 + (x - cx - vx * t) ** 2) / (2 * radius**2))
    out = out + 0.25 * strength * blob * (1 - out)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def perturb_foreground(fgr: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """A colour cast plus a little noise on ``(..., 3)`` float colours in [0, 1]."""
    cast = rng.normal(0.0, 0.03 * strength, 3)
    noise = rng.normal(0.0, 0.02 * strength, fgr.shape)
    return np.clip(fgr + cast + noise, 0.0, 1.0).astype(np.float32)


def write_perturbed_benchmark(
    root: str | os.PathLike, clips: int, frames: int, size: tuple[int, int], seed: int, strength: float = 1.0
) -> None:
    """Generate synthetic clips in the VM benchmark layout with a perturbed copy as the prediction.

    Writes ``root/true/<subset>/<clip>/{com,pha,fgr}/NNNN.png`` and
    ``root/pred/<subset>/<clip>/{pha,fgr}/NNNN.png``, the subset being ``synthetic_motion`` or
    ``synthetic_static`` after the clip's camera, as ``vidmatte synth --layout vm`` names them.

    Args:
        size: ``(width, height)``.
    """
    root = Path(root)
    width, height = size
    for index in range(clips):
        seed_index = clip_seed(seed, index)
        clip = generate_clip(seed_index, ClipSpec(frames=frames, width=width, height=height))
        rng = np.random.default_rng(seed_index)
        subset = "synthetic_motion" if clip.moving_camera else "synthetic_static"
        name = f"{index:04d}"
        write_vm_clip(root / "true", subset, name, {"com": clip.com, "pha": clip.pha, "fgr": clip.fgr})
        predicted = {
            "pha": perturb_alpha(clip.pha, rng, strength),
            "fgr": perturb_foreground(clip.fgr, rng, strength),
        }
        write_vm_clip(root / "pred", subset, name, predicted)
