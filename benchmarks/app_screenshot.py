"""The README's screenshot of ``vidmatte app``, taken in the browser run of its end-to-end test.

Usage: ``python benchmarks/app_screenshot.py [--out docs/app.png] [--size 512x288]``

Runs ``tests/test_app.py::test_keep_one_of_two_people_matte_watch_and_download`` (Debian's headless
Chromium driving the page: a clip of two people, the right one dropped, MSG-VIM, preview, downloads) on
a clip of ``--size``, which saves the whole page once the job is done; the picture is then reduced to
256 colours so that it stays small in the repository.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/test_app.py::test_keep_one_of_two_people_matte_watch_and_download"
COLOURS = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "app.png")
    parser.add_argument("--size", default="512x288", help="the clip's WIDTHxHEIGHT")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        shot = Path(folder) / "page.png"
        environment = {**os.environ, "VIDMATTE_APP_SCREENSHOT": str(shot), "VIDMATTE_APP_SIZE": args.size}
        command = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:xdist", "-p", "no:cacheprovider"]
        subprocess.run(command, cwd=ROOT, env=environment, check=True)
        page = Image.open(shot).convert("RGB")
    page.quantize(COLOURS, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"{args.out}: {page.width}x{page.height}, {args.out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
