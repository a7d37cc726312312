"""Write a synthetic data set to disk in the VM or VIM50 layout, with guidance masks and metadata.

Output of ``layout="vm"``::

    <out>/synthetic_{motion,static}/<clip>/{com,pha,fgr,bgr}/<frame>.png
    <out>/synthetic_{motion,static}/<clip>/seg/<frame>.png     segmenter foreground (union of tracks)

Output of ``layout="vim"``::

    <out>/<clip>/com/<frame>.png
    <out>/<clip>/pha/<instance>/<frame>.png
    <out>/tg_masks/<clip>/<track>/<frame>.png     target guidance (one folder per track)
    <out>/re_masks/<clip>/<track>/<frame>.png     reference guidance (union of the other tracks)

Both also write ``<out>/ytvis_results.json`` (the tracks as a YouTube-VIS result file, ``video_id``
as listed in the metadata) and ``<out>/metadata.json`` (generator settings, segmenter error model,
and per clip its seed, instances, occlusion, tracks, identity switches and missed instances).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vidmatte import __version__
from vidmatte.data.benchmarks import frame_name, write_guidance, write_vim_clip, write_vm_clip
from vidmatte.data.guidance import SegmenterErrors, simulate_segmenter
from vidmatte.data.synthetic.clips import ClipSpec, clip_seed, generate_clip
from vidmatte.io.frames import write_image
from vidmatte.io.jsonfile import write_json
from vidmatte.io.masks import Track, write_ytvis_json

LAYOUTS = ("vm", "vim")


def write_synthetic_set(
    out: str | os.PathLike,
    layout: str,
    clips: int,
    spec: ClipSpec,
    seed: int,
    errors: SegmenterErrors | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> dict:
    """Generate ``clips`` clips and write them under ``out``.

    Args:
        layout: ``"vm"`` or ``"vim"``.
        errors: the simulated segmenter's error model for the guidance masks (default:
            :class:`SegmenterErrors` defaults).
        progress: called with the index of each clip once it is written.
        workers: processes generating clips in parallel; the output does not depend on it.

    Returns:
        The metadata that was written to ``<out>/metadata.json``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    errors = SegmenterErrors() if errors is None else errors
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [_Job(out, layout, index, spec, clip_seed(seed, index), errors) for index in range(clips)]
    records, tracks = [], []
    with contextlib.ExitStack() as stack:
        run = stack.enter_context(ProcessPoolExecutor(workers)).map if workers > 1 else map
        for index, (record, clip_tracks) in enumerate(run(_write_clip, jobs)):
            records.append(record)
            tracks += clip_tracks
            if progress is not None:
                progress(index)
    write_ytvis_json(out / "ytvis_results.json", tracks)
    metadata = {
        "generator": f"vidmatte {__version__} synthetic",
        "layout": layout,
        "seed": seed,
        "spec": asdict(spec),
        "segmenter_errors": errors.to_dict(),
        "clips": records,
    }
    write_json(out / "metadata.json", metadata, indent=1)
    return metadata


class _Job(NamedTuple):
    out: Path
    layout: str
    index: int
    spec: ClipSpec
    seed: int
    errors: SegmenterErrors


def _write_clip(job: _Job) -> tuple[dict, list[Track]]:
    """Generate and write one clip; its metadata record and YouTube-VIS tracks."""
    out, layout, index, spec, seed, errors = job
    name = f"{index:04d}"
    clip = generate_clip(seed, spec)
    guidance = simulate_segmenter(clip.alphas, errors, np.random.default_rng([seed, 1]))
    video_id = index + 1
    if layout == "vm":
        subset = "synthetic_motion" if clip.moving_camera else "synthetic_static"
        folder = write_vm_clip(
            out, subset, name, {"com": clip.com, "pha": clip.pha, "fgr": clip.fgr, "bgr": clip.bgr}
        )
        for t, mask in enumerate(guidance.masks.any(axis=0)):
            write_image(folder / "seg" / frame_name(t), mask.astype(np.uint8) * 255)
        location = f"{subset}/{name}"
    else:
        write_vim_clip(out, name, clip.com, clip.alphas)
        write_guidance(out, name, guidance)
        location = name
    record = {
        "name": name,
        "path": location,
        "video_id": video_id,
        "seed": seed,
        "instances": int(clip.alphas.shape[0]),
        "moving_camera": clip.moving_camera,
        "occluded": bool((clip.hidden > 0.05).any()),
        "max_hidden": [float(v) for v in clip.hidden.max(axis=1)],
        "guidance": guidance.metadata(),
    }
    return record, guidance.tracks(video_id)
