"""Speed and memory of AdaM's online inference on CPU, beside RVM's network in the same run.

Usage (from the repository root): ``python -m benchmarks.adam_speed [--model adam-fast]
[--sizes 512x288 1920x1080] [--precisions fp32 bf16] [--frames 40] [--memory-frames 300] [--threads N]
[--nchw] [--compile] [--stages] [--profile] [--peer-prepared]``

For each frame size and precision it reports the milliseconds per frame of
:meth:`AdamSession.step` (frames of 1920x1080 go through the automatic downsampling to 512x288 and
the guided filter), after a warm-up that fills the memory, as a ratio to the peer: RVM's published
network (``peers/rvm.py``, random weights) at its advised downsample ratio (1 at 512x288, 0.25 at
1920x1080, with its guided filter written with PyTorch's operators as published), same precision,
layout and threads. Both get frames as the video reader hands them over, ``(H, W, 3)`` uint8: AdaM's
session takes them as they are (resized as uint8, read in place by the guided filter's kernel), the
peer makes them float first as RVM's inference does. AdaM's network is prepared as the engine prepares
it (``prepare_network``: BatchNorms folded into the convolutions), the peer runs as published;
``--peer-prepared`` gives the peer the same preparation and vidmatte's guided filter kernel, so that the
ratio compares the networks alone. The two are timed in turns,
one frame each per round (``--frames`` rounds); each time is the median over rounds, the ratio the
median of the rounds' ratios with its quartiles (the noise of the run). Multiply-accumulates per frame
(``macs.py``, attention included) are printed beside each. The defaults are what ``vidmatte matte``
runs: the default weights' network (``adam-fast``), PyTorch, the precision ``auto`` resolves to on this CPU
(bf16 where it is native), channels-last.

``--stages`` splits a frame's time into encode / read memory / decode / guided filter; ``--profile``
prints the operators that take the most time. The peak resident memory of a ``--memory-frames`` clip
is measured in a fresh process, with the resident size after 10 frames beside it to show that memory
does not grow with the clip. Frames are random: the cost does not depend on their content. Weights
(and the peer's frames) are channels-last (NHWC), as the engine prepares them (``prepare_network``) by
default; ``--nchw`` measures the contiguous layout. ``--compile`` measures a network prepared with
``compile=True`` (``torch.compile`` of AdaM's encoder and decoder; the peer stays eager) and prints the
largest alpha difference from the eager model on a few frames.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.interleave import Ratio, interleaved_ms
from benchmarks.macs import MacCounter
from benchmarks.peers.rvm import RecurrentState, RobustVideoMatting
from vidmatte import build_model
from vidmatte.inference.adam import AdamSession, as_frame, autocast
from vidmatte.inference.precision import auto_precision
from vidmatte.inference.torch_engine import fold_batch_norms, prepare_network
from vidmatte.models.adam.geometry import FrameGeometry

WARMUP_FRAMES = 6  # fills the long-term entry and N = 4 short-term entries, plus one
# the peer's downsample ratio per size, as RVM's authors advise (4K at 0.125); other sizes: long side 512
PEER_RATIOS = {(512, 288): 1.0, (1920, 1080): 0.25, (3840, 2160): 0.125}


def parse_size(text: str) -> tuple[int, int]:
    """``"512x288"`` -> ``(width, height)``."""
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


MEMORY_FORMAT = {False: torch.contiguous_format, True: torch.channels_last}


def peer_downsample_ratio(width: int, height: int) -> float:
    """RVM's downsample ratio for ``width x height`` frames (:data:`PEER_RATIOS`, else long side 512)."""
    return PEER_RATIOS.get((width, height), min(1.0, 512 / max(width, height)))


def random_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """``count`` random ``(height, width, 3)`` uint8 frames, as the video reader hands them over."""
    generator = torch.Generator().manual_seed(0)
    return [
        torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, generator=generator).numpy()
        for _ in range(count)
    ]


def adam_stepper(model, width: int, height: int, precision: str, channels_last: bool) -> Callable[[], object]:
    """One frame of a session's ``step`` per call, after ``WARMUP_FRAMES`` that fill its memory."""
    clip = random_frames(4, width, height)
    session = AdamSession(model, precision=precision, channels_last=channels_last)
    for t in range(WARMUP_FRAMES):
        session.step(clip[t % len(clip)])
    count = itertools.count()
    return lambda: session.step(clip[next(count) % len(clip)])


