"""Size and CPU speed of MSG-VIM, and the speed of the VIMQ evaluator.

Usage: ``python benchmarks/msgvim_speed.py [--models msgvim-r34 msgvim-small msgvim-tiny]
[--size 512x288] [--chunk 10] [--instances 2] [--train-size 256x256] [--train-clip 2x4]
[--vimq-size 1920x1080] [--vimq-instances 4] [--threads N] [--json OUT.json]``

Reports, per model: its parameter count; the time of one chunk of inference through
:class:`MsgVimSession` (``--instances`` instances of ``--chunk`` frames, batched, with the reference's
32-pixel margin), per frame and instance; and the time of one training step (forward and backward of
the three outputs) on a ``BxT`` clip of ``--train-size`` crops. Then the time of
:func:`vidmatte.metrics.vimq.frame_statistics` for one frame of ``--vimq-instances`` ground-truth
and predicted instances, with and without dtSSD. Inputs are random: the cost does not depend on them.
Each time is the best of ``--repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import torch

from vidmatte import build_model
from vidmatte.inference.msgvim import MsgVimSession
from vidmatte.metrics.vimq import frame_statistics


def parse_pair(text: str) -> tuple[int, int]:
    """``"512x288"`` -> ``(512, 288)``."""
    first, second = (int(v) for v in text.lower().split("x"))
    return first, second


def best_time(run: Callable[[], object], repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls, after one untimed call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def inference_seconds(name: str, width: int, height: int, chunk: int, instances: int, repeats: int) -> float:
    """Seconds of one chunk of ``chunk`` frames and ``instances`` instances through a session."""
    session = MsgVimSession(build_model(name))
    rng = np.random.default_rng(0)
    rgb = rng.random((chunk, height, width, 3), dtype=np.float32)
    targets = rng.random((instances, chunk, height, width)) > 0.5
    return best_time(lambda: session(rgb, targets, ~targets), repeats)


def train_step_seconds(name: str, width: int, height: int, batch: int, frames: int, repeats: int) -> float:
    """Seconds of a forward and backward pass of the three outputs on a ``(batch, frames)`` clip."""
    model = build_model(name).train()
    rgb = torch.rand(batch, frames, 3, height, width)
    masks = (torch.rand(batch, frames, 2, height, width) > 0.5).float()

    def step() -> None:
        model.zero_grad()
        out = model(rgb, masks[:, :, :1], masks[:, :, 1:])
        sum((a - masks).abs().mean() for a in (out.alpha_os1, out.alpha_os4, out.alpha_os8)).backward()

    return best_time(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["msgvim-r34", "msgvim-small", "msgvim-tiny"])
    parser.add_argument("--size", type=parse_pair, default=(512, 288), help="inference frame size WxH")
    parser.add_argument("--chunk", type=int, default=10, help="frames per inference chunk")
    parser.add_argument("--instances", type=int, default=2, help="instances per inference chunk")
    parser.add_argument("--train-size", type=parse_pair, default=(256, 256), help="training crop WxH")
    parser.add_argument("--train-clip", type=parse_pair, default=(2, 4), help="training clip BxT")
    parser.add_argument("--vimq-size", type=parse_pair, default=(1920, 1080), help="VIMQ frame size WxH")
    parser.add_argument("--vimq-instances", type=int, default=4, help="instances on each side for VIMQ")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the results as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, dict[str, float]] = {}
    width, height = args.size
    for name in args.models:
        parameters = sum(p.numel() for p in build_model(name).parameters())
        chunk = inference_seconds(name, width, height, args.chunk, args.instances, args.repeats)
        step = train_step_seconds(name, *args.train_size, *args.train_clip, args.repeats)
        results[name] = {
            "parameters": parameters,
            "inference_ms_per_frame_instance": chunk / (args.chunk * args.instances) * 1e3,
            "train_step_s": step,
        }
        print(
            f"{name}: {parameters / 1e6:.2f} M parameters; inference {width}x{height}: "
            f"{results[name]['inference_ms_per_frame_instance']:.0f} ms per frame and instance; "
            f"training step {args.train_clip[0]}x{args.train_clip[1]} clips of "
            f"{args.train_size[0]}x{args.train_size[1]}: {step:.2f} s",
            flush=True,
        )
    vimq_width, vimq_height = args.vimq_size
    rng = np.random.default_rng(0)
    true = rng.random((args.vimq_instances, vimq_height, vimq_width), dtype=np.float32)
    pred = rng.random((args.vimq_instances, vimq_height, vimq_width), dtype=np.float32)
    with_dtssd = best_time(lambda: frame_statistics(true, pred, true, pred), args.repeats)
    without = best_time(lambda: frame_statistics(true, pred), args.repeats)
    results["vimq"] = {"frame_s_with_dtssd": with_dtssd, "frame_s_without_dtssd": without}
    pairs = args.vimq_instances**2
    print(
        f"VIMQ statistics of one {vimq_width}x{vimq_height} frame, {pairs} instance pairs: "
        f"{with_dtssd:.3f} s with dtSSD, {without:.3f} s without"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
