"""Average the weights of runs of one network (a "model soup"), for runs fine-tuned from one checkpoint.

Usage: ``python scripts/average_weights.py OUT.safetensors A.safetensors:0.75 B.safetensors:0.25``

Each input is a weights file of the same registry network, with its share after the colon (the shares
must add up to 1). Floating-point tensors (BatchNorm statistics included) are averaged with those shares;
integer ones (BatchNorm step counts) are taken from the first file. The output records the network's name.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from vidmatte import load_model
from vidmatte.models.loading import MODEL_KEY, read_metadata, save_weights


def share(text: str) -> tuple[Path, float]:
    """``"FILE:0.25"`` -> ``(FILE, 0.25)``."""
    path, _, fraction = text.rpartition(":")
    return Path(path), float(fraction)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("inputs", nargs="+", type=share, help="FILE:SHARE")
    args = parser.parse_args()
    if not math.isclose(sum(s for _, s in args.inputs), 1.0):
        raise SystemExit(f"the shares add up to {sum(s for _, s in args.inputs)}, not 1")
    names = {read_metadata(path).get(MODEL_KEY) for path, _ in args.inputs}
    if len(names) != 1 or None in names:
        raise SystemExit(f"the inputs hold different or unnamed networks: {sorted(map(str, names))}")
    (first, _), name = args.inputs[0], names.pop()
    model = load_model(first)
    states = [(load_model(path).state_dict(), fraction) for path, fraction in args.inputs]
    averaged = {
        key: sum(s[key] * fraction for s, fraction in states) if tensor.is_floating_point() else tensor
        for key, tensor in model.state_dict().items()
    }
    model.load_state_dict(averaged)
    print(save_weights(model, args.out, name))


if __name__ == "__main__":
    main()
