"""What a command's start-up imports: the parser and the evaluator leave the heavy libraries alone."""

from __future__ import annotations

import subprocess
import sys


def _imported_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """The ``modules`` that a fresh interpreter has imported after running ``code``."""
    check = f"import sys\n{code}\nprint(' '.join(m for m in {modules!r} if m in sys.modules))"
    return subprocess.run(
        [sys.executable, "-c", check], capture_output=True, check=True, text=True
    ).stdout.split()


def test_building_the_parser_imports_neither_scipy_ndimage_nor_torch():
    assert (
        _imported_after("import vidmatte.cli; vidmatte.cli.build_parser()", ("scipy.ndimage", "torch")) == []
    )


def test_the_evaluator_imports_neither_pyav_nor_torch():
    assert _imported_after("import vidmatte.metrics.runner", ("av", "torch", "scipy.ndimage")) == []
