"""The README's "Results": the shipped default weights on held-out synthetic benchmarks, and the figures.

Usage::

    python benchmarks/results.py [--out results_out] [--vm-clips 6] [--vim-clips 6] [--frames 30]

Generates two benchmarks with a seed never used in training (training streams use seed 0, validation
seeds 1001 and 1002): the VM layout at 512x288 for AdaM and the VIM layout for MSG-VIM at the training
resolution (256x144; MSG-VIM has no downsampling path). Scores, with the project's own evaluators:

- AdaM online and bi-directional, next to the same network without memory (every frame matted as a
  first frame) and the first frame's mask (the model's own mask head) propagated unchanged. AdaM runs
  with ``downsample_ratio=0.5``: the network sees the 256x144 scale it was trained at and the guided
  filter brings the matte back to 512x288, which is the HD path the model is built for.
- MSG-VIM with chunks of t = 1, 5 and 10 frames (state reset at each chunk, as the paper), t = 10 with
  the state carried across chunks, and the simulated segmenter's guidance masks scored as alphas.

Writes ``<out>/results.json`` and ``docs/results.json``, ``docs/results.png`` (input, ground truth and
predictions for a few frames) and ``docs/training_curves.png`` (from ``runs/*/train_log.jsonl`` when
present). Needs matplotlib (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from vidmatte import load_model
from vidmatte.data.synthetic.clips import ClipSpec
from vidmatte.data.synthetic.folders import write_synthetic_set
from vidmatte.inference.adam import AdamSession, as_frame, matte_bidirectional
from vidmatte.inference.engine import DEFAULT_WEIGHTS
from vidmatte.inference.msgvim import CHUNK_SIZE, ChunkMatter, MsgVimSession
from vidmatte.inference.vim50 import GuidanceAsAlpha, matte_videos
from vidmatte.io.frames import list_frames, read_alpha, read_rgb_u8, to_u8, write_image
from vidmatte.io.jsonfile import write_json
from vidmatte.metrics.runner import evaluate_folders
from vidmatte.metrics.vim_runner import evaluate_vim

SEED = 20261122  # held out: training uses seed 0, validation 1001 (AdaM) and 1002 (MSG-VIM)
RATIO = 0.5  # AdaM's network resolution relative to the 512x288 frames: the 256x144 it was trained at
ROOT = Path(__file__).resolve().parents[1]
ADAM_METRICS = ("pha_mad", "pha_mse", "pha_grad", "pha_conn", "pha_dtssd")
VIM_SCORES = ("RQ", "TQ", "MQ_mse", "MQ_mad", "MQ_dtssd", "VIMQ_mse", "VIMQ_mad", "VIMQ_dtssd")
MattePairs = Iterator[
    tuple[np.ndarray, np.ndarray]
]  # per frame: alpha (H, W), foreground (H, W, 3) in [0, 1]


def _arrays(alpha: torch.Tensor, foreground: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    return alpha[0, 0].numpy(), foreground[0].permute(1, 2, 0).numpy()


def online(
    model, frames: list[np.ndarray], precision: str = "fp32", ratio: float | None = RATIO
) -> MattePairs:
    session = AdamSession(model, downsample_ratio=ratio, precision=precision)
    for frame in frames:
        yield _arrays(*session.step(frame))


def bidirectional(model, frames: list[np.ndarray]) -> MattePairs:
    reverse = {t: _arrays(a, f) for t, a, f in matte_bidirectional(model, frames, downsample_ratio=RATIO)}
    yield from (reverse[t] for t in range(len(frames)))


def without_memory(model, frames: list[np.ndarray]) -> MattePairs:
    for frame in frames:
        yield _arrays(*AdamSession(model, downsample_ratio=RATIO).step(frame))


def first_mask(model, frames: list[np.ndarray]) -> MattePairs:
    with torch.inference_mode():
        mask = (model.eval().segment(as_frame(frames[0]), RATIO)[0, 0] > 0.5).float().numpy()
    for frame in frames:
        yield mask, frame.astype(np.float32) / 255


ADAM_METHODS: dict[str, Callable] = {
    "online": online,
    "bi-directional": bidirectional,
    "without memory (frame by frame)": without_memory,
    "first-frame mask propagated": first_mask,
}


def vm_scores(matte: Callable[[list[np.ndarray]], MattePairs], true: Path, pred: Path) -> dict[str, float]:
    """Matte every clip of the VM-layout ``true`` into ``pred`` and score it with ``evaluate_folders``."""
    for clip in sorted(p.parent for p in true.glob("*/*/com")):
        paths = list_frames(clip / "com")
        frames = [read_rgb_u8(p) for p in paths]
        out = pred / clip.relative_to(true)
        for path, (alpha, foreground) in zip(paths, matte(frames), strict=True):
            write_image(out / "pha" / path.name, to_u8(alpha))
            write_image(out / "fgr" / path.name, to_u8(foreground))
    scores = evaluate_folders(pred, true, protocol="lr", progress=False).overall
    return {m: scores[m] for m in ADAM_METRICS}


def adam_results(model, true: Path, pred_root: Path) -> dict[str, dict[str, float]]:
    """Each of :data:`ADAM_METHODS` on the VM-layout ``true`` (:func:`vm_scores`)."""
    results = {}
    for index, (name, method) in enumerate(ADAM_METHODS.items()):
        results[name] = vm_scores(functools.partial(method, model), true, pred_root / f"adam-{index}")
        print(name, {m: round(v, 3) for m, v in results[name].items()}, flush=True)
    return results


def write_vim_benchmark(path: Path, clips: int, frames: int, workers: int = 2) -> None:
    """The held-out VIM-layout benchmark: ``clips`` clips of ``frames`` frames at 256x144, 2 to 4 people."""
    spec = ClipSpec(frames=frames, width=256, height=144, instances=(2, 4))
    write_synthetic_set(path, "vim", clips, spec, SEED, workers=workers)


def vim_scores(
    matter_for_clip: Callable[[], ChunkMatter], true: Path, pred: Path, chunk: int = CHUNK_SIZE
) -> dict[str, float]:
    """Matte the VIM-layout ``true`` into ``pred`` in chunks of ``chunk`` frames and score it with VIMQ
    (:data:`VIM_SCORES`)."""
    matte_videos(
        true,
        pred,
        matter_for_clip,
        masks=true / "tg_masks",
        reference_masks=true / "re_masks",
        chunk_size=chunk,
    )
    overall = evaluate_vim(pred, true, errors=("mse", "mad", "dtssd")).overall
    return {s: overall[s] for s in VIM_SCORES}


def msgvim_results(model, true: Path, pred_root: Path) -> dict[str, dict[str, float]]:
    """Matte the VIM-layout ``true`` with each chunking and the guidance baseline; score with VIMQ."""
    runs = {
        "guidance masks as alphas": (GuidanceAsAlpha, 10),
        "t = 1": (functools.partial(MsgVimSession, model), 1),
        "t = 5": (functools.partial(MsgVimSession, model), 5),
        "t = 10": (functools.partial(MsgVimSession, model), 10),
        "t = 10, state carried": (functools.partial(MsgVimSession, model, True), 10),
    }
    results = {}
    for index, (name, (matter, chunk)) in enumerate(runs.items()):
        results[name] = vim_scores(matter, true, pred_root / f"msgvim-{index}", chunk)
        print(name, {s: round(v, 2) for s, v in results[name].items()}, flush=True)
    return results


def _pyplot() -> ModuleType:
    """matplotlib's pyplot on its file-only backend, imported to draw: scoring needs no matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panel(ax, image: np.ndarray, title: str) -> None:
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def _instances(folder: Path, frame: str) -> np.ndarray:
    """The instances' alphas under ``folder/<instance>/<frame>``, each in its own colour, ``(H, W, 3)``."""
    palette = _pyplot().get_cmap("tab10").colors
    alphas = [read_alpha(d / frame) for d in sorted(p for p in folder.iterdir() if p.is_dir())]
    return np.clip(sum(a[..., None] * np.array(palette[i % 10]) for i, a in enumerate(alphas)), 0, 1)


