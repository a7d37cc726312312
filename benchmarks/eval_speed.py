"""Throughput of ``vidmatte eval`` against the usual numpy + OpenCV evaluator, with equal numbers.

Usage: ``python benchmarks/eval_speed.py [--clips 4] [--frames 50] [--hr-frames 10] [--workers 2]``

Generates a synthetic VM-layout benchmark (512x288, and 1920x1080 for the hr protocol) with the
project's generator, a perturbed copy as the prediction, then times both evaluators on all metrics
and checks that their overall numbers agree to 1e-4. The baseline reads frames with OpenCV and scores
them with ``reference_metrics`` in a thread pool over clips, as the published evaluation script does.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import reference_metrics as ref

from vidmatte.data.perturb import write_perturbed_benchmark
from vidmatte.metrics.runner import PROTOCOL_METRICS, evaluate_folders


def baseline_clip(pred_dir: Path, true_dir: Path, metrics: tuple[str, ...], protocol: str) -> dict[str, list]:
    values: dict[str, list] = {m: [] for m in metrics}
    previous = None
    for i, name in enumerate(sorted(os.listdir(true_dir / "pha"))):
        true = cv2.imread(str(true_dir / "pha" / name), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        pred = cv2.imread(str(pred_dir / "pha" / name), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        values["pha_mad"].append(ref.mad(pred, true))
        values["pha_mse"].append(ref.mse(pred, true))
        values["pha_grad"].append(ref.grad(pred, true, normalize=protocol == "lr"))
        if "pha_conn" in metrics:
            values["pha_conn"].append(ref.conn(pred, true))
        values["pha_dtssd"].append(0.0 if i == 0 else ref.dtssd(pred, previous[0], true, previous[1]))
        previous = (pred, true)
        true_fgr = cv2.imread(str(true_dir / "fgr" / name), cv2.IMREAD_COLOR).astype(np.float32) / 255
        pred_fgr = cv2.imread(str(pred_dir / "fgr" / name), cv2.IMREAD_COLOR).astype(np.float32) / 255
        if "fgr_mad" in metrics:
            values["fgr_mad"].append(ref.fgr_mad(pred_fgr, true_fgr, true))
        values["fgr_mse"].append(ref.fgr_mse(pred_fgr, true_fgr, true))
    return values


def baseline(pred: Path, true: Path, protocol: str, threads: int) -> dict[str, float]:
    metrics = PROTOCOL_METRICS[protocol]
    clips = [p.parent.relative_to(true) for p in sorted(true.glob("*/*/pha"))]
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda c: baseline_clip(pred / c, true / c, metrics, protocol), clips))
    return {m: float(np.mean([v for r in results for v in r[m]])) for m in metrics}


def run(root: Path, protocol: str, workers: int) -> None:
    pred, true = root / "pred", root / "true"
    frames = sum(1 for _ in true.glob("*/*/pha/*.png"))
    start = time.perf_counter()
    expected = baseline(pred, true, protocol, threads=workers)
    base_seconds = time.perf_counter() - start
    evaluate_folders(pred, true, protocol=protocol, workers=workers)  # compile / load numba kernels
    start = time.perf_counter()
    ours = evaluate_folders(pred, true, protocol=protocol, workers=workers).overall
    ours_seconds = time.perf_counter() - start
    for metric, value in expected.items():
        assert math.isclose(ours[metric], value, rel_tol=1e-4, abs_tol=1e-6), (metric, ours[metric], value)
    print(
        f"{protocol}: {frames} frames, numbers equal to 1e-4 | baseline {frames / base_seconds:7.1f} fps | "
        f"vidmatte {frames / ours_seconds:7.1f} fps | speed-up {base_seconds / ours_seconds:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--hr-frames", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lr, hr = Path(tmp, "lr"), Path(tmp, "hr")
        write_perturbed_benchmark(lr, clips=args.clips, frames=args.frames, size=(512, 288), seed=1)
        write_perturbed_benchmark(hr, clips=2, frames=args.hr_frames, size=(1920, 1080), seed=2)
        run(lr, "lr", args.workers)
        run(hr, "hr", args.workers)


if __name__ == "__main__":
    main()
