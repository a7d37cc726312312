"""Label real photos and videos of people with the shipped person models, as COCO instances for training.

The people that ``scripts/fetch_real_images.py`` puts in ``IN/people/`` carry no masks. This labels each
photo, and every ``--every``-th frame of each video, with one frame step of the person-track builder
(MoveNet boxes, selfie segmentation on a crop around each person, confident foreground the detector
missed), and writes a COCO instances file that ``data.kind: coco`` trains on (AdaM's segmentation
iterations)::

    OUT/images/<source>/<name>.png     the labelled images (video frames extracted)
    OUT/instances.json                 {"images", "annotations" (RLE, category 1), "categories"}

Images where nobody is found are left out. Pseudo-labels, not ground truth: they carry the models'
errors, which is why the real evaluation clips are never among them (fetch_real_images.py refuses them).
Usage::

    python scripts/label_real_people.py /work/realdata/people /work/realdata/labelled [--every 10]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vidmatte.io.frames import IMAGE_EXTENSIONS, read_rgb_u8, write_image
from vidmatte.io.jsonfile import write_json
from vidmatte.io.masks import encode_rle
from vidmatte.io.reader import open_frames
from vidmatte.segmentation.frame_instances import frame_instances
from vidmatte.segmentation.tracks import DEFAULT_CONFIG, load_person_models

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def images_of(people: Path, every: int) -> Iterator[tuple[str, np.ndarray]]:
    """``(relative name, (H, W, 3) uint8 RGB)`` of every photo, and of every ``every``-th video frame."""
    for path in sorted(p for p in people.rglob("*") if p.is_file()):
        name = path.relative_to(people).with_suffix("")
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            yield f"{name}.png", read_rgb_u8(path)
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            with open_frames(path) as frames:
                for frame in frames:
                    if frame.index % every == 0:
                        yield f"{name}/{frame.index:06d}.png", frame.image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("people", type=Path, help="folder of photos and videos of people")
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--every", type=int, default=10, help="label every N-th video frame (default 10)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    detect, segment = load_person_models(args.device)
    images, annotations = [], []
    for name, image in images_of(args.people, args.every):
        instances = frame_instances(image, detect(image), segment, DEFAULT_CONFIG)
        if not instances:
            print(f"{name}: nobody found, left out", flush=True)
            continue
        image_id = len(images) + 1
        write_image(args.out / "images" / name, image)
        height, width = image.shape[:2]
        images.append({"id": image_id, "file_name": name, "height": height, "width": width})
        for instance in instances:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": encode_rle(instance.mask.full((height, width))),
                    "score": instance.score,
                }
            )
        print(f"{name}: {len(instances)} people", flush=True)
    data = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    write_json(args.out / "instances.json", data)
    print(f"{args.out}: {len(images)} images, {len(annotations)} people", flush=True)


if __name__ == "__main__":
    main()
