"""scripts/fetch_real_images.py without the network: the evaluation clips are never taken, globs
that match nothing and package files that are not the pinned ones are errors, and archives unpack."""

from __future__ import annotations

import io
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from scripts import fetch_real_images as fetch


def test_the_evaluation_clips_are_never_selected(tmp_path: Path) -> None:
    data = tmp_path / "usr/share/doc/opencv-doc/examples/data"
    data.mkdir(parents=True)
    for name in ("vtest.avi", "Megamind.avi", "Megamind_bugy.avi", "other.avi", "messi5.jpg"):
        (data / name).write_bytes(b"x")
    chosen = fetch.select(tmp_path, ("usr/share/doc/opencv-doc/examples/data/*",))
    assert sorted(p.name for p in chosen) == ["messi5.jpg", "other.avi"]
    assert fetch.is_evaluation_clip("/a/VTEST.AVI") and not fetch.is_evaluation_clip("megamind.mp4")


def test_no_source_names_an_evaluation_clip() -> None:
    for source in fetch.SOURCES:
        for globs in source.files.values():
            assert not any(fetch.is_evaluation_clip(g) for g in globs), source.name


def test_a_glob_that_matches_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(fetch.FetchError, match=r"nothing matches missing/\*.jpg"):
        fetch.select(tmp_path, ("missing/*.jpg",))


def test_a_package_file_with_another_sha256_is_refused(tmp_path: Path) -> None:
    source = replace(fetch.SOURCES[0], registry="npm", package="demo", version="1.0.0", sha256="0" * 64)
    folder = tmp_path / "npm" / "demo-1.0.0"
    folder.mkdir(parents=True)
    (folder / "demo-1.0.0.tgz").write_bytes(b"tampered")
    with pytest.raises(fetch.FetchError, match="is not the pinned"):
        fetch.download(source, tmp_path)


def test_npm_and_wheel_archives_unpack_and_their_files_are_copied(tmp_path: Path) -> None:
    tgz, wheel = tmp_path / "demo-1.0.0.tgz", tmp_path / "demo-1.0-py3-none-any.whl"
    with tarfile.open(tgz, "w:gz") as archive:
        info = tarfile.TarInfo("package/demo/sample1.jpg")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"jpg"))
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo/data/photo.png", b"png")
    fetch.unpack(tgz, tmp_path / "npm")
    fetch.unpack(wheel, tmp_path / "wheel")
    assert (tmp_path / "npm/package/demo/sample1.jpg").read_bytes() == b"jpg"
    assert (tmp_path / "wheel/demo/data/photo.png").read_bytes() == b"png"


def test_sources_markdown_lists_every_source_with_its_counts() -> None:
    report = fetch.Report([(fetch.SOURCES[0], {"backgrounds": 3, "people": 2})])
    text = report.markdown()
    assert fetch.SOURCES[0].sha256 in text and "| 3 | 2 |" in text
    assert "Total: 3 backgrounds, 2 people files." in text
