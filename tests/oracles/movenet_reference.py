"""MoveNet MultiPose's reference: the images, the original graph's outputs on them, the tolerances.

Imported by ``tests/test_movenet.py``, ``scripts/convert_movenet.py`` and
``scripts/capture_movenet_reference.py`` (which runs the original graph in a separate TensorFlow
environment), so all three see the very same pixels; it needs numpy, Pillow and scikit-image alone.
Every image is ``(H, W, 3)`` uint8 RGB with sides that are multiples of 32, fed to the network as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "movenet_multipose"
# Frame 100 of OpenCV's vtest.avi (Debian opencv-doc 4.6.0), pixels [96:288, 256:640]: six pedestrians.
VTEST_CROP = FIXTURES / "vtest_frame100_crop.png"
REFERENCE_OUTPUTS = FIXTURES / "reference_outputs.npz"
# Largest allowed |rebuilt - original| over the six people of every image:
POSITION_TOLERANCE = 1e-4  # keypoint and box coordinates, normalised to the input's height and width
SCORE_TOLERANCE = 1e-4  # keypoint and person scores, in [0, 1]
KEYPOINT_COLUMNS = 51  # 17 x (y, x, score), then ymin, xmin, ymax, xmax, person score
CROWD_GRID = (3, 4)  # rows, columns of small astronauts: twelve people, more than the six MoveNet returns
CROWD_SHRINK = 4  # each astronaut is the 512x512 photo averaged over 4x4 blocks: 128x128


def astronaut() -> np.ndarray:
    """``skimage.data.astronaut()``: one person, ``(512, 512, 3)``."""
    return data.astronaut()


def crowd() -> np.ndarray:
    """Twelve small astronauts in a 3x4 grid, ``(384, 512, 3)``."""
    photo = data.astronaut().astype(np.float64)
    size = photo.shape[0] // CROWD_SHRINK
    small = photo.reshape(size, CROWD_SHRINK, size, CROWD_SHRINK, 3).mean(axis=(1, 3))
    tile = np.round(small).astype(np.uint8)
    rows, columns = CROWD_GRID
    return np.tile(tile, (rows, columns, 1))


def vtest_crop() -> np.ndarray:
    """Six pedestrians of ``vtest.avi`` at the video's own resolution, ``(192, 384, 3)``."""
    return np.asarray(Image.open(VTEST_CROP).convert("RGB"))


def flat_grey() -> np.ndarray:
    """An empty scene: one grey level, ``(256, 320, 3)``."""
    return np.full((256, 320, 3), 128, np.uint8)


def reference_images() -> dict[str, np.ndarray]:
    """Every image above by name (the keys of the reference outputs file)."""
    return {"astronaut": astronaut(), "crowd": crowd(), "vtest_crop": vtest_crop(), "flat_grey": flat_grey()}


def load_reference_outputs() -> dict[str, np.ndarray]:
    """The original graph's output ``(1, 6, 56)`` float32 for each image of :func:`reference_images`."""
    with np.load(REFERENCE_OUTPUTS) as stored:
        return {name: stored[name] for name in stored.files}


def output_differences(outputs: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Largest ``|outputs - reference|`` of positions (keypoints' y, x and boxes) and of scores.

    Args:
        outputs, reference: ``(1, 6, 56)`` MoveNet MultiPose outputs.
    """
    difference = np.abs(outputs.astype(np.float64) - reference)
    keypoints = difference[..., :KEYPOINT_COLUMNS].reshape(*difference.shape[:-1], -1, 3)
    positions = max(keypoints[..., :2].max(), difference[..., KEYPOINT_COLUMNS:-1].max())
    scores = max(keypoints[..., 2].max(), difference[..., -1].max())
    return float(positions), float(scores)
