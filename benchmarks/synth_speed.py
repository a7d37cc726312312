"""Speed of the synthetic clip generator.

Usage: ``python benchmarks/synth_speed.py [--frames 50] [--size 512x288] [--instances 1 2-4] [--seeds 3]
[--write] [--profile]``

For each instance range it generates ``--seeds`` clips (after one warm-up clip that loads the
scikit-image photographs) and reports wall-clock and CPU seconds per clip (they differ when other
processes share the cores; the generator is single-threaded numpy) and frames per second.
``--write`` also times writing each clip as PNGs in the VM layout (com, pha, fgr, bgr);
``--profile`` prints the functions that take the most time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time

from vidmatte.data.benchmarks import write_vm_clip
from vidmatte.data.synthetic.clips import ClipSpec, generate_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--size", default="512x288", help="WxH")
    parser.add_argument("--instances", nargs="+", default=["1", "2-4"], help="MIN-MAX ranges to time")
    parser.add_argument("--seeds", type=int, default=3, help="clips timed per range")
    parser.add_argument("--write", action="store_true", help="also time writing PNGs")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    generate_clip(0, ClipSpec(frames=2, width=width, height=height))  # warm-up: imports, photos
    profiler = cProfile.Profile() if args.profile else None
    print(f"{'instances':>9}  {'clip s':>7}  {'cpu s':>7}  {'frames/s':>8}  {'write s':>7}")
    for text in args.instances:
        low, _, high = text.partition("-")
        spec = ClipSpec(
            frames=args.frames, width=width, height=height, instances=(int(low), int(high or low))
        )
        generate_seconds, cpu_seconds, write_seconds = [], [], []
        for seed in range(args.seeds):
            start, cpu_start = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            clip = generate_clip(seed, spec)
            if profiler is not None:
                profiler.disable()
            generate_seconds.append(time.perf_counter() - start)
            cpu_seconds.append(time.process_time() - cpu_start)
            if args.write:
                with tempfile.TemporaryDirectory() as folder:
                    start = time.perf_counter()
                    frames = {"com": clip.com, "pha": clip.pha, "fgr": clip.fgr, "bgr": clip.bgr}
                    write_vm_clip(folder, "synthetic", "0000", frames)
                    write_seconds.append(time.perf_counter() - start)
        mean = sum(generate_seconds) / len(generate_seconds)
        written = f"{sum(write_seconds) / len(write_seconds):7.2f}" if write_seconds else f"{'-':>7}"
        cpu = sum(cpu_seconds) / len(cpu_seconds)
        print(f"{text:>9}  {mean:7.2f}  {cpu:7.2f}  {args.frames / mean:8.1f}  {written}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
