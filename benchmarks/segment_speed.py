"""Speed of the person models and of the track builder, against MSG-VIM's matting, on real frames.

Usage: ``python benchmarks/segment_speed.py [--video vtest.avi] [--frames 20] [--sizes 512x288 1920x1080]
[--threads 2] [--json OUT]``

Frames come from a real video (default OpenCV's ``vtest.avi``, pedestrians), scaled to each size.
Per size, milliseconds per frame (median over the frames, after one warm-up frame) of:

- ``segmentor``: the selfie segmentation network on the whole frame (``segment_people``);
- ``detector``: MoveNet MultiPose (``detect_people`` at the track builder's width);
- ``tracks``: the whole track builder (detector, a crop per person, assignment, fallback, tracking);
- ``msgvim``: ``msgvim-default`` matting each frame's instances (chunks of 10, guided by the tracks).

The aim of the issue: ``tracks`` at most 50% of ``msgvim``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def real_frames(video: Path, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """The first ``count`` frames of ``video`` resized to ``size`` (width, height), uint8 RGB."""
    from vidmatte.io.reader import open_frames

    frames = []
    with open_frames(video) as reader:
        for frame in reader:
            frames.append(np.asarray(Image.fromarray(frame.image).resize(size, Image.BILINEAR)))
            if len(frames) == count:
                break
    return frames


def per_frame(function, frames: list) -> float:
    """Median milliseconds of ``function(frame)`` over ``frames[1:]`` (the first warms up)."""
    times = []
    for index, frame in enumerate(frames):
        start = time.perf_counter()
        function(frame)
        if index:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def measure(frames: list[np.ndarray]) -> dict[str, float]:
    from vidmatte import load_model
    from vidmatte.inference.msgvim import MsgVimSession
    from vidmatte.inference.torch_engine import prepare_network
    from vidmatte.io.guidance import union_of_others
    from vidmatte.segmentation.movenet import detect_people, load_person_detector
    from vidmatte.segmentation.selfie import load_selfie_segmentation, segment_people
    from vidmatte.segmentation.tracks import DEFAULT_CONFIG, default_track_builder

    selfie, detector = load_selfie_segmentation(), load_person_detector()
    width = min(DEFAULT_CONFIG.detect_width, frames[0].shape[1])
    as_tensor = lambda image: torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    with torch.inference_mode():
        figures = {
            "segmentor": per_frame(lambda f: segment_people(selfie, as_tensor(f)), frames),
            "detector": per_frame(lambda f: detect_people(detector, f, input_width=width), frames),
        }
        start = time.perf_counter()
        tracks = default_track_builder()(iter(frames))
        figures["tracks"] = (time.perf_counter() - start) * 1e3 / len(frames)
        # bounded memory at 1080p
        session = MsgVimSession(prepare_network(load_model("msgvim-default")), instance_batch=1)
        masks = np.stack([tracks.masks(t) for t in range(len(frames))], 1)  # (N, T, H, W)
        references = union_of_others(masks)
        rgb = np.stack(frames).astype(np.float32) / 255
        start = time.perf_counter()
        for first in range(0, len(frames), 10):
            session(rgb[first : first + 10], masks[:, first : first + 10], references[:, first : first + 10])
        figures["msgvim"] = (time.perf_counter() - start) * 1e3 / len(frames)
    figures["people"] = float(len(tracks.tracks))
    figures["tracks / msgvim"] = figures["tracks"] / figures["msgvim"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VTEST)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--sizes", nargs="+", default=["512x288", "1920x1080"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        results[size] = measure(real_frames(args.video, args.frames, (width, height)))
        print(size, " ".join(f"{k} {v:.1f}" for k, v in results[size].items()), flush=True)
    if args.json:
        from vidmatte.io.jsonfile import write_json

        write_json(args.json, results, indent=2)


if __name__ == "__main__":
    main()
