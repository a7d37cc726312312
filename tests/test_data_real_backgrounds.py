"""Real photographs as the synthetic generator's photo backgrounds (``SourceConfig.backgrounds``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vidmatte.data.synthetic.background import list_photos, sample_background
from vidmatte.data.synthetic.clips import ClipSpec, generate_clip
from vidmatte.errors import VidmatteError
from vidmatte.training.batches import IndexedClips
from vidmatte.training.config import SourceConfig

MAGENTA, CYAN = (255, 0, 255), (0, 255, 255)


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Two solid-colour 'photographs', one in a sub-folder (the fetch script's layout), and a text file."""
    (tmp_path / "source-a").mkdir()
    Image.new("RGB", (120, 90), MAGENTA).save(tmp_path / "source-a" / "one.png")
    Image.new("RGB", (200, 100), CYAN).save(tmp_path / "two.jpg", quality=100)
    (tmp_path / "SOURCES.md").write_text("not an image")
    return tmp_path


def test_list_photos_finds_images_in_sub_folders_only(photo_folder: Path) -> None:
    assert list_photos((str(photo_folder),)) == (
        str(photo_folder / "source-a" / "one.png"),
        str(photo_folder / "two.jpg"),
    )


def test_list_photos_rejects_a_missing_folder_and_a_folder_without_images(tmp_path: Path) -> None:
    with pytest.raises(VidmatteError, match="missing: no such folder"):
        list_photos((str(tmp_path / "missing"),))
    (tmp_path / "empty").mkdir()
    with pytest.raises(VidmatteError, match="empty: no background photograph"):
        list_photos((str(tmp_path / "empty"),))


def test_photo_backgrounds_come_from_the_given_photographs(photo_folder: Path) -> None:
    photos = list_photos((str(photo_folder),))
    seen = set()
    for seed in range(12):
        background = sample_background(np.random.default_rng(seed), 48, 64, 2, moving=False, photos=photos)
        if background.kind != "photo":
            continue
        colours = {tuple(c) for c in background.canvas.reshape(-1, 3)}
        assert len(colours) == 1  # one solid photograph, not a scikit-image sample
        (colour,) = colours
        assert np.abs(np.subtract(colour, MAGENTA)).max() <= 2 or np.abs(np.subtract(colour, CYAN)).max() <= 2
        seen.add(colour)
    assert len(seen) == 2  # both photographs are drawn


def test_clips_and_training_streams_use_the_photo_folders(photo_folder: Path) -> None:
    spec = ClipSpec(frames=2, width=64, height=48, backgrounds=(str(photo_folder),))
    backgrounds = [generate_clip(seed, spec).bgr for seed in range(8)]
    # magenta or cyan under changing light: one channel far below the other two
    assert any(np.median(b.min(axis=-1)) < 0.2 * np.median(b.max(axis=-1)) for b in backgrounds)
    source = SourceConfig(kind="synthetic", frames=2, size=(48, 64), backgrounds=(str(photo_folder),))
    assert IndexedClips(source).dataset.config.spec.backgrounds == (str(photo_folder),)


def test_an_unreadable_photograph_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png")
    photos = list_photos((str(tmp_path),))
    with pytest.raises(VidmatteError, match=r"broken\.png: unreadable background photograph"):
        for seed in range(12):
            sample_background(np.random.default_rng(seed), 48, 64, 2, moving=False, photos=photos)
