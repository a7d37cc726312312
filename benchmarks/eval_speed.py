"""Throughput of ``vidmatte eval`` against the usual numpy + OpenCV evaluator, with equal numbers.

Usage (from the repository root): ``python -m benchmarks.eval_speed [--clips 4] [--frames 50]
[--hr-frames 10] [--workers 2] [--protocols lr hr] [--fresh]``

Generates a synthetic VM-layout benchmark (512x288, and 1920x1080 for the hr protocol) with the
project's generator, a perturbed copy as the prediction, then times both evaluators on all metrics
and checks that their overall numbers agree to 1e-4. The baseline reads frames with OpenCV and scores
them with ``tests/oracles/reference_metrics.py`` in a thread pool over clips, as the published evaluation
script does.
A second line per protocol times the metric kernels alone on frames already decoded (one thread), which
separates the arithmetic from the PNG decoding that both evaluators pay alike.

``--fresh`` also times each evaluator as a user meets it, each run in a new process (start-up,
imports and numba's kernels included): the baseline, then ``vidmatte eval`` on a fresh copy of the
package without numba's cache (the first run after installing), then again (warm: the cache written
by the first run).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

import vidmatte
from tests.oracles import reference_metrics as ref
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


def fresh_seconds(command: list[str], environment: dict[str, str] | None = None) -> float:
    """Wall time of ``command`` in a new process."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=environment)
    return time.perf_counter() - start


def fresh_runs(root: Path, protocol: str, workers: int) -> None:
    """The baseline and ``vidmatte eval`` (first run after installing, then warm), each in a new process."""
    pred, true = root / "pred", root / "true"
    frames = sum(1 for _ in true.glob("*/*/pha/*.png"))
    base = fresh_seconds(
        [sys.executable, "-m", __spec__.name, "--baseline", str(pred), str(true), protocol, str(workers)]
    )
    with tempfile.TemporaryDirectory() as site:
        # a fresh install: the package's files without the numba cache that earlier runs wrote beside them
        shutil.copytree(
            Path(vidmatte.__file__).parent,
            Path(site, "vidmatte"),
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        environment = {**os.environ, "PYTHONPATH": site}
        command = [sys.executable, "-m", "vidmatte.cli", "eval", "--pred", str(pred), "--true", str(true)]
        command += ["--protocol", protocol, "--workers", str(workers)]
        first, warm = fresh_seconds(command, environment), fresh_seconds(command, environment)
    print(
        f"{protocol}: {frames} frames, each evaluator in a new process | baseline {base:5.2f} s | vidmatte "
        f"first run after installing {first:5.2f} s ({base / first:.1f}x), "
        f"warm {warm:5.2f} s ({base / warm:.1f}x)"
    )


def run(root: Path, protocol: str, workers: int, fresh: bool) -> None:
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
    if fresh:
        fresh_runs(root, protocol, workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--hr-frames", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--protocols", nargs="+", default=["lr", "hr"], choices=["lr", "hr"])
    parser.add_argument("--fresh", action="store_true", help="also time each evaluator in a new process")
    parser.add_argument(
        "--baseline", nargs=4, metavar=("PRED", "TRUE", "PROTOCOL", "WORKERS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.baseline:  # a child of --fresh
        pred, true, protocol, workers = args.baseline
        baseline(Path(pred), Path(true), protocol, int(workers))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if "lr" in args.protocols:
            lr = Path(tmp, "lr")
            write_perturbed_benchmark(lr, clips=args.clips, frames=args.frames, size=(512, 288), seed=1)
            run(lr, "lr", args.workers, args.fresh)
        if "hr" in args.protocols:
            hr = Path(tmp, "hr")
            write_perturbed_benchmark(hr, clips=2, frames=args.hr_frames, size=(1920, 1080), seed=2)
            run(hr, "hr", args.workers, args.fresh)


if __name__ == "__main__":
    main()
