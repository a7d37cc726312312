"""Does AdaM keep every person of the demo clip to its last frame? Per-frame IoU on demo clips.

Usage (from the repository root): ``python -m benchmarks.demo_people [--seeds 0 1 2 3] [--size WxH]
[--json OUT]``

Runs ``vidmatte demo`` (:func:`vidmatte.demo.run_demo`, the shipped default weights) on the default clip
(seed 0) and on other seeds, at the demo's size (``--size``: another), and for each clip reports the IoU,
on every frame, of AdaM's ``alpha > 0.5`` with the ground truth's ``alpha > 0.5`` (the minimum over frames,
the aim being 0.7 or more), and the demo's own metrics (AdaM MAD, MSG-VIM VIMQ_mse).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.adam_speed import parse_size
from benchmarks.real_footage import iou
from vidmatte.demo import run_demo
from vidmatte.io.frames import list_frames, read_grey_u8
from vidmatte.io.jsonfile import write_json


def frame_ious(prediction: Path, truth: Path) -> list[float]:
    pairs = zip(list_frames(prediction), list_frames(truth), strict=True)
    return [iou(read_grey_u8(predicted) > 127, read_grey_u8(true) > 127) for predicted, true in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--size", type=parse_size, help="frame size WxH (default: the demo's)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as folder:
            run_demo(folder, seed=seed, progress=False, **({"size": args.size} if args.size else {}))
            ious = frame_ious(Path(folder) / "adam" / "pha", Path(folder) / "truth" / "adam" / "pha")
            metrics = json.loads((Path(folder) / "metrics.json").read_text())
        results[seed] = {
            "min_iou": min(ious),
            "mean_iou": float(np.mean(ious)),
            "ious": ious,
            "metrics": metrics,
        }
        print(
            f"seed {seed}: IoU min {min(ious):.3f} mean {np.mean(ious):.3f} | {json.dumps(metrics)}",
            flush=True,
        )
    if args.json:
        write_json(args.json, results, indent=2)


if __name__ == "__main__":
    main()
