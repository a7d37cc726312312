"""Size and CPU speed of MSG-VIM, and the speed of the VIMQ evaluator.

Usage (from the repository root): ``python -m benchmarks.msgvim_speed
[--models msgvim-default msgvim-r34 msgvim-small msgvim-tiny] [--size 512x288] [--chunk 10]
[--people 1 2 4] [--precisions fp32 bf16] [--rounds 3] [--train-size 256x256] [--train-clip 2x4]
[--vimq-size 1920x1080] [--vimq-instances 4] [--parts inference training vimq] [--threads N]
[--json OUT.json]``

Reports, per model (``msgvim-default`` is the shipped weights, other names random weights): its
parameter count; the frames per second of inference through :class:`MsgVimSession` for a video with
1, 2 and 4 people (``--people``: one chunk of ``--chunk`` frames with every person's guidance, the
reference's 32-pixel margin) in each of ``--precisions`` (``bf16``: bfloat16 autocast around the
session, as :meth:`TorchEngine.msgvim_chunks` runs it), the models, precisions and people counts timed
in turns for ``--rounds`` rounds (median), each later precision also as its time per round over the
first's (:class:`~benchmarks.interleave.Ratio`); and the time of one training step (forward and
backward of the three outputs) on a ``BxT`` clip of ``--train-size`` crops. Then the time of
:func:`vidmatte.metrics.vimq.frame_statistics` for one frame of ``--vimq-instances`` ground-truth and
predicted instances, with and without dtSSD.
Inputs are random: the cost does not depend on them. Training and VIMQ times are the best of
``--repeats`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.interleave import Ratio, interleaved_ms
from vidmatte import build_model
from vidmatte.inference.adam import autocast
from vidmatte.inference.msgvim import MsgVimSession
from vidmatte.inference.torch_engine import prepare_network
from vidmatte.io.guidance import union_of_others
from vidmatte.io.jsonfile import write_json
from vidmatte.metrics.vimq import frame_statistics
from vidmatte.models.loading import DEFAULT_WEIGHTS, load_model
from vidmatte.models.precision import Precision

PARTS = ("inference", "training", "vimq")
CPU_PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")  # autocast runs fp16 on GPUs


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


def load(name: str) -> torch.nn.Module:
    """The shipped weights for ``*-default`` names, else a configuration with random weights, prepared for
    inference."""
    return prepare_network(load_model(name) if name in DEFAULT_WEIGHTS else build_model(name))


def chunk_matter(
    model: torch.nn.Module, width: int, height: int, chunk: int, people: int, precision: Precision = "fp32"
) -> Callable[[], object]:
    """One call mattes one chunk of ``chunk`` frames with ``people`` people through a session, in
    ``precision``."""
    session = MsgVimSession(model)
    rng = np.random.default_rng(0)
    rgb = rng.random((chunk, height, width, 3), dtype=np.float32)
    targets = np.zeros((people, chunk, height, width), bool)
    for person in range(people):  # side by side, as people in a frame
        targets[person, :, :, person * width // people : (person + 1) * width // people] = True
    references = union_of_others(targets)

    def matte() -> np.ndarray:
        with autocast(torch.device("cpu"), precision):
            return session(rgb, targets, references)

    return matte


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
    parser.add_argument(
        "--models", nargs="+", default=["msgvim-default", "msgvim-r34", "msgvim-small", "msgvim-tiny"]
    )
    parser.add_argument("--size", type=parse_pair, default=(512, 288), help="inference frame size WxH")
    parser.add_argument("--chunk", type=int, default=10, help="frames per inference chunk")
    parser.add_argument("--people", type=int, nargs="+", default=[1, 2, 4], help="people in the video")
    parser.add_argument(
        "--precisions", nargs="+", default=["fp32"], choices=CPU_PRECISIONS, help="inference precisions"
    )
    parser.add_argument("--rounds", type=int, default=3, help="inference chunks timed per contender")
    parser.add_argument("--train-size", type=parse_pair, default=(256, 256), help="training crop WxH")
    parser.add_argument("--train-clip", type=parse_pair, default=(2, 4), help="training clip BxT")
    parser.add_argument("--vimq-size", type=parse_pair, default=(1920, 1080), help="VIMQ frame size WxH")
    parser.add_argument("--vimq-instances", type=int, default=4, help="instances on each side for VIMQ")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS, help="what to measure")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the results as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    results: dict[str, dict[str, float]] = {}
    width, height = args.size
    models = {name: load(name) for name in args.models}
    for name, model in models.items():
        results[name] = {"parameters": sum(p.numel() for p in model.parameters())}
        print(f"{name}: {results[name]['parameters'] / 1e6:.2f} M parameters", flush=True)
    if "inference" in args.parts:
        contenders = {
            (name, precision, people): chunk_matter(model, width, height, args.chunk, people, precision)
            for name, model in models.items()
            for people in args.people
            for precision in args.precisions
        }
        for run in contenders.values():  # warm-up
            run()
        times = interleaved_ms(contenders, args.rounds)
        for (name, precision, people), chunk_ms in times.items():
            frame_ms = statistics.median(chunk_ms) / args.chunk
            key = f"fps_{people}_people" + ("" if precision == "fp32" else f"_{precision}")
            results[name][key] = 1e3 / frame_ms
            ratio = ""
            if precision != args.precisions[0]:
                first = times[name, args.precisions[0], people]
                ratio = f", time over {args.precisions[0]}: {Ratio.of(chunk_ms, first)}"
            print(
                f"{name} {precision} at {width}x{height}, {people} {'person' if people == 1 else 'people'}: "
                f"{1e3 / frame_ms:.2f} fps "
                f"({frame_ms:.0f} ms per frame, {frame_ms / people:.0f} ms per frame and person{ratio})",
                flush=True,
            )
    if "training" in args.parts:
        for name in args.models:
            step = train_step_seconds(name, *args.train_size, *args.train_clip, args.repeats)
            results[name]["train_step_s"] = step
            print(
                f"{name}: training step {args.train_clip[0]}x{args.train_clip[1]} clips of "
                f"{args.train_size[0]}x{args.train_size[1]}: {step:.2f} s",
                flush=True,
            )
    if "vimq" in args.parts:
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
        write_json(args.json, results, indent=2)


if __name__ == "__main__":
    main()
