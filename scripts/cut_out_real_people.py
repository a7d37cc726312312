"""Cut the labelled real people out of their photos, as foreground clips in the VideoMatte240K layout.

``scripts/label_real_people.py`` labels real photos and video frames with the shipped person models (a
COCO instances file). This turns each labelled image into a still foreground clip that the ``videomatte``
and ``instances`` data kinds composite over new backgrounds: the image as foreground colour and the union
of its people's masks, softened by a Gaussian of ``--soften`` pixels, as alpha::

    OUT/fgr/<name>/<i>.png     the image, --frames times (a still clip)
    OUT/pha/<name>/<i>.png     its pseudo-alpha

``--every N`` keeps, of the labelled video frames (``<source>/<video>/<index>.png``), those whose index is a
multiple of N, so that one long video does not outnumber the photos. Pseudo-labels, not ground truth: the
alpha is a segmentation mask with the models' errors and no hair or transparency. Usage::

    python scripts/cut_out_real_people.py /work/realdata/labelled15 /work/realdata/cutouts45 --every 45
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from vidmatte.io.frames import read_rgb_u8, write_image
from vidmatte.io.masks import decode_rle

VIDEO_FRAME = re.compile(r".+/(\d+)\.png$")


def cut_out(labelled: Path, out: Path, frames: int, every: int, soften: float) -> int:
    """Write the foreground clips of ``labelled`` (a ``label_real_people.py`` folder) to ``out``.

    Returns:
        The number of clips written.
    """
    data = json.loads((labelled / "instances.json").read_text())
    masks: dict[int, list[np.ndarray]] = {}
    for annotation in data["annotations"]:
        masks.setdefault(annotation["image_id"], []).append(decode_rle(annotation["segmentation"]))
    written = 0
    for image in data["images"]:
        video_frame = VIDEO_FRAME.fullmatch(image["file_name"])
        if image["id"] not in masks or (video_frame and int(video_frame.group(1)) % every):
            continue
        alpha = gaussian_filter(np.logical_or.reduce(masks[image["id"]]).astype(np.float32), soften)
        name = Path(image["file_name"]).with_suffix("").as_posix().replace("/", "_")
        colour = read_rgb_u8(labelled / "images" / image["file_name"])
        grey = (alpha * 255).round().astype(np.uint8)
        for index in range(frames):
            write_image(out / "fgr" / name / f"{index:02d}.png", colour)
            write_image(out / "pha" / name / f"{index:02d}.png", grey)
        written += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labelled", type=Path, help="a folder written by scripts/label_real_people.py")
    parser.add_argument("out", type=Path, help="output folder (VideoMatte240K layout)")
    parser.add_argument("--frames", type=int, default=3, help="frames of each still clip (default 3)")
    parser.add_argument("--every", type=int, default=1, help="keep every N-th labelled video frame")
    parser.add_argument("--soften", type=float, default=0.7, help="Gaussian sigma of the alpha's edge")
    args = parser.parse_args()
    count = cut_out(args.labelled, args.out, args.frames, args.every, args.soften)
    print(f"{args.out}: {count} foreground clips", flush=True)


if __name__ == "__main__":
    main()
