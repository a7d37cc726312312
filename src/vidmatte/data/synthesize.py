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

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vidmatte import __version__
from vidmatte.data.benchmarks import frame_name, write_guidance, write_vim_clip, write_vm_clip
from vidmatte.data.guidance import SegmenterErrors, simulate_segmenter
from vidmatte.data.synthetic import ClipSpec, generate_clip
from vidmatte.io.frames import write_image
from vidmatte.io.masks import write_ytvis_json

LAYOUTS = ("vm", "vim")


def clip_seed(seed: int, index: int) -> int:
    """The seed of clip ``index`` of a set generated with ``seed`` (independent streams per clip)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def write_synthetic_set(
    out: str | os.PathLike,
    layout: str,
    clips: int,
    spec: ClipSpec,
    seed: int,
    errors: SegmenterErrors | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Generate ``clips`` clips and write them under ``out``.

    Args:
        layout: ``"vm"`` or ``"vim"``.
        errors: the simulated segmenter's error model for the guidance masks (default:
            :class:`SegmenterErrors` defaults).
        progress: called with the index of each clip once it is written.

    Returns:
        The metadata that was written to ``<out>/metadata.json``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    errors = SegmenterErrors() if errors is None else errors
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records, tracks = [], []
    for index in range(clips):
        name = f"{index:04d}"
        seed_i = clip_seed(seed, index)
        clip = generate_clip(seed_i, spec)
        guidance = simulate_segmenter(clip.alphas, errors, np.random.default_rng([seed_i, 1]))
        video_id = index + 1
        tracks += guidance.tracks(video_id)
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
        records.append(
            {
                "name": name,
                "path": location,
                "video_id": video_id,
                "seed": seed_i,
                "instances": int(clip.alphas.shape[0]),
                "moving_camera": clip.moving_camera,
                "occluded": bool((clip.hidden > 0.05).any()),
                "max_hidden": [float(v) for v in clip.hidden.max(axis=1)],
                "guidance": guidance.metadata(),
            }
        )
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
    (out / "metadata.json").write_text(json.dumps(metadata, indent=1))
    return metadata
