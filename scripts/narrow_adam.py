"""Start a narrower AdaM (``adam-fast``) from trained ``adam-mnv2`` weights, for fine-tuning.

Usage: ``python scripts/narrow_adam.py OUT.safetensors [--wide adam-default] [--model adam-fast]
[--clips 8] [--backgrounds DIR ...]``

The wide network mattes ``--clips`` synthetic clips (4 frames of 256x144, 1-3 people, seed 5000 on:
never a training or benchmark seed); each narrower decoder width keeps the channels that carry the most
on them (:func:`vidmatte.training.narrow.narrow_adam`). Every other weight is copied. The file records
the model's name, so a training config's ``init:`` reads it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vidmatte import build_model, load_model
from vidmatte.data.synthetic.clips import ClipSpec, generate_clip
from vidmatte.models.loading import save_weights
from vidmatte.training.narrow import narrow_adam

SEED = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--wide", default="adam-default", help="weights name or file of an adam-mnv2")
    parser.add_argument("--model", default="adam-fast")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--backgrounds", nargs="*", default=[], help="folders of real photographs")
    args = parser.parse_args()
    spec = ClipSpec(frames=4, width=256, height=144, instances=(1, 3), backgrounds=tuple(args.backgrounds))
    clips = [generate_clip(SEED + index, spec).com for index in range(args.clips)]
    frames = torch.from_numpy(np.stack(clips)).permute(0, 1, 4, 2, 3).contiguous()
    narrow = build_model(args.model)
    narrow_adam(load_model(args.wide), narrow, frames)
    print(save_weights(narrow, args.out, args.model))


if __name__ == "__main__":
    main()
