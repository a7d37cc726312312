"""Memory of a long AdaM run: is the resident memory flat over a 10-minute video?

Usage: ``python benchmarks/long_video_memory.py [--minutes 10] [--fps 30] [--size 512x288]
[--weights adam-default] [--outputs alpha,composite] [--every 30] [--work DIR] [--json OUT]``

1. Writes a ``--minutes`` long synthetic video (H.264, ``--fps``): a few clips of the synthetic
   generator, played back and forth in turn, each pass shifted in brightness and mirrored on every
   other one, so that the video never repeats exactly (generating every frame afresh would take longer
   than the matting itself on a CPU). The video is kept in ``--work`` and reused by later runs.
2. Mattes it with :func:`vidmatte.matte_video` (online AdaM, the default weights, ``--outputs``
   encoded as H.264), in this process, and samples the process's resident memory every ``--every``
   seconds of video: the current RSS and the peak so far (``ru_maxrss``). Samples are appended to
   ``--json`` as JSON lines while the run goes on, so an interrupted run still shows its trend.
3. Prints the peak RSS at 1, 5 and 10 minutes of video (or at the marks the run reached).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import resource
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

MARKS_MINUTES = (1, 5, 10)
SOURCE_CLIPS = 4
SOURCE_FRAMES = 60


def rss_mib() -> tuple[float, float]:
    """``(current, peak)`` resident memory of this process in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    current = pages * resource.getpagesize() / 2**20
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def looped_frames(width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """``count`` uint8 ``(H, W, 3)`` frames cycling through a few synthetic clips, varied on each pass."""
    from vidmatte.data.synthetic.clips import ClipSpec, generate_clip
    from vidmatte.io.frames import to_u8

    spec = ClipSpec(SOURCE_FRAMES, width, height, camera_motion=1.0)
    clips = [to_u8(generate_clip(seed, spec).com) for seed in range(SOURCE_CLIPS)]
    emitted = 0
    for passes in itertools.count():
        clip = clips[passes % SOURCE_CLIPS]
        order = range(SOURCE_FRAMES) if passes % 2 == 0 else range(SOURCE_FRAMES - 1, -1, -1)
        shift = np.int16((passes * 7) % 41 - 20)  # brightness offset of this pass, in 8-bit levels
        for t in order:
            frame = np.clip(clip[t].astype(np.int16) + shift, 0, 255).astype(np.uint8)
            yield frame[:, ::-1] if (passes // SOURCE_CLIPS) % 2 else frame
            emitted += 1
            if emitted == count:
                return


def write_video(path: Path, width: int, height: int, fps: int, frames: int) -> None:
    """The synthetic test video (kept, so that later runs skip this step)."""
    from vidmatte.io.reader import VideoInfo
    from vidmatte.io.writers import FrameWriter

    if path.is_file():
        return
    rate = Fraction(fps)
    info = VideoInfo(path, width, height, rate, 1 / rate, frames, False, Fraction(0), None)
    with FrameWriter(path, "rgb", info) as writer:
        for frame in looped_frames(width, height, frames):
            writer.write(frame)


class SamplingEngine:
    """An engine that records the process's memory every ``every`` frames the model mattes."""

    def __init__(self, engine, every: int, fps: int, log: Path | None) -> None:
        self.settings = engine.settings
        self._engine = engine
        self._every = every
        self._fps = fps
        self._log = log
        self.samples: list[dict] = []
        self._start = time.perf_counter()

    def _sample(self, frames: int) -> None:
        current, peak = rss_mib()
        sample = {
            "video_seconds": frames / self._fps,
            "frames": frames,
            "rss_mib": round(current, 1),
            "peak_rss_mib": round(peak, 1),
            "elapsed_s": round(time.perf_counter() - self._start, 1),
        }
        self.samples.append(sample)
        print(json.dumps(sample), flush=True)
        if self._log is not None:
            with self._log.open("a") as handle:
                handle.write(json.dumps(sample) + "\n")

    def adam_online(self, first_mask, downsample_ratio):
        matter = self._engine.adam_online(first_mask, downsample_ratio)
        count = 0

        def step(frame: np.ndarray):
            nonlocal count
            result = matter(frame)
            count += 1
            if count % self._every == 0:
                self._sample(count)
            return result

        return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="video length (default: 10)")
    parser.add_argument("--fps", type=int, default=30, help="video frame rate (default: 30)")
    parser.add_argument("--size", default="512x288", help="WxH (default: 512x288)")
    parser.add_argument("--weights", default="adam-default", help="AdaM weights (default: adam-default)")
    parser.add_argument(
        "--outputs", default="alpha,composite", help="outputs to encode (default: alpha,composite)"
    )
    parser.add_argument(
        "--every", type=float, default=30.0, help="seconds of video between samples (default: 30)"
    )
    parser.add_argument("--work", default="long_video_work", help="folder for the video and the outputs")
    parser.add_argument("--json", help="append the samples here as JSON lines")
    args = parser.parse_args()

    from vidmatte.inference.engine import EngineSettings, load_engine
    from vidmatte.inference.video import matte_video

    width, height = (int(v) for v in args.size.lower().split("x"))
    frames = round(args.minutes * 60 * args.fps)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    video = work / f"long_{width}x{height}_{frames}f_{args.fps}fps.mp4"
    # in another process, so that the source clips held while encoding do not count in this one's peak
    writer = multiprocessing.get_context("spawn").Process(
        target=write_video, args=(video, width, height, args.fps, frames)
    )
    writer.start()
    writer.join()
    if writer.exitcode != 0:
        raise SystemExit(f"writing {video} failed")
    print(f"video: {video} ({frames} frames, written in {time.perf_counter() - started:.0f} s)", flush=True)

    log = Path(args.json) if args.json else None
    engine = SamplingEngine(
        load_engine(EngineSettings("adam", args.weights)), round(args.every * args.fps), args.fps, log
    )
    result = matte_video(video, work / "out", outputs=args.outputs.split(","), engine=engine, progress=False)
    print(result.summary())
    for minutes in MARKS_MINUTES:
        reached = [s for s in engine.samples if s["video_seconds"] <= minutes * 60]
        if reached and reached[-1]["video_seconds"] == minutes * 60:
            sample = reached[-1]
            peak, current = sample["peak_rss_mib"], sample["rss_mib"]
            print(f"{minutes:>2} min of video: peak RSS {peak:.0f} MiB, current {current:.0f} MiB")


if __name__ == "__main__":
    main()
