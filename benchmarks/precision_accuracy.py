"""Held-out accuracy of AdaM's faster settings and networks beside float32: bfloat16 autocast, fewer memory
entries, cheaper networks (``adam-fast``).

Usage (from the repository root): ``python -m benchmarks.precision_accuracy [--out precision_out]
[--clips 6] [--frames 30] [--ratios 0.5 auto] [--capacities 4 2] [--models adam-default [FILE ...]]``

Generates the VM-layout benchmark of ``results.py`` (512x288, the seed never used in training) and mattes
it online with each precision (``fp32``, ``bf16``), short-term memory size ``N`` (``--capacities``; the
model is trained with 4) and network ratio: 0.5 as ``results.py`` (the 256x144 scale of training, the
guided filter back to 512x288) and ``auto`` as ``vidmatte matte`` runs 512x288 frames (ratio 1). Each
row prints MAD, MSE, Grad, Conn and dtSSD and, per metric, the change from float32 with ``N = 4`` at
the same ratio (positive: worse); with several ``--models`` (weights names or files), the reference is the
first model's. Networks are prepared as ``vidmatte matte`` prepares them (``prepare_network``: BatchNorms
folded, channels-last) and get the frames as uint8, as decoded. A speed setting is acceptable when no
metric worsens by more than 2%.
"""

from __future__ import annotations

import argparse
import copy
import functools
import itertools
import json
import tempfile
from pathlib import Path

from benchmarks.results import ADAM_METRICS, SEED, online, vm_scores
from vidmatte import load_model
from vidmatte.data.synthetic.clips import ClipSpec
from vidmatte.data.synthetic.folders import write_synthetic_set
from vidmatte.inference.torch_engine import prepare_network

PRECISIONS = ("fp32", "bf16")


def parse_ratio(text: str) -> float | None:
    """``"auto"`` -> ``None`` (the session's automatic ratio), else a float."""
    return None if text == "auto" else float(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the clips and mattes here")
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--ratios", nargs="+", default=["0.5", "auto"])
    parser.add_argument("--capacities", nargs="+", type=int, default=[4, 2])
    parser.add_argument("--models", nargs="+", default=["adam-default"], help="weights names or files")
    parser.add_argument("--json", type=Path, help="write the scores here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.out or Path(scratch)
        true = root / "vm"
        write_synthetic_set(true, "vm", args.clips, ClipSpec(frames=args.frames), SEED, workers=1)
        models = {name: prepare_network(load_model(name)) for name in args.models}  # as the engine runs them
        rows = []
        for ratio in args.ratios:
            reference = None
            for (name, model), capacity in itertools.product(models.items(), args.capacities):
                variant = copy.deepcopy(model)
                variant.memory_capacity = capacity
                for precision in PRECISIONS:
                    matte = functools.partial(online, variant, precision=precision, ratio=parse_ratio(ratio))
                    pred = root / f"pred-{len(rows)}"
                    scores = vm_scores(matte, true, pred)
                    reference = reference or scores  # the first: the first model in float32, first capacity
                    change = {m: 100 * (scores[m] / reference[m] - 1) for m in ADAM_METRICS}
                    setting = {"model": name, "ratio": ratio, "capacity": capacity, "precision": precision}
                    rows.append(setting | {"scores": scores, "change_percent": change})
                    print(
                        f"{name}, ratio {ratio}, N = {capacity}, {precision}: "
                        + ", ".join(f"{m} {scores[m]:.3f} ({change[m]:+.2f}%)" for m in ADAM_METRICS),
                        flush=True,
                    )
    if args.json:
        args.json.write_text(json.dumps({"seed": SEED, "clips": args.clips, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