def peer_stepper(
    peer: RobustVideoMatting, width: int, height: int, precision: str, channels_last: bool
) -> Callable[[], object]:
    """One frame of the peer per call at its ratio for the size (recurrent state carried), after a warm-up.

    Each uint8 frame is made a float tensor in [0, 1] first, as RVM's published inference does.
    """
    ratio = peer_downsample_ratio(width, height)
    clip = random_frames(4, width, height)
    layout = MEMORY_FORMAT[channels_last]
    peer.eval().to(memory_format=layout)
    state = RecurrentState()
    count = itertools.count()

    @torch.inference_mode()
    def step() -> None:
        nonlocal state
        frame = torch.from_numpy(clip[next(count) % len(clip)]).permute(2, 0, 1)[None]
        with autocast(torch.device("cpu"), precision):
            *_, state = peer(frame.float().div(255).contiguous(memory_format=layout), state, ratio)

    for _ in range(WARMUP_FRAMES):
        step()
    return step


def gmacs(step: Callable[[], object]) -> float:
    """Billions of multiply-accumulates of one call (attention included, see ``macs.py``)."""
    with MacCounter() as counter:
        step()
    return counter.total / 1e9


def compiled_difference(model, reference, width: int, height: int, precision: str) -> float:
    """Largest absolute alpha difference between compiled ``model`` and eager ``reference`` over 3 frames."""
    clip = random_frames(3, width, height)
    fast = AdamSession(model, precision=precision)
    eager = AdamSession(reference, precision=precision)
    return max((fast.step(frame)[0] - eager.step(frame)[0]).abs().max().item() for frame in clip)


@torch.inference_mode()
def stage_seconds(
    model, width: int, height: int, precision: str, repeats: int, channels_last: bool
) -> dict[str, float]:
    """Mean seconds per frame of each stage, with a full memory (1 + N entries)."""
    geometry = FrameGeometry.for_size(height, width)
    frame = as_frame(random_frames(1, width, height)[0])
    times = {"resize+pad": 0.0, "encode": 0.0, "read_memory": 0.0, "decode": 0.0, "guided_filter": 0.0}
    with autocast(torch.device("cpu"), precision):
        image = geometry.pad(geometry.downsample(frame))
        encoded = model.encode(image)
        memory = model.empty_memory()
        for _ in range(1 + model.memory_capacity):
            memory = memory.add(model.encode_memory(encoded, torch.rand(1, encoded.key.shape[1])))
        for _ in range(repeats):
            tick = time.perf_counter()
            image = geometry.pad(geometry.downsample(frame))
            times["resize+pad"] += time.perf_counter() - tick
            tick = time.perf_counter()
            encoded = model.encode(image)
            times["encode"] += time.perf_counter() - tick
            tick = time.perf_counter()
            features = model.read_memory(encoded, memory)
            times["read_memory"] += time.perf_counter() - tick
            tick = time.perf_counter()
            decoded = model.decode(features, encoded, image)
            times["decode"] += time.perf_counter() - tick
            if geometry.downsampled:
                tick = time.perf_counter()
                model.refiner(
                    frame,
                    geometry.crop(image),
                    geometry.crop(decoded.foreground),
                    geometry.crop(decoded.alpha),
                    geometry.crop(decoded.hidden),
                )
                times["guided_filter"] += time.perf_counter() - tick
    return {name: seconds / repeats for name, seconds in times.items()}


def profile(model, width: int, height: int, precision: str, frames: int, channels_last: bool) -> str:
    clip = random_frames(2, width, height)
    session = AdamSession(model, precision=precision, channels_last=channels_last)
    for t in range(WARMUP_FRAMES):
        session.step(clip[t % 2])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for t in range(frames):
            session.step(clip[t % 2])
    return profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)