def draw_examples(vm: Path, vim: Path, pred_root: Path, path: Path) -> None:
    """Input, ground truth and predictions: first, middle and last frames of a clip of each benchmark."""
    clip = sorted(p.parent for p in vm.glob("*/*/com"))[0]
    vim_clip = sorted(p.parent for p in vim.glob("*/com"))[0]
    names = [p.name for p in list_frames(clip / "com")]
    frames = (0, len(names) // 2, len(names) - 1)
    vim_names = [p.name for p in list_frames(vim_clip / "com")]
    columns = 2 + len(ADAM_METHODS)
    plt = _pyplot()
    fig, axes = plt.subplots(2 * len(frames), columns, figsize=(2.2 * columns, 1.45 * 2 * len(frames)))
    for row, t in enumerate(frames):
        name, vim_name, rel = names[t], vim_names[min(t, len(vim_names) - 1)], clip.relative_to(vm)
        _panel(axes[row, 0], read_rgb_u8(clip / "com" / name), f"AdaM input, frame {t}")
        _panel(axes[row, 1], read_alpha(clip / "pha" / name), "ground truth")
        for col, method in enumerate(ADAM_METHODS):
            _panel(axes[row, 2 + col], read_alpha(pred_root / f"adam-{col}" / rel / "pha" / name), method)
        vim_row = axes[len(frames) + row]
        _panel(vim_row[0], read_rgb_u8(vim_clip / "com" / vim_name), f"MSG-VIM input, frame {t}")
        _panel(vim_row[1], _instances(vim_clip / "pha", vim_name), "ground truth instances")
        _panel(vim_row[2], _instances(vim / "tg_masks" / vim_clip.name, vim_name), "guidance masks")
        _panel(vim_row[3], _instances(pred_root / "msgvim-1" / vim_clip.name, vim_name), "MSG-VIM t = 1")
        _panel(vim_row[4], _instances(pred_root / "msgvim-3" / vim_clip.name, vim_name), "MSG-VIM t = 10")
        for ax in vim_row[5:]:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_curves(runs: dict[str, Path], path: Path) -> None:
    """Training loss (and validation MAD where logged) against the step, one panel per run."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.2))
    for ax, (title, log) in zip(np.atleast_1d(axes), runs.items(), strict=True):
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        train = [r for r in records if "loss" in r and "lr" in r]
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], lw=0.8, label="training loss")
        ax.set(title=title, xlabel="step", ylabel="loss", yscale="log")
        validation = [r for r in records if "val_mad" in r]
        if validation:
            twin = ax.twinx()
            steps, mads = [r["step"] for r in validation], [r["val_mad"] for r in validation]
            twin.plot(steps, mads, "o-", color="tab:red", label="validation MAD x1e3")
            twin.set_ylabel("validation MAD x1e3")
        ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results_out"))
    parser.add_argument("--vm-clips", type=int, default=6)
    parser.add_argument("--vim-clips", type=int, default=6)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--adam", default=DEFAULT_WEIGHTS["adam"], help="weights name or file")
    parser.add_argument("--msgvim", default="msgvim-default", help="weights name or file")
    args = parser.parse_args()
    vm, vim, pred = args.out / "vm", args.out / "vim", args.out / "pred"
    write_synthetic_set(vm, "vm", args.vm_clips, ClipSpec(frames=args.frames), SEED, workers=2)
    write_vim_benchmark(vim, args.vim_clips, args.frames)
    results = {
        "seed": SEED,
        "adam": adam_results(load_model(args.adam), vm, pred),
        "msgvim": msgvim_results(load_model(args.msgvim), vim, pred),
    }
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    for path in (args.out / "results.json", docs / "results.json"):
        write_json(path, results, indent=1)
    draw_examples(vm, vim, pred, docs / "results.png")
    logs = {
        f"{name} ({log.parent.name})": log
        for name, log in (
            ("AdaM stage 1", ROOT / "runs/adam-default-1/train_log.jsonl"),
            ("AdaM stage 2", ROOT / "runs/adam-default-2/train_log.jsonl"),
            ("AdaM stage 3", ROOT / "runs/adam-default-3/train_log.jsonl"),
            ("MSG-VIM", ROOT / "runs/msgvim-synthetic/train_log.jsonl"),
        )
        if log.is_file()
    }
    if logs:
        draw_curves(logs, docs / "training_curves.png")
    print(f"wrote {docs / 'results.json'}, {docs / 'results.png'}")


if __name__ == "__main__":
    main()
