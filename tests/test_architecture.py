"""The layers of docs/ARCHITECTURE.md: a package imports only from packages below it (never above, never
a peer), read from every module's imports with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vidmatte"
# lower numbers lie below; the package root (vidmatte/__init__.py: __version__ and lazy shortcuts) is open
LAYERS = {
    "errors": 0,
    "validation": 0,
    "io": 1,
    "models": 1,
    "parallel": 1,
    "data": 2,
    "export": 2,
    "metrics": 2,
    "segmentation": 2,
    "inference": 3,
    "training": 3,
    "demo": 4,
    "app": 4,
    "cli": 5,
}


def part_of(module: str) -> str | None:
    """``vidmatte.io.reader`` -> ``io``; ``None`` for the package root and for other libraries."""
    parts = module.split(".")
    return parts[1] if parts[0] == "vidmatte" and len(parts) > 1 else None


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every vidmatte import in ``path`` (inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            if node.module == "vidmatte":  # from vidmatte import io -> a subpackage
                found += [(node.lineno, f"vidmatte.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, module) for line, module in found if module.split(".")[0] == "vidmatte"]


def layering_errors(package: Path) -> list[str]:
    errors = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative == Path("__init__.py"):
            continue
        own = relative.parts[0].removesuffix(".py")
        if own not in LAYERS:
            errors.append(f"{relative}: package {own} has no layer in LAYERS (docs/ARCHITECTURE.md)")
            continue
        for line, module in imports(path):
            other = part_of(module)
            if other is None or other == own or (other not in LAYERS and not (package / other).exists()):
                continue
            if other not in LAYERS or LAYERS[other] >= LAYERS[own]:
                errors.append(f"{relative}:{line}: {own} (layer {LAYERS[own]}) imports {module}")
    return errors


def test_no_module_imports_from_a_package_above_or_beside_it():
    assert layering_errors(PACKAGE) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from vidmatte.inference.video import matte_video\n", "imports vidmatte.inference.video"),
        ("def f():\n    import vidmatte.cli\n", "imports vidmatte.cli"),
        ("from vidmatte import segmentation\n", "imports vidmatte.segmentation"),
    ],
)
def test_the_check_catches_an_import_from_above(tmp_path, source, expected):
    package = tmp_path / "vidmatte"
    for name in ("io", "segmentation", "inference"):
        (package / name).mkdir(parents=True)
    (package / "io" / "bad.py").write_text(source)
    errors = layering_errors(package)
    assert any(error.startswith("io/bad.py") and expected in error for error in errors), errors