def resident_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_child(
    model_name: str, width: int, height: int, precision: str, frames: int, channels_last: bool
) -> None:
    """Run a clip and print JSON with resident memory (MiB); called in a fresh process."""
    torch.manual_seed(0)
    model = prepare_network(build_model(model_name), channels_last)
    session = AdamSession(model, precision=precision, channels_last=channels_last)
    frame = random_frames(1, width, height)[0]
    after_10 = 0
    for t in range(frames):
        session.step(frame)
        if t == 9:
            after_10 = resident_kib("VmRSS")
    print(
        json.dumps(
            {
                "rss_after_10_mib": after_10 / 1024,
                "rss_end_mib": resident_kib("VmRSS") / 1024,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "memory_entries": len(session.memory),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="adam-fast")
    parser.add_argument("--sizes", nargs="+", default=["512x288", "1920x1080"])
    parser.add_argument(
        "--precisions", nargs="+", default=[auto_precision(torch.device("cpu"))], choices=["fp32", "bf16"]
    )
    parser.add_argument("--frames", type=int, default=40, help="rounds (timed frames of each contender)")
    parser.add_argument("--memory-frames", type=int, default=300, help="clip for peak memory (0: skip)")
    parser.add_argument("--nchw", action="store_true", help="contiguous weights and frames, not NHWC")
    parser.add_argument("--compile", action="store_true", help="prepare_network(compile=True)")
    parser.add_argument("--stages", action="store_true", help="time each stage")
    parser.add_argument("--profile", action="store_true", help="print the most expensive operators")
    parser.add_argument(
        "--peer-prepared",
        action="store_true",
        help="prepare the peer as vidmatte prepares AdaM (folded BatchNorms, the guided filter's kernel)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--peak-child", nargs=3, metavar=("SIZE", "PREC", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    channels_last = not args.nchw
    if args.peak_child:
        width, height = parse_size(args.peak_child[0])
        peak_memory_child(
            args.model, width, height, args.peak_child[1], int(args.peak_child[2]), channels_last
        )
        return

    torch.manual_seed(0)
    model = prepare_network(build_model(args.model), channels_last)
    peer = RobustVideoMatting()
    peer.refiner.fused = args.peer_prepared
    if args.peer_prepared:
        fold_batch_norms(peer)
    reference = copy.deepcopy(model) if args.compile else None
    if args.compile:
        prepare_network(model, channels_last, compile=True)
    backbone = sum(p.numel() for p in model.encoder.backbone.parameters())
    total = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: backbone {backbone / 1e6:.3f} M, total {total / 1e6:.3f} M parameters")
    layout = "channels-last" if channels_last else "contiguous"
    compiled = ", torch.compile" if args.compile else ""
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {layout}{compiled}")
    for size in args.sizes:
        width, height = parse_size(size)
        for precision in args.precisions:
            if args.compile:
                difference = compiled_difference(model, reference, width, height, precision)
                print(f"{size} {precision}: compiled vs eager max |alpha difference| {difference:.2e}")
            contenders = {
                args.model: adam_stepper(model, width, height, precision, channels_last),
                "rvm": peer_stepper(peer, width, height, precision, channels_last),
            }
            work = {name: "" for name in contenders}
            if not args.compile:  # counting would trace through the compiled graphs
                work = {name: f", {gmacs(step):.2f} GMACs" for name, step in contenders.items()}
            times = interleaved_ms(contenders, args.frames)
            adam_ms, peer_ms = (statistics.median(times[name]) for name in contenders)
            print(
                f"{size} {precision}: {args.model} {adam_ms:.1f} ms/frame{work[args.model]}, "
                f"RVM (ratio {peer_downsample_ratio(width, height)}) {peer_ms:.1f} ms/frame"
                f"{work['rvm']}; time ratio {args.model} / RVM {Ratio.of(times[args.model], times['rvm'])}",
                flush=True,
            )
            if args.stages:
                repeats = max(3, args.frames // 4)
                stages = stage_seconds(model, width, height, precision, repeats, channels_last)
                print("  " + ", ".join(f"{name} {1000 * s:.1f} ms" for name, s in stages.items()))
            if args.profile:
                print(profile(model, width, height, precision, max(3, args.frames // 4), channels_last))
            if args.memory_frames:
                command = [sys.executable, "-m", __spec__.name, "--model", args.model]
                if args.threads:
                    command += ["--threads", str(args.threads)]
                if args.nchw:
                    command.append("--nchw")
                command += ["--peak-child", size, precision, str(args.memory_frames)]
                child = subprocess.run(command, capture_output=True, check=True, text=True)
                result = json.loads(child.stdout)
                print(
                    f"  {args.memory_frames} frames: peak RSS {result['peak_rss_mib']:.0f} MiB, "
                    f"RSS after 10 frames {result['rss_after_10_mib']:.0f} MiB, "
                    f"at the end {result['rss_end_mib']:.0f} MiB, {result['memory_entries']} memory entries"
                )


if __name__ == "__main__":
    main()
