"""``vidmatte demo``: a synthetic multi-person clip matted by both default models and scored.

It runs on a fresh CPU machine in about a minute and writes, under the output folder::

    input/<frame>.png              the clip: 2-3 people over a moving background
    masks/<track>/<frame>.png      a simulated instance segmenter's tracks (MSG-VIM's guidance)
    first_mask.png                 the tracks' union on frame 0 (AdaM's first-frame mask)
    adam/pha/, adam/composite/     AdaM's alpha (named as the VM benchmark names it) and composite
    msgvim/alpha/<track>/          MSG-VIM's alpha of each instance
    msgvim/instances/              every instance in its own colour
    truth/adam/pha/                ground truth: everyone's alpha (AdaM's target)
    truth/instances/pha/<person>/  ground truth per person (MSG-VIM's targets)
    preview.mp4                    input | AdaM alpha | MSG-VIM instances, side by side
    metrics.json                   AdaM's alpha metrics and MSG-VIM's VIMQ against the ground truth

The metrics are those of ``vidmatte eval --pred OUT/adam --true OUT/truth/adam`` and of VIMQ on
``OUT/msgvim/alpha`` against ``OUT/truth/instances``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidmatte.data.benchmarks import frame_name
from vidmatte.data.guidance import SegmenterErrors, simulate_segmenter
from vidmatte.data.synthetic.clips import ClipSpec, generate_clip
from vidmatte.inference.engine import DEFAULT_WEIGHTS
from vidmatte.inference.video import MatteResult, matte_video
from vidmatte.io.frames import list_frames, read_grey_u8, read_rgb_u8, write_image
from vidmatte.io.jsonfile import write_json
from vidmatte.io.reader import open_frames
from vidmatte.io.writers import FrameWriter
from vidmatte.metrics.runner import EvalResults, evaluate_folders
from vidmatte.metrics.vim_runner import VimResults, evaluate_clip
from vidmatte.metrics.vimq import ERRORS, score_dataset

DEMO_INSTANCES = (2, 3)
_OWNED = ("input", "masks", "adam", "msgvim", "truth")  # folders the demo replaces on every run


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote and how the models scored.

    Attributes:
        out: the output folder.
        runs: ``{"adam": ..., "msgvim": ...}``, the two :func:`matte_video` runs.
        adam: AdaM's alpha metrics (``vidmatte eval``'s table).
        msgvim: MSG-VIM's VIMQ scores.
        preview: the side-by-side video.
    """

    out: Path
    runs: dict[str, MatteResult]
    adam: EvalResults
    msgvim: VimResults
    preview: Path

    def report(self) -> str:
        """The metrics tables and where everything is, for the terminal."""
        from vidmatte.metrics import runner, vim_runner

        return "\n".join(
            [
                *(
                    f"{name}: {run.frames} frames of {run.input} in {run.seconds:.1f} s ({run.fps:.1f} fps)"
                    for name, run in self.runs.items()
                ),
                "",
                f"AdaM ({DEFAULT_WEIGHTS['adam']}) alpha against the ground truth:",
                runner.format_table(self.adam),
                "",
                f"MSG-VIM ({DEFAULT_WEIGHTS['msgvim']}) instances against the ground truth (VIMQ, percent):",
                vim_runner.format_table(self.msgvim),
                "",
                f"preview (input | AdaM alpha | MSG-VIM instances): {self.preview}",
                f"outputs: {self.out / 'adam'}, {self.out / 'msgvim'}; ground truth: {self.out / 'truth'}; "
                f"metrics: {self.out / 'metrics.json'}",
            ]
        )


def run_demo(
    out: str | os.PathLike = "demo_out",
    frames: int = 20,
    size: tuple[int, int] = (256, 144),
    seed: int = 0,
    progress: bool | None = None,
) -> DemoResult:
    """Generate a clip, matte it with ``adam-fast`` and ``msgvim-default``, score and preview it.

    Args:
        out: output folder (its demo sub-folders are replaced; anything else in it is left alone).
        frames: clip length.
        size: ``(width, height)`` of the frames.
        seed: the clip's random seed.
        progress: progress bars (default: if stderr is a terminal).
    """
    out = Path(out)
    for name in _OWNED:
        shutil.rmtree(out / name, ignore_errors=True)
    clip = generate_clip(
        seed, ClipSpec(frames=frames, width=size[0], height=size[1], instances=DEMO_INSTANCES)
    )
    tracks = simulate_segmenter(clip.alphas, SegmenterErrors(), np.random.default_rng([seed, 1])).masks
    for t, image in enumerate(clip.com):
        write_image(out / "input" / frame_name(t), image)
    for index, sequence in enumerate(tracks):
        for t, mask in enumerate(sequence):
            write_image(out / "masks" / f"{index:02d}" / frame_name(t), mask.astype(np.uint8) * 255)
    write_image(out / "first_mask.png", tracks[:, 0].any(axis=0).astype(np.uint8) * 255)

    runs = {
        "adam": matte_video(
            out / "input",
            out / "adam",
            first_mask=out / "first_mask.png",
            outputs=("alpha", "composite"),
            format="png",
            progress=progress,
        ),
        "msgvim": matte_video(
            out / "input",
            out / "msgvim",
            model="msgvim",
            masks=out / "masks",
            outputs=("alpha",),
            format="png",
            progress=progress,
        ),
    }
    # `vidmatte eval` reads a clip's alpha from pha/
    os.replace(out / "adam" / "alpha", out / "adam" / "pha")

    # ground truth under the outputs' frame names, so that the evaluators pair them
    names = [p.name for p in list_frames(out / "adam" / "pha")]
    for name, alpha in zip(names, clip.pha, strict=True):
        write_image(out / "truth" / "adam" / "pha" / name, alpha)
    for index, sequence in enumerate(clip.alphas):
        for name, alpha in zip(names, sequence, strict=True):
            write_image(out / "truth" / "instances" / "pha" / f"{index:02d}" / name, alpha)

    adam = evaluate_folders(out / "adam", out / "truth" / "adam", workers=1, progress=False)
    score, instance_names = evaluate_clip(out / "msgvim" / "alpha", out / "truth" / "instances")
    msgvim = VimResults(score_dataset([score]), {"demo": score}, {"demo": instance_names}, ERRORS)
    metrics = {"adam": adam.overall, "msgvim": msgvim.overall}
    write_json(out / "metrics.json", metrics, indent=1)
    preview = _write_preview(out)
    return DemoResult(out, runs, adam, msgvim, preview)


def _write_preview(out: Path) -> Path:
    """``preview.mp4``: input | AdaM alpha | MSG-VIM instances, frame by frame."""
    with open_frames(out / "input") as reader:
        info = reader.info
    preview = out / "preview.mp4"
    wide = dataclasses.replace(info, path=preview, width=3 * info.width)
    folders = [out / "input", out / "adam" / "pha", out / "msgvim" / "instances"]
    with FrameWriter(preview, "rgb", wide) as writer:
        for image, alpha, instances in zip(*(list_frames(f) for f in folders), strict=True):
            grey = read_grey_u8(alpha)
            panels = [read_rgb_u8(image), np.repeat(grey[..., None], 3, axis=-1), read_rgb_u8(instances)]
            writer.write(np.concatenate(panels, axis=1))
    return preview
