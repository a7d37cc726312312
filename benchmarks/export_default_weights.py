"""Export trained checkpoints as the shipped default weights (fp16) and check that fp16 keeps accuracy.

Usage::

    python benchmarks/export_default_weights.py \\
        --adam runs/adam-synthetic/checkpoints/step-00000900.safetensors \\
        --msgvim runs/msgvim-synthetic/checkpoints/step-00000800.safetensors

Writes ``src/vidmatte/weights/{adam-default,adam-fast,msgvim-default}.safetensors`` (``--adam-fast``: an
``adam-fast`` checkpoint): in fp16 when that keeps the alphas
within ``--tolerance`` 8-bit levels on average of the fp32 checkpoint's on a held-out synthetic clip (a seed
never used in training), else in fp32. Prints the file size and the difference measured.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vidmatte import load_model
from vidmatte.data.synthetic.clips import ClipSpec, generate_clip
from vidmatte.inference.adam import AdamSession
from vidmatte.inference.msgvim import MsgVimSession
from vidmatte.io.guidance import union_of_others
from vidmatte.models.loading import DEFAULT_WEIGHTS, WEIGHTS_FOLDER, read_metadata, save_weights

HELD_OUT_SEED = 987_654_321


def adam_alphas(model: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    session = AdamSession(model)
    return np.stack([session.step(frame)[0][0, 0].numpy() for frame in frames])


def msgvim_alphas(model: torch.nn.Module, frames: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    targets = alphas > 0.5
    return MsgVimSession(model)(frames.astype(np.float32) / 255, targets, union_of_others(targets))


def export(name: str, checkpoint: Path, run, tolerance: float) -> None:
    filename, model_name = DEFAULT_WEIGHTS[name]
    recorded = read_metadata(checkpoint).get("model")
    if recorded != model_name:
        raise SystemExit(f"{checkpoint}: weights of {recorded}, but {name} is {model_name}")
    path = save_weights(load_model(checkpoint), WEIGHTS_FOLDER / filename, model_name, dtype=torch.float16)
    full, half = run(load_model(checkpoint)), run(load_model(name))
    levels = np.abs(full - half) * 255
    kept = "fp16"
    if levels.mean() > tolerance:
        save_weights(load_model(checkpoint), path, model_name)
        kept = "fp32"
    print(
        f"{name}: {path} ({path.stat().st_size / 2**20:.1f} MiB, {kept}) | fp16 vs fp32 alpha: "
        f"mean {levels.mean():.4f}, max {levels.max():.2f} levels of 255"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adam", type=Path, help="AdaM checkpoint (adam-mnv2)")
    parser.add_argument("--adam-fast", type=Path, help="AdaM checkpoint (adam-fast)")
    parser.add_argument("--msgvim", type=Path, help="MSG-VIM checkpoint (msgvim-small)")
    parser.add_argument("--tolerance", type=float, default=0.1, help="mean 8-bit levels fp16 may change")
    args = parser.parse_args()
    clip = generate_clip(HELD_OUT_SEED, ClipSpec(frames=8, width=256, height=144, instances=(2, 3)))
    frames = (clip.com * 255 + 0.5).astype(np.uint8)
    if args.adam:
        export("adam-default", args.adam, lambda model: adam_alphas(model, frames), args.tolerance)
    if args.adam_fast:
        export("adam-fast", args.adam_fast, lambda model: adam_alphas(model, frames), args.tolerance)
    if args.msgvim:
        export("msgvim-default", args.msgvim, lambda m: msgvim_alphas(m, frames, clip.alphas), args.tolerance)


if __name__ == "__main__":
    main()
