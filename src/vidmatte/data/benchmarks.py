"""Benchmark folder layouts: writers (for synthetic sets) and readers with layout checks.

- VM (the RVM test set): ``<root>/<subset>/<clip>/{com,pha,fgr,bgr}/<frame>.png``.
- VIM50: ``<root>/<clip>/com/<frame>.png`` and ``<root>/<clip>/pha/<instance>/<frame>.png``;
  guidance ``<masks>/tg_masks/<clip>/<track>/<frame>.png`` and ``re_masks/...`` (binarised at >= 128).
- CRGNN real videos: ``<root>/<clip>/frames/<frame>`` with alphas for every 10th frame in
  ``<root>/<clip>/alpha/<frame>.png`` (``frame00001.png``, ``frame00011.png``, ...); a frame and its
  alpha share a file stem. Decision (the published archive documents no layout): the frame folder
  may also be called ``com`` or ``rgb``, the alpha folder ``pha``.

Readers list files and check the layout (every clip has its folders, the same frames in each);
a bad layout raises :class:`~vidmatte.errors.VidmatteError` naming the folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidmatte.data.guidance import Guidance
from vidmatte.errors import VidmatteError
from vidmatte.io.frames import list_frames, read_alpha, read_rgb, write_image
from vidmatte.io.masks import read_mask

VM_FOLDERS = ("com", "pha", "fgr", "bgr")
CRGNN_FRAMES = ("frames", "com", "rgb")  # accepted names of a CRGNN clip's frame folder
CRGNN_ALPHAS = ("alpha", "pha")


def frame_name(index: int) -> str:
    """File name of frame ``index`` in the layouts written here: ``0007.png``."""
    return f"{index:04d}.png"


# ------------------------------------------------------------------------------------ writers
def write_vm_clip(root: str | os.PathLike, subset: str, name: str, frames: dict[str, np.ndarray]) -> Path:
    """Write one clip in the VM layout.

    Args:
        frames: any of ``com``, ``fgr``, ``bgr`` as ``(T, H, W, 3)`` and ``pha`` as ``(T, H, W)``,
            float in [0, 1] or uint8.

    Returns:
        The clip's folder.
    """
    folder = Path(root) / subset / name
    for kind, images in frames.items():
        for t, image in enumerate(images):
            write_image(folder / kind / frame_name(t), image)
    return folder


def write_vim_clip(root: str | os.PathLike, name: str, com: np.ndarray, alphas: np.ndarray) -> Path:
    """Write one clip in the VIM50 layout.

    Args:
        com: ``(T, H, W, 3)`` frames.
        alphas: ``(N, T, H, W)`` per-instance alphas; instance ``i`` goes to ``pha/<i:02d>/``.
    """
    folder = Path(root) / name
    for t, image in enumerate(com):
        write_image(folder / "com" / frame_name(t), image)
    for index, sequence in enumerate(alphas):
        for t, alpha in enumerate(sequence):
            write_image(folder / "pha" / f"{index:02d}" / frame_name(t), alpha)
    return folder


def write_guidance(root: str | os.PathLike, name: str, guidance: Guidance) -> None:
    """Write guidance masks as ``<root>/tg_masks/<clip>/<track>/`` and ``<root>/re_masks/...`` PNGs."""
    for kind, masks in (("tg_masks", guidance.masks), ("re_masks", guidance.reference())):
        for track, sequence in enumerate(masks):
            for t, mask in enumerate(sequence):
                write_image(
                    Path(root) / kind / name / f"{track:02d}" / frame_name(t), mask.astype(np.uint8) * 255
                )


# ------------------------------------------------------------------------------------ readers
@dataclass(frozen=True)
class VMClipFiles:
    """One clip of the VM layout: frame files per folder (``com``, ``pha``, and where present
    ``fgr``, ``bgr``), all with the same names."""

    subset: str
    name: str
    folder: Path
    files: dict[str, list[Path]]

    def read(self) -> dict[str, np.ndarray]:
        """Load every folder: ``pha`` as ``(T, H, W)``, the others ``(T, H, W, 3)``, float32 in [0, 1]."""
        size = read_alpha(self.files["com"][0]).shape
        return {
            kind: read_frames(paths, read_alpha if kind == "pha" else read_rgb, size)
            for kind, paths in self.files.items()
        }


def list_vm_clips(root: str | os.PathLike) -> list[VMClipFiles]:
    """The clips of a VM-layout folder ``<root>/<subset>/<clip>/{com,pha,fgr,bgr}/``.

    Raises:
        VidmatteError: no clip found, a clip without ``com`` or ``pha``, or folders of one clip
            holding different frames.
    """
    root = Path(root)
    if not root.is_dir():
        raise VidmatteError(f"{root}: no such folder")
    clips = []
    for subset in sorted(p for p in root.iterdir() if p.is_dir()):
        for folder in sorted(p for p in subset.iterdir() if p.is_dir()):
            present = [k for k in VM_FOLDERS if (folder / k).is_dir()]
            if not present:
                continue
            for required in ("com", "pha"):
                if required not in present:
                    raise VidmatteError(f"{folder}: VM clip without a '{required}' folder")
            files = {kind: list_frames(folder / kind) for kind in present}
            _check_same_frames(folder, files)
            clips.append(VMClipFiles(subset.name, folder.name, folder, files))
    if not clips:
        raise VidmatteError(f"{root}: no clip in the VM layout <subset>/<clip>/{{com,pha}}/ found")
    return clips


@dataclass(frozen=True)
class VIMClipFiles:
    """One clip of the VIM50 layout: composite frames and each instance's alpha frames."""

    name: str
    folder: Path
    com: list[Path]
    instances: dict[str, list[Path]]

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """``com (T, H, W, 3)`` and ``alphas (N, T, H, W)``, float32 in [0, 1]."""
        com = read_frames(self.com, read_rgb)
        alphas = np.stack(
            [read_frames(paths, read_alpha, com.shape[1:3]) for paths in self.instances.values()]
        )
        return com, alphas


