"""MediaPipe selfie segmentation rebuilt in PyTorch: equal to the original TFLite model, loads strictly.

The reference outputs in ``tests/fixtures/selfie_segmentation/`` are the original model's, run by LiteRT
(``scripts/convert_selfie_segmentation.py --fixtures``) on boxes of ``skimage.data.astronaut()`` and on a
crop of an OpenCV sample video; each ``.npz`` records the box and source of its cases, so the inputs are
rebuilt here exactly as the script built them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from vidmatte.errors import VidmatteError
from vidmatte.segmentation.selfie import (
    INPUT_SIZES,
    SelfieSegmentation,
    load_selfie_segmentation,
    resize_images,
    segment_people,
    weights_path,
)

FIXTURES = Path(__file__).parent / "fixtures" / "selfie_segmentation"
# Measured: at most 8.5e-5 (mean 2.9e-7) from LiteRT's float32 output; against the fixtures, stored as
# float16 (rounding up to 2.4e-4 near 1), at most 2.6e-4 (mean 1.6e-5). The bounds leave room for other
# CPUs' kernels; a misplaced pad or a flipped kernel is off by up to 1.
MAX_ABS_DIFF = 2e-3
MEAN_ABS_DIFF = 1e-4
# Hand-checked boxes (x0, y0, x1, y1) on the 512x512 astronaut photo: her face and suit; the wall
# in the top right corner.
PERSON_BOX = (170, 60, 290, 400)
BACKGROUND_BOX = (440, 0, 512, 60)


def as_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(1, 3, H, W)`` float in [0, 1]."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0


def source_image(source: str) -> np.ndarray:
    if source == "astronaut":
        return skimage.data.astronaut()
    return np.asarray(Image.open(FIXTURES / source).convert("RGB"))


@pytest.fixture(scope="module", params=sorted(INPUT_SIZES))
def variant_model(request: pytest.FixtureRequest) -> tuple[str, SelfieSegmentation]:
    return request.param, load_selfie_segmentation(request.param)


def test_matches_the_original_tflite_model(variant_model: tuple[str, SelfieSegmentation]) -> None:
    variant, model = variant_model
    with np.load(FIXTURES / f"{variant}.npz", allow_pickle=False) as fixture:
        cases = sorted({key.rsplit(".", 1)[0] for key in fixture.files})
        assert cases, f"{variant}.npz holds no cases"
        for case in cases:
            x0, y0, x1, y1 = fixture[f"{case}.box"].tolist()
            image = source_image(str(fixture[f"{case}.source"]))[y0:y1, x0:x1]
            with torch.no_grad():
                ours = model(resize_images(as_tensor(image), model.input_size))[0, 0].numpy()
            original = fixture[f"{case}.prob"].astype(np.float32)
            assert ours.shape == original.shape == INPUT_SIZES[variant]
            diff = np.abs(ours - original)
            assert diff.max() < MAX_ABS_DIFF, f"{variant}/{case}: max abs diff {diff.max():.2e}"
            assert diff.mean() < MEAN_ABS_DIFF, f"{variant}/{case}: mean abs diff {diff.mean():.2e}"
            # the reference is not trivial: it holds a person and background
            assert (original > 0.9).mean() > 0.05 and (original < 0.1).mean() > 0.3, case


def test_segments_the_astronaut(variant_model: tuple[str, SelfieSegmentation]) -> None:
    variant, model = variant_model
    probability = segment_people(model, as_tensor(skimage.data.astronaut()))[0, 0].numpy()
    for box, low, high in ((PERSON_BOX, 0.8, 1.0), (BACKGROUND_BOX, 0.0, 0.2)):
        x0, y0, x1, y1 = box
        mean = probability[y0:y1, x0:x1].mean()
        assert low < mean <= high, f"{variant}: mean probability {mean:.3f} in {box}"


@pytest.mark.parametrize("size", [(97, 211), (300, 120), (256, 256), (720, 1280)])
def test_segment_people_keeps_any_size(
    variant_model: tuple[str, SelfieSegmentation], size: tuple[int, int]
) -> None:
    _, model = variant_model
    images = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    probability = segment_people(model, images)
    assert probability.shape == (2, 1, *size)
    assert probability.dtype == torch.float32 and probability.is_contiguous()
    assert float(probability.min()) >= 0.0 and float(probability.max()) <= 1.0


def test_segment_people_refuses_other_shapes(variant_model: tuple[str, SelfieSegmentation]) -> None:
    _, model = variant_model
    with pytest.raises(VidmatteError, match=r"\(B, 3, H, W\)"):
        segment_people(model, torch.rand(1, 4, 32, 32))
    with pytest.raises(VidmatteError, match=r"\(B, 3, H, W\)"):
        segment_people(model, torch.rand(3, 32, 32))


def assert_one_line_naming(error: pytest.ExceptionInfo[VidmatteError], path: Path, words: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    assert words in message


def test_corrupt_weights_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "selfie.safetensors"
    path.write_bytes(b"\x12\x00\x00\x00\x00\x00\x00\x00not a safetensors header" * 10)
    with pytest.raises(VidmatteError) as error:
        load_selfie_segmentation(weights=path)
    assert_one_line_naming(error, path, "cannot read weights")


def test_missing_weights_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.safetensors"
    with pytest.raises(VidmatteError) as error:
        load_selfie_segmentation("landscape", weights=path)
    assert_one_line_naming(error, path, "no such weights file")


def test_wrong_shapes_are_refused(tmp_path: Path) -> None:
    state = load_file(str(weights_path("general")))
    state["encoder.stem.weight"] = state["encoder.stem.weight"][:8]
    path = tmp_path / "wrong.safetensors"
    save_file(state, str(path))
    with pytest.raises(VidmatteError) as error:
        load_selfie_segmentation(weights=path)
    assert_one_line_naming(error, path, "of another shape (first: encoder.stem.weight)")


def test_weights_of_the_other_variant_are_refused() -> None:
    path = weights_path("landscape")
    with pytest.raises(VidmatteError) as error:
        load_selfie_segmentation("general", weights=path)
    assert_one_line_naming(error, Path(path), "not of selfie-segmentation-general")


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(VidmatteError, match="unknown variant 'portrait'"):
        load_selfie_segmentation("portrait")  # type: ignore[arg-type]


def test_shipped_weights_load_in_float32_eval_mode(variant_model: tuple[str, SelfieSegmentation]) -> None:
    variant, model = variant_model
    assert not model.training
    assert model.input_size == INPUT_SIZES[variant]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    shipped = load_file(str(weights_path(variant)))
    assert all(t.dtype == torch.float16 for t in shipped.values())
    assert sum(t.numel() for t in shipped.values()) == sum(p.numel() for p in model.parameters())
