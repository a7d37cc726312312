"""onnxruntime against PyTorch: frames per second of the same sessions on the CPU.

Usage: ``python benchmarks/onnx_speed.py [--adam adam-small] [--msgvim msgvim-small] [--size 512x288]
[--frames 20] [--chunk 10] [--chunks 2] [--instances 2] [--threads N] [--json OUT.json]``

For AdaM, an :class:`AdamSession` over the PyTorch network (float32, channels-last, its default) and
one over the exported step graph (:class:`~vidmatte.inference.onnx_backend.OnnxAdam`) each matte
``--frames`` frames after a warm-up that fills the memory (frame 0 plus ``N`` frames), beside RVM's
network (``peers/rvm.py``) exported too and run in onnxruntime at its downsample ratio for the size;
``onnxruntime_time_over_rvm`` is AdaM's time in onnxruntime over RVM's. For MSG-VIM, a
:class:`MsgVimSession` over each runs chunks of ``--chunk`` frames of ``--instances`` instances, state
carried; frames per second count video frames (all instances of a frame). The two runtimes are timed
alternately, call by call, so that a varying load on a shared machine does not favour either. Frames
are random: the cost does not depend on them. Both runtimes use ``--threads`` threads (default:
PyTorch's default). The export time and the largest difference of the verification are printed too.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.adam_speed import peer_downsample_ratio
from benchmarks.peers.rvm import RecurrentState, RobustVideoMatting
from vidmatte import build_model
from vidmatte.export.onnx import export_bytes, onnx_session, verify
from vidmatte.inference.adam import AdamSession
from vidmatte.inference.msgvim import MsgVimSession
from vidmatte.inference.onnx_backend import open_onnx
from vidmatte.inference.torch_engine import prepare_network
from vidmatte.io.jsonfile import write_json

WARMUP_FRAMES = 6  # fills AdaM's long-term entry and N = 4 short-term entries, plus one


def parse_size(text: str) -> tuple[int, int]:
    """``"512x288"`` -> ``(width, height)``."""
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def interleaved_rates(runs: dict[str, Callable[[int], object]], warmup: int, count: int) -> dict[str, float]:
    """Calls per second of each ``run(i)``, timed alternately call by call after ``warmup`` calls each.

    Alternating keeps a varying load on a shared machine from favouring whichever runs first.
    """
    for i in range(warmup):
        for run in runs.values():
            run(i)
    seconds = dict.fromkeys(runs, 0.0)
    for i in range(warmup, warmup + count):
        for name, run in runs.items():
            start = time.perf_counter()
            run(i)
            seconds[name] += time.perf_counter() - start
    return {f"{name}_fps": count / total for name, total in seconds.items()}


def exported(model: torch.nn.Module, threads: int) -> tuple[object, float, float]:
    """The onnxruntime runner of ``model``, the export time in seconds and the verified difference."""
    start = time.perf_counter()
    data = export_bytes(model)
    seconds = time.perf_counter() - start
    return open_onnx(data, threads), seconds, verify(model, data)


def peer_step(width: int, height: int, threads: int) -> Callable[[torch.Tensor], object]:
    """RVM's network (``peers/rvm.py``, random weights) exported at its downsample ratio for the size: one
    onnxruntime step per call on a ``(1, 3, H, W)`` frame, its recurrent state carried."""
    ratio = peer_downsample_ratio(width, height)
    peer = RobustVideoMatting().eval()
    frame = torch.rand(1, 3, height, width)
    with torch.no_grad():
        *_, first = peer(frame, RecurrentState(), ratio)  # the state's shapes at this size

    class Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.peer = peer

        def forward(self, frame: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
            alpha, foreground, state = self.peer(frame, RecurrentState(*state), ratio)
            return alpha, foreground, *state

    names = list(RecurrentState._fields)
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            Step(),
            (frame, *first),
            buffer,
            input_names=["frame", *names],
            output_names=["alpha", "fgr", *(f"{name}_next" for name in names)],
            dynamo=False,
        )
    session = onnx_session(buffer.getvalue(), threads)
    state = {name: np.zeros(tuple(t.shape), np.float32) for name, t in zip(names, first, strict=True)}

    def step(image: torch.Tensor) -> None:
        outputs = session.run(None, {"frame": image[None].numpy(), **state})
        state.update(zip(names, outputs[2:], strict=True))

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adam", default="adam-small", help="AdaM registry name ('' to skip)")
    parser.add_argument("--msgvim", default="msgvim-small", help="MSG-VIM registry name ('' to skip)")
    parser.add_argument("--size", type=parse_size, default=(512, 288), help="WxH (default 512x288)")
    parser.add_argument("--frames", type=int, default=20, help="timed AdaM frames")
    parser.add_argument("--chunk", type=int, default=10, help="MSG-VIM frames per chunk")
    parser.add_argument("--chunks", type=int, default=2, help="timed MSG-VIM chunks")
    parser.add_argument("--instances", type=int, default=2, help="MSG-VIM instances per frame")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", help="write the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    width, height = args.size
    results = {"size": f"{width}x{height}", "threads": args.threads}
    if args.adam:
        model = build_model(args.adam).eval()
        runner, seconds, difference = exported(model, args.threads)
        frames = list(torch.rand(8, 3, height, width, generator=torch.Generator().manual_seed(0)))
        sessions = {"torch": AdamSession(prepare_network(model)), "onnxruntime": AdamSession(runner)}
        runs = {name: (lambda i, s=s: s.step(frames[i % len(frames)])) for name, s in sessions.items()}
        peer = peer_step(width, height, args.threads)
        runs["rvm_onnxruntime"] = lambda i: peer(frames[i % len(frames)])
        rates = interleaved_rates(runs, WARMUP_FRAMES, args.frames)
        results[args.adam] = {
            **rates,
            "onnxruntime_time_over_rvm": rates["rvm_onnxruntime_fps"] / rates["onnxruntime_fps"],
            "export_s": seconds,
            "max_abs_difference": difference,
        }
        print(args.adam, results[args.adam], flush=True)
    if args.msgvim:
        model = build_model(args.msgvim).eval()
        runner, seconds, difference = exported(model, args.threads)
        rng = np.random.default_rng(0)
        rgb = rng.random((args.chunk, height, width, 3), dtype=np.float32)
        targets = rng.random((args.instances, args.chunk, height, width)) > 0.5
        sessions = {
            "torch": MsgVimSession(prepare_network(model), True),
            "onnxruntime": MsgVimSession(runner, True),
        }
        runs = {name: (lambda i, s=s: s(rgb, targets, ~targets)) for name, s in sessions.items()}
        rates = interleaved_rates(runs, 1, args.chunks)
        results[args.msgvim] = {
            **{name: rate * args.chunk for name, rate in rates.items()},  # chunks -> video frames
            "export_s": seconds,
            "max_abs_difference": difference,
        }
        print(args.msgvim, results[args.msgvim], flush=True)
    if args.json:
        write_json(args.json, results, indent=2)


if __name__ == "__main__":
    main()
