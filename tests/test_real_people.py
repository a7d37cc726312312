"""The shipped person models on a real photograph of a person (NASA's astronaut, public domain), moving
across a small clip: tracks, AdaM's first-frame mask, and MSG-VIM without user masks."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as samples

from vidmatte.cli import main
from vidmatte.io.masks import decode_rle, read_ytvis_json
from vidmatte.segmentation.first_frame import PeopleSegmentor

SIDE, FRAMES, STEP = 160, 6, 4
# the astronaut's body in the 160x160 frame of a 192x192 photograph whose left edge is at x = 0
PERSON = (slice(20, 160), slice(40, 110))
BACKGROUND = (slice(0, 40), slice(130, 160))  # the flag's and the wall's corner, no one there


def frame(index: int) -> np.ndarray:
    photo = np.asarray(Image.fromarray(samples.astronaut()).resize((SIDE + 32, SIDE + 32), Image.BILINEAR))
    return np.ascontiguousarray(photo[:SIDE, STEP * index : STEP * index + SIDE])


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("real") / "astronaut.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = SIDE
        stream.pix_fmt, stream.options = "yuv444p", {"crf": "12"}
        for index in range(FRAMES):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame(index), "rgb24")))
        container.mux(stream.encode(None))
    return path


def shifted(region: tuple[slice, slice], index: int) -> tuple[slice, slice]:
    rows, columns = region
    return rows, slice(columns.start - STEP * index, columns.stop - STEP * index)


def test_the_first_frame_mask_is_the_person():
    image = torch.from_numpy(frame(0)).permute(2, 0, 1)[None].float() / 255
    mask = PeopleSegmentor()(image)[0, 0].numpy()
    assert mask[PERSON].mean() > 0.6 and mask[BACKGROUND].mean() < 0.05


def test_one_track_follows_the_person_and_reads_back(clip, tmp_path, capsys):
    assert main(["segment", str(clip), "--out", str(tmp_path / "tracks.json")]) == 0
    (track,) = read_ytvis_json(tmp_path / "tracks.json")
    assert len(track.segmentations) == FRAMES
    for index, rle in enumerate(track.segmentations):
        mask = decode_rle(rle)
        assert mask[shifted(PERSON, index)].mean() > 0.6 and mask[shifted(BACKGROUND, index)].mean() < 0.05


def test_msgvim_without_masks_tracks_the_people_itself(clip, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["matte", str(clip), "--model", "msgvim", "--out", str(out), "--outputs", "alpha"]) == 0
    err = capsys.readouterr().err
    assert "no --masks given: tracking the people first" in err and "1 people tracked" in err
    (alpha,) = sorted((out / "alpha").iterdir())
    with av.open(str(alpha)) as container:
        mattes = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(mattes) == FRAMES
    for index, matte in enumerate(mattes):
        assert (
            matte[shifted(PERSON, index)].mean() > 0.5 * 255 > 10 * matte[shifted(BACKGROUND, index)].mean()
        )
