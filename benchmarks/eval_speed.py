"""Throughput of ``vidmatte eval`` against the usual numpy + OpenCV evaluator, with equal numbers.

Usage: ``python benchmarks/eval_speed.py [--clips 4] [--frames 50] [--hr-frames 10] [--workers 2]``

Generates a synthetic VM-layout benchmark (512x288, and 1920x1080 for the hr protocol) with the
project's generator, a perturbed copy as the prediction, then times both evaluators on all metrics
and checks that their overall numbers agree to 1e-4. The baseline reads frames with OpenCV and scores
them with ``reference_metrics`` in a thread pool over clips, as the published evaluation script does.
A second line per protocol times the metric kernels alone on frames already decoded (one thread), which
separates the arithmetic from the PNG decoding that both evaluators pay alike.
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
from vidmatte.io.frames import read_alpha, read_rgb_u8
from vidmatte.metrics import alpha
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


def kernel_seconds(pred: Path, true: Path, protocol: str) -> tuple[int, float, float]:
    """Frames, then seconds of the reference and of vidmatte's kernels on one decoded clip (one thread)."""
    clip = sorted(true.glob("*/*/pha"))[0].parent.relative_to(true)
    names = sorted(os.listdir(true / clip / "pha"))
    pha = [(read_alpha(pred / clip / "pha" / n), read_alpha(true / clip / "pha" / n)) for n in names]
    fgr = [(read_rgb_u8(pred / clip / "fgr" / n), read_rgb_u8(true / clip / "fgr" / n)) for n in names]
    normalize, with_conn = protocol == "lr", "pha_conn" in PROTOCOL_METRICS[protocol]

    def reference() -> None:
        for i, ((p, t), (pf, tf)) in enumerate(zip(pha, fgr, strict=True)):
            ref.mad(p, t), ref.mse(p, t), ref.grad(p, t, normalize=normalize)
            if with_conn:
                ref.conn(p, t)
            if i:
                ref.dtssd(p, pha[i - 1][0], t, pha[i - 1][1])
            pf, tf = pf.astype(np.float32) / 255, tf.astype(np.float32) / 255
            ref.fgr_mse(pf, tf, t)
            if "fgr_mad" in PROTOCOL_METRICS[protocol]:
                ref.fgr_mad(pf, tf, t)

    def ours() -> None:
        for i, ((p, t), (pf, tf)) in enumerate(zip(pha, fgr, strict=True)):
            alpha.mad(p, t), alpha.mse(p, t), alpha.grad(p, t, normalize=normalize)
            if with_conn:
                alpha.conn(p, t)
            if i:
                alpha.dtssd(p, pha[i - 1][0], t, pha[i - 1][1])
            alpha.foreground_errors(pf, tf, t)

    cv2.setNumThreads(1)
    seconds = []
    for score in (reference, ours):
        score()  # warm-up (numba kernels, caches)
        start = time.perf_counter()
        score()
        seconds.append(time.perf_counter() - start)
    cv2.setNumThreads(-1)
    return len(names), seconds[0], seconds[1]


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
    count, ref_seconds, our_seconds = kernel_seconds(pred, true, protocol)
    ref_ms, our_ms = 1e3 * ref_seconds / count, 1e3 * our_seconds / count
    print(
        f"{protocol}: metric kernels alone, decoded frames, 1 thread | baseline {ref_ms:6.1f} ms/frame | "
        f"vidmatte {our_ms:6.1f} ms/frame | speed-up {ref_ms / our_ms:.1f}x"
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
