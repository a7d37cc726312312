"""The usual numpy + OpenCV formulation of the VM benchmark metrics: the baseline for speed and equality.

This is how the published evaluation computes each frame (OpenCV ``normalize``, ``filter2D`` with a
full 9x9 kernel, ``connectedComponentsWithStats`` once per threshold, numpy elsewhere), written here
from the definitions so that ``vidmatte.metrics.alpha`` can be checked number for number and timed
against it. It needs ``opencv-python-headless`` (a development dependency, not a library one).
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def mad(pred, true):
    return np.abs(pred - true).mean() * 1e3


def mse(pred, true):
    return ((pred - true) ** 2).mean() * 1e3


def gaussian_kernel_2d(sigma=1.4, epsilon=1e-2):
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    size = 2 * half + 1
    kernel = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            gi = math.exp(-((i - half) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
            gj = math.exp(-((j - half) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
            kernel[i, j] = gi * (-(j - half) * gj / sigma**2)
    kernel /= np.sqrt((kernel**2).sum())
    return kernel, kernel.T


KERNEL_X, KERNEL_Y = gaussian_kernel_2d()


def grad(pred, true, normalize=True):
    def magnitude(image):
        if normalize:
            normed = np.zeros_like(image)
            cv2.normalize(image, normed, 1.0, 0.0, cv2.NORM_MINMAX)
            image = normed
        gx = cv2.filter2D(image, -1, KERNEL_X, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.filter2D(image, -1, KERNEL_Y, borderType=cv2.BORDER_REPLICATE)
        return np.sqrt(gx**2 + gy**2).astype(np.float32)

    return ((magnitude(true) - magnitude(pred)) ** 2).sum() / 1000


def conn(pred, true, step=0.1):
    thresholds = np.arange(0, 1 + step, step)
    round_down = -np.ones_like(true)
    for i in range(1, len(thresholds)):
        both = ((true >= thresholds[i]) & (pred >= thresholds[i])).astype(np.uint8)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(both, connectivity=4)
        sizes = stats[1:, cv2.CC_STAT_AREA]
        omega = np.zeros_like(true)
        if len(sizes):
            omega[labels == np.argmax(sizes) + 1] = 1
        round_down[(round_down == -1) & (omega == 0)] = thresholds[i - 1]
    round_down[round_down == -1] = 1
    true_diff = true - round_down
    pred_diff = pred - round_down
    true_phi = 1 - true_diff * (true_diff >= 0.15)
    pred_phi = 1 - pred_diff * (pred_diff >= 0.15)
    return np.sum(np.abs(true_phi - pred_phi)) / 1000


def dtssd(pred, pred_prev, true, true_prev):
    diff = ((pred - pred_prev) - (true - true_prev)) ** 2
    return np.sqrt(np.sum(diff) / true.size) * 1e2


def fgr_mad(pred_fgr, true_fgr, true_pha):
    mask = true_pha > 0
    return mad(pred_fgr[mask], true_fgr[mask])


def fgr_mse(pred_fgr, true_fgr, true_pha):
    mask = true_pha > 0
    return mse(pred_fgr[mask], true_fgr[mask])
