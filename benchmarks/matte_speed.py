"""End-to-end speed and memory of :func:`vidmatte.matte_video` against the model alone.

Usage: ``python benchmarks/matte_speed.py [--models adam msgvim] [--sizes 512x288 1920x1080]
[--frames 40] [--instances 2] [--outputs alpha,composite] [--format mp4] [--threads N] [--json OUT]``

For each model and frame size it writes a synthetic clip (``--instances`` people, H.264 with its
guidance masks as PNGs named by frame index), then measures, each in a fresh process:

- ``model``: frames per second of the model alone on frames already decoded in memory (AdaM: the
  online matter frame by frame; MSG-VIM: chunks of 10 frames with their masks, all instances);
- ``pipeline``: frames per second of ``matte_video`` on the file: decoding, the model, rendering
  ``--outputs`` and encoding them in ``--format``, with the process's peak resident memory.

The overhead is ``model fps / pipeline fps - 1``: what decoding and encoding cost beyond the model
(they run in background threads; on a CPU they compete with the model for cores). The default weights
(``vidmatte.inference.engine.DEFAULT_WEIGHTS``: ``adam-fast``, ``msgvim-default``) are used.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vidmatte.inference.engine import DEFAULT_WEIGHTS

GENERATED_LONG_SIDE = 512  # larger clips are generated at this long side and scaled up


def parse_size(text: str) -> tuple[int, int]:
    """``"512x288"`` -> ``(width, height)``."""
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def write_clip(folder: Path, width: int, height: int, frames: int, instances: int) -> Path:
    """``folder/clip.mp4`` and ``folder/masks/<instance>/<index>.png`` from the synthetic generator.

    The generator holds the whole clip in float32, so frames larger than :data:`GENERATED_LONG_SIDE`
    are generated smaller and scaled up (the cost of matting does not depend on the content).
    """
    from PIL import Image

    from vidmatte.data.synthetic.clips import ClipSpec, generate_clip
    from vidmatte.io.frames import to_u8, write_image

    scale = min(1.0, GENERATED_LONG_SIDE / max(width, height))
    spec = ClipSpec(frames, round(width * scale), round(height * scale), instances=(instances, instances))
    clip = generate_clip(0, spec)
    for t, image in enumerate(clip.com):
        frame = Image.fromarray(to_u8(image)).resize((width, height), Image.BILINEAR)
        write_image(folder / "frames" / f"{t:06d}.png", np.asarray(frame))
        for index, alpha in enumerate(clip.alphas[:, t]):
            mask = Image.fromarray((alpha > 0.5).astype(np.uint8) * 255).resize(
                (width, height), Image.NEAREST
            )
            write_image(folder / "masks" / f"{index:02d}" / f"{t:06d}.png", np.asarray(mask))
    del clip
    return encode_frames(folder / "frames", folder / "clip.mp4")


def encode_frames(frames: Path, path: Path) -> Path:
    """The PNG frames as an H.264 video at 30 fps."""
    from vidmatte.io.reader import open_frames
    from vidmatte.io.writers import FrameWriter

    with open_frames(frames) as reader, FrameWriter(path, "rgb", reader.info) as writer:
        for frame in reader:
            writer.write(frame.image, frame.pts)
    return path


def measure_model(model: str, clip: Path, masks: Path) -> dict:
    """Frames per second of the model alone on the decoded clip."""
    from vidmatte.inference.engine import EngineSettings, load_engine
    from vidmatte.inference.msgvim import CHUNK_SIZE
    from vidmatte.io.guidance import PngGuidance, union_of_others
    from vidmatte.io.reader import open_frames

    with open_frames(clip) as reader:
        images = [frame.image.copy() for frame in reader]
    engine = load_engine(EngineSettings(model))
    if model == "adam":
        matter = engine.adam_online(None, None)
        matter(images[0])  # warm-up
        start = time.perf_counter()
        for image in images:
            matter(image)
    else:
        stems = [f"{t:06d}" for t in range(len(images))]
        guidance = PngGuidance(masks, stems)
        size = images[0].shape[:2]
        chunks = []
        for begin in range(0, len(images), CHUNK_SIZE):
            rgb = np.stack(images[begin : begin + CHUNK_SIZE]).astype(np.float32) / 255
            targets = np.stack([guidance.masks(t, size) for t in range(begin, begin + len(rgb))], 1)
            chunks.append((rgb, targets, union_of_others(targets)))
        matter = engine.msgvim_chunks()
        matter(*chunks[0])  # warm-up
        start = time.perf_counter()
        for chunk in chunks:
            matter(*chunk)
    seconds = time.perf_counter() - start
    return {"fps": len(images) / seconds}


def peak_rss_mib() -> float:
    """This process's peak resident memory.

    ``VmHWM`` where there is /proc: ``getrusage``'s ``ru_maxrss`` survives ``exec``, so in a child it
    would report the parent's peak at ``fork`` time when that was higher (here: the generated clip).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_pipeline(model: str, clip: Path, masks: Path, outputs: list[str], format: str) -> dict:
    """Frames per second of matte_video on the file, and the process's peak resident memory."""
    from vidmatte import matte_video

    with tempfile.TemporaryDirectory() as out:
        options = {"masks": masks} if model == "msgvim" else {}
        result = matte_video(
            clip, out, model=model, outputs=outputs, format=format, progress=False, **options
        )
    return {
        "fps": result.fps,
        "frames": result.frames,
        "peak_rss_mib": peak_rss_mib(),
    }


def child(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    clip, masks = Path(args.clip), Path(args.clip).parent / "masks"
    if args.child == "model":
        result = measure_model(args.models[0], clip, masks)
    else:
        result = measure_pipeline(args.models[0], clip, masks, args.outputs.split(","), args.format)
    print(json.dumps(result))


def run_child(args: argparse.Namespace, kind: str, model: str, clip: Path) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--clip", str(clip), "--models", model]
    command += ["--outputs", args.outputs, "--format", args.format]
    if args.threads:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["adam", "msgvim"], choices=("adam", "msgvim"))
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[(512, 288)])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--outputs", default="alpha,composite")
    parser.add_argument("--format", default="mp4")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", choices=("model", "pipeline"), help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for width, height in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            clip = write_clip(Path(folder), width, height, args.frames, args.instances)
            for model in args.models:
                alone = run_child(args, "model", model, clip)
                pipeline = run_child(args, "pipeline", model, clip)
                row = {
                    "model": DEFAULT_WEIGHTS[model],
                    "size": f"{width}x{height}",
                    "frames": pipeline["frames"],
                    "model_fps": alone["fps"],
                    "pipeline_fps": pipeline["fps"],
                    "overhead": alone["fps"] / pipeline["fps"] - 1,
                    "peak_rss_mib": pipeline["peak_rss_mib"],
                }
                rows.append(row)
                print(
                    f"{row['model']:>15} {row['size']:>9}: model {row['model_fps']:6.2f} fps, "
                    f"pipeline {row['pipeline_fps']:6.2f} fps ({100 * row['overhead']:+.0f}%), "
                    f"peak {row['peak_rss_mib']:.0f} MiB ({row['frames']} frames, "
                    f"{args.outputs} as {args.format})",
                    flush=True,
                )
    if args.json:
        from vidmatte.io.jsonfile import write_json

        write_json(args.json, rows, indent=1)


if __name__ == "__main__":
    main()