def list_vim_clips(root: str | os.PathLike) -> list[VIMClipFiles]:
    """The clips of a VIM50-layout folder ``<root>/<clip>/{com,pha/<instance>}/``.

    Raises:
        VidmatteError: no clip, a clip without ``com`` or instances, an instance whose frames
            differ from the composite's.
    """
    root = Path(root)
    if not root.is_dir():
        raise VidmatteError(f"{root}: no such folder")
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and (p / "com").is_dir()):
        if not (folder / "pha").is_dir():
            raise VidmatteError(f"{folder}: VIM clip without a 'pha' folder")
        instances = {p.name: list_frames(p) for p in sorted((folder / "pha").iterdir()) if p.is_dir()}
        if not instances:
            raise VidmatteError(f"{folder / 'pha'}: no instance folder (expected pha/<instance>/<frame>.png)")
        com = list_frames(folder / "com")
        _check_same_frames(folder, {"com": com, **{f"pha/{k}": v for k, v in instances.items()}})
        clips.append(VIMClipFiles(folder.name, folder, com, instances))
    if not clips:
        raise VidmatteError(f"{root}: no clip in the VIM50 layout <clip>/com/ found")
    return clips


def read_guidance(root: str | os.PathLike, clip: str, frames: int, kind: str = "tg_masks") -> np.ndarray:
    """Read a clip's guidance masks ``<root>/<kind>/<clip>/<track>/<frame>.png``.

    Args:
        frames: the clip's frame count; every track must have that many masks.

    Returns:
        ``(K, T, H, W)`` bool, tracks sorted by folder name.

    Raises:
        VidmatteError: missing folder, or a track with a different number of frames.
    """
    folder = Path(root) / kind / clip
    if not folder.is_dir():
        raise VidmatteError(f"{folder}: no such folder")
    tracks = []
    for track in sorted(p for p in folder.iterdir() if p.is_dir()):
        paths = list_frames(track)
        if len(paths) != frames:
            raise VidmatteError(f"{track}: {len(paths)} masks for a clip of {frames} frames")
        tracks.append(np.stack([read_mask(p) for p in paths]))
    if not tracks:
        raise VidmatteError(f"{folder}: no track folder")
    return np.stack(tracks)


@dataclass(frozen=True)
class CRGNNClipFiles:
    """One CRGNN clip: all frames, and the sparse alpha annotations keyed by frame index."""

    name: str
    frames: list[Path]
    annotations: dict[int, Path]


def list_crgnn_clips(root: str | os.PathLike) -> list[CRGNNClipFiles]:
    """The clips of a CRGNN-layout folder ``<root>/<clip>/{frames,alpha}/``.

    Raises:
        VidmatteError: a clip without one of the folders, or an alpha with no frame of that name.
    """
    root = Path(root)
    if not root.is_dir():
        raise VidmatteError(f"{root}: no such folder")
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found = {}
        for role, names in (("frames", CRGNN_FRAMES), ("alpha", CRGNN_ALPHAS)):
            found[role] = next((folder / n for n in names if (folder / n).is_dir()), None)
            if found[role] is None:
                raise VidmatteError(
                    f"{folder}: CRGNN clip without a '{role}' folder (one of {', '.join(names)})"
                )
        frames = list_frames(found["frames"])
        index = {p.stem: i for i, p in enumerate(frames)}
        annotations = {}
        for alpha in list_frames(found["alpha"]):
            if alpha.stem not in index:
                raise VidmatteError(f"{alpha}: no frame named {alpha.stem} in {found['frames']}")
            annotations[index[alpha.stem]] = alpha
        clips.append(CRGNNClipFiles(folder.name, frames, annotations))
    if not clips:
        raise VidmatteError(f"{root}: no clip in the CRGNN layout <clip>/{{frames,alpha}}/ found")
    return clips


def _check_same_frames(folder: Path, files: dict[str, list[Path]]) -> None:
    reference_kind, reference = next(iter(files.items()))
    names = [p.stem for p in reference]
    for kind, paths in files.items():
        if [p.stem for p in paths] != names:
            raise VidmatteError(
                f"{folder / kind}: {len(paths)} frames that do not match the {len(names)} of {reference_kind}"
            )


def read_frames(
    paths: list[Path], reader: Callable[[Path], np.ndarray], size: tuple[int, ...] | None = None
) -> np.ndarray:
    """Read frames with ``reader`` and stack them, checking that all have the same size.

    Args:
        size: the expected ``(H, W)``; by default the first frame's.

    Raises:
        VidmatteError: a frame of another size, naming it.
    """
    frames = []
    for path in paths:
        frame = reader(path)
        size = size or frame.shape[:2]
        if frame.shape[:2] != tuple(size):
            raise VidmatteError(
                f"{path}: size {frame.shape[1]}x{frame.shape[0]} differs from the clip's {size[1]}x{size[0]}"
            )
        frames.append(frame)
    return np.stack(frames)
