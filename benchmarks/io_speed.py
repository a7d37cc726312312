"""Speed of the streaming video reader and writers.

Usage: ``python benchmarks/io_speed.py [--sizes 512x288 1920x1080] [--frames 60] [--outputs ...]``

For each size it encodes a moving synthetic clip (colour and a soft alpha) as an H.264 source, then
reports frames per second of reading it back with :func:`vidmatte.io.reader.open_frames` (decode and
RGB conversion, in the reader's thread) and of writing each output type with
:class:`vidmatte.io.writers.FrameWriter` (conversion and encoding, in the writer's thread). Writing
is timed from the first ``write`` to the end of ``finish``; the frames are made beforehand, so the
figure is the encoder's own rate, the ceiling of a matting pipeline that feeds it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidmatte.io.reader import VideoInfo, open_frames
from vidmatte.io.writers import FrameWriter

# output name -> content
OUTPUTS = {
    "alpha.mp4": "alpha",
    "alpha.mkv": "alpha",
    "alpha_png": "alpha",
    "colour.mp4": "rgb",
    "rgba.mov": "rgba",
    "rgba.webm": "rgba",
}


def synthetic_frames(width: int, height: int, frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A moving gradient with a soft moving disc: ``(H, W, 3)`` and ``(H, W)`` uint8 per frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    colours, alphas = [], []
    for index in range(frames):
        red = 128 + 100 * np.sin((x + 4 * index) / (width / 12))
        green = 128 + 100 * np.cos((y - 3 * index) / (height / 8))
        blue = np.full_like(x, (7 * index) % 256)
        colours.append(np.stack([red, green, blue], -1).astype(np.uint8))
        distance = np.hypot(x - width / 2 - 3 * index, y - height / 2)
        alphas.append((255 * np.clip((height / 3 - distance) / 8 + 0.5, 0, 1)).astype(np.uint8))
    return colours, alphas


def time_writer(path: Path, content: str, info: VideoInfo, colours, alphas) -> float:
    """Frames per second of writing ``path``."""
    items = {
        "rgb": colours,
        "alpha": alphas,
        "rgba": [np.dstack([c, a]) for c, a in zip(colours, alphas, strict=True)],
    }[content]
    start = time.perf_counter()
    with FrameWriter(path, content, info) as writer:
        for image in items:
            writer.write(image)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["512x288", "1920x1080"], help="WxH")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--outputs", nargs="+", default=list(OUTPUTS), choices=list(OUTPUTS))
    args = parser.parse_args()
    print(f"{'size':>9}  {'what':>16}  {'frames/s':>8}")
    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        colours, alphas = synthetic_frames(width, height, args.frames)
        with tempfile.TemporaryDirectory() as folder:
            info = VideoInfo(
                Path(folder), width, height, Fraction(30), Fraction(1, 30), None, False, Fraction(0), None
            )
            source = Path(folder) / "source.mp4"
            time_writer(source, "rgb", info, colours, alphas)
            start = time.perf_counter()
            with open_frames(source) as reader:
                count = sum(1 for _ in reader)
            print(f"{size:>9}  {'decode':>16}  {count / (time.perf_counter() - start):8.1f}")
            for name in args.outputs:
                fps = time_writer(Path(folder) / name, OUTPUTS[name], info, colours, alphas)
                print(f"{size:>9}  {'write ' + name:>16}  {fps:8.1f}")


if __name__ == "__main__":
    main()
