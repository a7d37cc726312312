"""How the default weights matte real people: agreement with the person tracks on real clips, and figures.

Usage: ``python benchmarks/real_footage.py [--adam adam-fast] [--msgvim msgvim-default] [--frames 60]
[--msgvim-frames 10] [--downsample-ratio R] [--cache DIR] [--json docs/real_footage.json] [--figures docs]``

Clips: OpenCV's ``vtest.avi`` (pedestrians seen from above, from frame 100) and ``Megamind.avi``
(close-ups, from frame 30, after its fade-in), ``--frames`` frames each, at their own size. Neither is
ever trained on. For each clip:

- the person tracks of :func:`~vidmatte.segmentation.tracks.default_track_builder` (cached in ``--cache``);
- ``adam_iou``: AdaM online with its default first-frame segmentor; per frame, the IoU of ``alpha > 0.5``
  with the union of the tracks' masks; the mean over frames (frames where both are empty count 1);
  ``adam_precision`` and ``adam_recall``: the share of ``alpha > 0.5`` inside the union, and of the union
  inside ``alpha > 0.5`` (means over frames; an empty side counts 1); ``adam_iou_first``: the IoU on the
  first frame alone, whose segmentor mask the memory holds (``first_mask_iou``: that mask's own IoU), which
  separates reading the memory from drifting away over the clip; ``adam_iou_blind``: ``adam_iou`` with an
  empty first-frame mask instead of the segmentor's (close to ``adam_iou``: the network does not read its
  memory, it finds people by itself); ``--downsample-ratio`` overrides the automatic network scale;
- ``msgvim_iou``: MSG-VIM guided by the tracks (chunks of 10) on the first ``--msgvim-frames`` frames (it
  costs about 2 s per person and frame at 768x576 on one core); per instance and frame, the IoU of
  ``alpha > 0.5`` with that track's mask; the mean over the tracks' frames.

Figures: ``real_tracks.png`` (input, tracks, AdaM's first-frame mask) and ``real_footage.png``
(input, AdaM alpha, composite over green) on two frames of each clip.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vidmatte.inference.engine import DEFAULT_WEIGHTS
from vidmatte.io.jsonfile import write_json

DATA = Path("/usr/share/doc/opencv-doc/examples/data")
CLIPS = {"vtest": (DATA / "vtest.avi", 100), "Megamind": (DATA / "Megamind.avi", 30)}
GREEN = np.array([0, 177, 64], np.float32)


def clip_frames(video: Path, start: int, count: int) -> list[np.ndarray]:
    from vidmatte.io.reader import open_frames

    with open_frames(video) as reader:
        return [f.image for f in reader if start <= f.index < start + count]


def person_tracks(name: str, frames: list[np.ndarray], cache: Path):
    """``(N, T, H, W)`` bool track masks, computed once and kept in ``cache``."""
    from vidmatte.io.masks import decode_rle, read_ytvis_json
    from vidmatte.segmentation.tracks import default_track_builder

    path = cache / f"{name}-{len(frames)}.json"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        default_track_builder()(iter(frames)).write_json(path)
    height, width = frames[0].shape[:2]
    empty = np.zeros((height, width), bool)
    return np.array(
        [[decode_rle(s) if s is not None else empty for s in t.segmentations] for t in read_ytvis_json(path)],
        bool,
    ).reshape(-1, len(frames), height, width)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def share(part: np.ndarray, whole: np.ndarray) -> float:
    """The fraction of ``whole`` that ``part`` covers (1 for an empty ``whole``)."""
    total = whole.sum()
    return 1.0 if total == 0 else float(np.logical_and(part, whole).sum() / total)


def adam_mattes(
    weights: str, frames: list[np.ndarray], downsample_ratio: float | None = None, blind: bool = False
) -> tuple[list[np.ndarray], np.ndarray]:
    """AdaM's alphas ``(H, W)`` in [0, 1] and its first-frame mask: the default segmentor's, or with
    ``blind`` an empty one (what the network finds without being told who is there)."""
    from vidmatte import load_model
    from vidmatte.inference.adam import AdamSession
    from vidmatte.segmentation.first_frame import PeopleSegmentor

    segmentor = (lambda frame: torch.zeros_like(frame[:, :1])) if blind else PeopleSegmentor()
    first: list[torch.Tensor] = []

    def remember(frame: torch.Tensor) -> torch.Tensor | None:
        mask = segmentor(frame)
        first.append(torch.zeros_like(frame[:, :1]) if mask is None else mask)
        return mask

    session = AdamSession(load_model(weights), segmentor=remember, downsample_ratio=downsample_ratio)
    alphas = [session.step(frame)[0][0, 0].numpy() for frame in frames]
    return alphas, first[-1][0, 0].numpy()


def mean_iou(mattes: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([iou(a, m) for a, m in zip(mattes, truth, strict=True)]))


def msgvim_mattes(weights: str, frames: list[np.ndarray], tracks: np.ndarray) -> np.ndarray:
    """``(N, T, H, W)`` alphas guided by ``tracks``."""
    from vidmatte import load_model
    from vidmatte.inference.msgvim import MsgVimSession
    from vidmatte.io.guidance import union_of_others

    session = MsgVimSession(load_model(weights))
    others = union_of_others(tracks)
    rgb = np.stack(frames).astype(np.float32) / 255
    chunks = [
        session(rgb[s : s + 10], tracks[:, s : s + 10], others[:, s : s + 10])
        for s in range(0, len(frames), 10)
    ]
    return np.concatenate(chunks, axis=1)


def tinted(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    from vidmatte.segmentation.preview import render_tracks

    return render_tracks(image, masks, list(range(len(masks))))


def sheet(rows: list[list[np.ndarray]], path: Path, width: int = 320) -> None:
    tiles = [[Image.fromarray(t).convert("RGB") for t in row] for row in rows]
    tiles = [[t.resize((width, round(t.height * width / t.width))) for t in row] for row in tiles]
    heights = [max(t.height for t in row) for row in tiles]
    canvas = Image.new("RGB", (width * max(len(r) for r in tiles), sum(heights)), "white")
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            canvas.paste(tile, (c * width, sum(heights[:r])))
    canvas.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adam", default=DEFAULT_WEIGHTS["adam"])
    parser.add_argument("--msgvim", default="msgvim-default")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--msgvim-frames", type=int, default=10)
    parser.add_argument("--downsample-ratio", type=float, help="AdaM's network scale (default: automatic)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/vidmatte-real-tracks"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--figures", type=Path)
    args = parser.parse_args()
    results, track_rows, matte_rows = {}, [], []
    for name, (video, start) in CLIPS.items():
        frames = clip_frames(video, start, args.frames)
        tracks = person_tracks(name, frames, args.cache)
        everyone = tracks.any(0)
        alphas, first = adam_mattes(args.adam, frames, args.downsample_ratio)
        mattes = [a > 0.5 for a in alphas]
        blind = adam_mattes(args.adam, frames, args.downsample_ratio, blind=True)[0]
        shown = tracks[:, : args.msgvim_frames]
        instances = msgvim_mattes(args.msgvim, frames[: args.msgvim_frames], shown) if shown.size else shown
        pairs = [(i, t) for i in range(len(shown)) for t in range(shown.shape[1]) if shown[i, t].any()]
        results[name] = {
            "frames": len(frames),
            "people": len(tracks),
            "adam_iou": mean_iou(mattes, everyone),
            "adam_precision": float(np.mean([share(m, a) for a, m in zip(mattes, everyone, strict=True)])),
            "adam_recall": float(np.mean([share(a, m) for a, m in zip(mattes, everyone, strict=True)])),
            "adam_iou_first": iou(mattes[0], everyone[0]),
            "first_mask_iou": iou(first > 0.5, everyone[0]),
            "adam_iou_blind": mean_iou([a > 0.5 for a in blind], everyone),
            "msgvim_iou": float(np.mean([iou(instances[i, t] > 0.5, shown[i, t]) for i, t in pairs]))
            if pairs
            else float("nan"),
        }
        print(
            name,
            " ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in results[name].items()
            ),
        )
        for t in (0, len(frames) - 1):
            image = frames[t]
            first_mask = [(first * 255).astype(np.uint8)] if t == 0 else []
            track_rows.append([image, tinted(image, tracks[:, t]), *first_mask])
            alpha = alphas[t][..., None]
            composite = image * alpha + GREEN * (1 - alpha)
            matte_rows.append([image, (alphas[t] * 255).astype(np.uint8), composite.astype(np.uint8)])
    if args.json:
        write_json(args.json, {"adam": args.adam, "msgvim": args.msgvim, "clips": results}, indent=2)
    if args.figures:
        sheet(track_rows, args.figures / "real_tracks.png")
        sheet(matte_rows, args.figures / "real_footage.png")


if __name__ == "__main__":
    main()
