"""Held-out accuracy of MSG-VIM in bfloat16 autocast beside float32.

Usage (from the repository root): ``python -m benchmarks.msgvim_precision [--out msgvim_precision_out]
[--clips 6] [--frames 30] [--chunk 10] [--msgvim msgvim-default] [--threads N] [--json OUT.json]``

Generates the VIM-layout benchmark of ``results.py`` (256x144, 2 to 4 people, the seed never used in
training) and mattes it through the torch engine as ``vidmatte matte`` runs MSG-VIM (prepared network,
autocast around the session, chunks of ``--chunk`` frames, state reset at each chunk) in ``fp32`` and
``bf16``. Each precision prints the VIMQ scores of ``results.py`` (RQ, TQ, MQ and VIMQ with MSE, MAD
and dtSSD; higher is better) and, per score, its change from float32 (negative: worse), then how far the
bf16 mattes are from the fp32 ones. A precision is acceptable when no score worsens by more than 2%.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.results import SEED, VIM_SCORES, vim_scores, write_vim_benchmark
from vidmatte.inference.engine import EngineSettings, load_engine
from vidmatte.inference.msgvim import CHUNK_SIZE
from vidmatte.io.frames import read_grey_u8
from vidmatte.io.jsonfile import write_json

PRECISIONS = ("fp32", "bf16")


def matte_difference(pred: Path, reference: Path) -> dict[str, float]:
    """Mean and largest ``|pred - reference|`` over every written alpha, in 8-bit levels, and the share of
    pixels that differ."""
    levels = [
        np.abs(read_grey_u8(pred / path.relative_to(reference)).astype(np.int16) - read_grey_u8(path))
        for path in sorted(reference.rglob("*.png"))
    ]
    return {
        "mean_levels": float(np.mean([d.mean() for d in levels])),
        "max_levels": int(max(d.max() for d in levels)),
        "differing_share": float(np.mean([(d > 0).mean() for d in levels])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the clips and mattes here")
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=CHUNK_SIZE, help="frames per chunk")
    parser.add_argument("--msgvim", default="msgvim-default", help="weights name or file")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="write the scores here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = args.out or Path(scratch)
        true = root / "vim"
        write_vim_benchmark(true, args.clips, args.frames, workers=1)
        for precision in PRECISIONS:
            engine = load_engine(EngineSettings("msgvim", args.msgvim, precision=precision))
            scores = vim_scores(engine.msgvim_chunks, true, root / f"pred-{precision}", args.chunk)
            reference = rows.get("fp32", {"scores": scores})["scores"]
            change = {s: 100 * (scores[s] / reference[s] - 1) for s in VIM_SCORES}
            rows[precision] = {"scores": scores, "change_percent": change}
            print(
                f"{args.msgvim} {precision}: "
                + ", ".join(f"{s} {scores[s]:.2f} ({change[s]:+.2f}%)" for s in VIM_SCORES),
                flush=True,
            )
        difference = matte_difference(root / "pred-bf16", root / "pred-fp32")
        print(
            f"bf16 mattes beside fp32: {difference['mean_levels']:.3f} 8-bit levels apart on average, "
            f"{difference['max_levels']} at most; {100 * difference['differing_share']:.2f}% of pixels differ"
        )
    if args.json:
        summary = {"seed": SEED, "clips": args.clips, "frames": args.frames, "chunk": args.chunk}
        write_json(args.json, summary | {"rows": rows, "bf16_beside_fp32": difference}, indent=1)


if __name__ == "__main__":
    main()
