"""MoveNet MultiPose rebuilt in PyTorch: equal to the original graph, and the detection API around it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from tests.oracles.movenet_reference import (
    POSITION_TOLERANCE,
    SCORE_TOLERANCE,
    crowd,
    flat_grey,
    load_reference_outputs,
    output_differences,
    reference_images,
    vtest_crop,
)
from vidmatte.errors import VidmatteError
from vidmatte.segmentation.movenet import (
    WEIGHTS_PATH,
    MoveNetMultiPose,
    PersonDetections,
    detect_people,
    load_person_detector,
)

BOX_COLUMNS = slice(51, 55)  # ymin, xmin, ymax, xmax of the (6, 56) output


@pytest.fixture(scope="module")
def model() -> MoveNetMultiPose:
    return load_person_detector()


def network_input(image: np.ndarray) -> torch.Tensor:
    return torch.tensor(image).permute(2, 0, 1)[None].float()


def pixel_boxes(people: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(N, 56)`` outputs -> ``(N, 4)`` x0, y0, x1, y1 in pixels of a ``height x width`` image."""
    ymin, xmin, ymax, xmax = people[:, BOX_COLUMNS].T
    return np.stack([xmin * width, ymin * height, xmax * width, ymax * height], axis=-1)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` x0, y0, x1, y1 boxes -> ``(N, M)``."""
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    overlap = np.prod(np.clip(high - low, 0.0, None), axis=-1)
    areas_a, areas_b = np.prod(a[:, 2:] - a[:, :2], axis=-1), np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return overlap / (areas_a[:, None] + areas_b[None, :] - overlap)


@pytest.mark.parametrize("name", sorted(reference_images()))
def test_matches_the_original_graph(model: MoveNetMultiPose, name: str) -> None:
    # measured on the capture machine: positions <= 5.5e-6, scores <= 3.5e-6 (float32 CPU)
    with torch.no_grad():
        outputs = model(network_input(reference_images()[name])).numpy()
    positions, scores = output_differences(outputs, load_reference_outputs()[name])
    assert positions < POSITION_TOLERANCE
    assert scores < SCORE_TOLERANCE


def test_a_batch_decodes_each_image_as_alone(model: MoveNetMultiPose) -> None:
    images = network_input(crowd()).repeat(2, 1, 1, 1)
    images[1] = images[1].flip(-1)
    with torch.no_grad():
        together = model(images)
        alone = torch.cat([model(images[i : i + 1]) for i in range(2)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_detections_map_back_to_pixels_of_any_size(model: MoveNetMultiPose) -> None:
    # the crop scaled to 501x251 (no side a multiple of 32): at input_width=384 the network sees it
    # back at about its own size (384x192), so the people are the reference's, in the new pixels
    image = np.asarray(Image.fromarray(vtest_crop()).resize((501, 251), Image.Resampling.BICUBIC))
    found = detect_people(model, image, min_score=0.2, input_width=384)
    reference = load_reference_outputs()["vtest_crop"][0]
    expected = pixel_boxes(reference[reference[:, -1] >= 0.2], 251, 501)
    assert len(found) == len(expected) == 5
    assert iou(expected, found.boxes).max(axis=1).min() > 0.8
    assert np.all(np.diff(found.scores) <= 0)
    confident = found.keypoints[..., 2] > 0.3
    x, y = found.keypoints[..., 0], found.keypoints[..., 1]
    boxes = found.boxes[:, None, :]
    margin = 0.1 * (boxes[..., 3] - boxes[..., 1])  # keypoints of a person lie in or near its box
    inside = (x > boxes[..., 0] - margin) & (x < boxes[..., 2] + margin)
    inside &= (y > boxes[..., 1] - margin) & (y < boxes[..., 3] + margin)
    assert confident.sum() > 30 and inside[confident].all()


def test_padding_at_the_bottom_keeps_pixels_in_place(model: MoveNetMultiPose) -> None:
    crop = vtest_crop()  # 192x384; 45 grey rows more: 237 high, padded to 256 inside
    image = np.concatenate([crop, np.full((45, 384, 3), 128, np.uint8)])
    found = detect_people(model, image, input_width=384)
    reference = load_reference_outputs()["vtest_crop"][0]
    expected = pixel_boxes(reference[reference[:, -1] >= 0.2], 192, 384)
    assert len(found) == 5
    assert iou(expected, found.boxes).max(axis=1).min() > 0.8
    assert found.boxes[:, 3].max() <= 237


def test_more_than_six_people_gives_six(model: MoveNetMultiPose) -> None:
    image = crowd()  # twelve people
    found = detect_people(model, image, input_width=image.shape[1])
    assert isinstance(found, PersonDetections)
    assert len(found) == 6 and found.scores.min() >= 0.2
    assert found.boxes.shape == (6, 4) and found.keypoints.shape == (6, 17, 3)
    overlaps = iou(found.boxes, found.boxes)
    assert overlaps[~np.eye(6, dtype=bool)].max() < 0.3  # six different people


def test_an_empty_scene_gives_nobody(model: MoveNetMultiPose) -> None:
    found = detect_people(model, flat_grey())
    assert len(found) == 0
    assert found.boxes.shape == (0, 4) and found.keypoints.shape == (0, 17, 3) and found.scores.shape == (0,)
    assert found.boxes.dtype == found.keypoints.dtype == found.scores.dtype == np.float32


def test_wrong_images_are_refused(model: MoveNetMultiPose) -> None:
    for image in (
        np.zeros((64, 64), np.uint8),
        np.zeros((64, 64, 3), np.float32),
        np.zeros((0, 64, 3), np.uint8),
    ):
        with pytest.raises(VidmatteError, match="expected \\(H, W, 3\\) uint8"):
            detect_people(model, image)


def test_corrupt_weights_are_refused_naming_the_file(tmp_path) -> None:
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(WEIGHTS_PATH.read_bytes()[:1000])
    state = load_file(str(WEIGHTS_PATH))
    state["heads.center.output.weight"] = torch.zeros(2, 96, 1, 1, dtype=torch.float16)
    wrong = tmp_path / "wrong_shape.safetensors"
    save_file(state, str(wrong), metadata={"model": "movenet-multipose"})
    for path, problem in (
        (corrupt, "cannot read"),
        (wrong, "of another shape"),
        (tmp_path / "no.safetensors", "no such"),
    ):
        with pytest.raises(VidmatteError) as error:
            load_person_detector(weights=path)
        message = str(error.value)
        assert message.startswith(str(path)) and problem in message and "\n" not in message
