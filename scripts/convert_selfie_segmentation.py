"""Convert MediaPipe's selfie segmentation TFLite models to vidmatte's PyTorch safetensors weights.

Reads the two ``.tflite`` files from the pinned PyPI wheel ``mediapipe==0.10.14`` (sha256 checked;
never installed), maps their weights onto :class:`vidmatte.segmentation.selfie.SelfieSegmentation`
and writes ``selfie_segmentation_{general,landscape}.safetensors`` with their licence files.

The original stores its weights as float16 (DEQUANTIZE ops feed every convolution); the shipped
files hold exactly those values. Run it in a throw-away environment that sees vidmatte::

    python3 -m venv /tmp/venv-convert && /tmp/venv-convert/bin/pip install -e . tflite==2.18.0
    /tmp/venv-convert/bin/pip install ai-edge-litert==2.3.0      # optional: compare with the original
    /tmp/venv-convert/bin/python scripts/convert_selfie_segmentation.py [--wheel mediapipe-0.10.14-...whl]

Without ``--wheel`` the wheel is fetched with ``pip download --no-deps``. When ``ai_edge_litert``
is importable, the original runs on the reference images and the script prints how far the
converted network is from it; ``--fixtures tests/fixtures/selfie_segmentation`` also writes those
reference outputs for ``tests/test_selfie_segmentation.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidmatte.models.loading import MODEL_KEY
from vidmatte.segmentation.selfie import (
    INPUT_SIZES,
    SelfieSegmentation,
    load_selfie_segmentation,
    resize_images,
    weights_model_name,
)

PACKAGE, VERSION = "mediapipe", "0.10.14"
WHEEL = "mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA256 = "a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4"
TFLITE_FILES = {
    "general": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    "landscape": "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
}
LICENSE_FILE = "mediapipe-0.10.14.dist-info/LICENSE"
REPO = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = REPO / "src" / "vidmatte" / "weights"
# Reference images: boxes (x0, y0, x1, y1) on skimage.data.astronaut() (a public-domain NASA photo),
# and one crop of an OpenCV sample video committed beside the fixtures (its README says which).
VTEST_CROP = "vtest_0200_crop.png"
REFERENCE_CASES: dict[str, dict[str, tuple[str, tuple[int, int, int, int]]]] = {
    "general": {
        "astronaut": ("astronaut", (0, 0, 512, 512)),
        "astronaut_portrait": ("astronaut", (100, 0, 400, 400)),
        "vtest_crop": (VTEST_CROP, (0, 0, 256, 144)),
    },
    "landscape": {
        "astronaut_wide": ("astronaut", (0, 112, 512, 400)),
        "vtest_crop": (VTEST_CROP, (0, 0, 256, 144)),
    },
}
CONV_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "Convolution2DTransposeBias")


def fetch_wheel(wheel: Path | None, folder: Path) -> Path:
    """The pinned wheel: ``wheel`` if given, else downloaded into ``folder``; its sha256 checked."""
    if wheel is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
             "3.11", "--platform", "manylinux_2_17_x86_64", "--implementation", "cp",
             f"{PACKAGE}=={VERSION}", "-d", str(folder)],
            check=True,
        )  # fmt: skip
        wheel = folder / WHEEL
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256} ({PACKAGE}=={VERSION})")
    return wheel


def builtin_name(model, operator) -> str:
    """The operator's name: a builtin's enum name or a custom op's code."""
    import tflite

    code = model.OperatorCodes(operator.OpcodeIndex())
    number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    if number == tflite.BuiltinOperator.CUSTOM:
        return code.CustomCode().decode()
    return next(k for k, v in vars(tflite.BuiltinOperator).items() if v == number)


def read_convolutions(tflite_bytes: bytes) -> list[tuple[str, int, np.ndarray, np.ndarray]]:
    """Every convolution of the graph in execution order: ``(kind, stride, kernel, bias)``.

    Kernels keep TFLite's layout, ``(out, kh, kw, in)`` (depthwise: ``(1, kh, kw, channels)``), and
    the float16 values of the constants behind the DEQUANTIZE ops, as float16.
    """
    import tflite

    model = tflite.Model.GetRootAsModel(tflite_bytes, 0)
    graph = model.Subgraphs(0)
    dequantized_from = {}
    operators = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    for op in operators:
        if builtin_name(model, op) == "DEQUANTIZE":
            dequantized_from[int(op.Outputs(0))] = int(op.Inputs(0))

    def constant(index: int) -> np.ndarray:
        tensor = graph.Tensors(dequantized_from[index])
        if tensor.Type() != tflite.TensorType.FLOAT16:
            raise ValueError(f"{tensor.Name().decode()}: expected a float16 constant")
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        return np.frombuffer(data.tobytes(), dtype=np.float16).reshape(tensor.ShapeAsNumpy())

    convolutions = []
    for op in operators:
        kind = builtin_name(model, op)
        if kind not in CONV_KINDS:
            continue
        if kind == "Convolution2DTransposeBias":
            # custom options: TfLiteTransposeConvParams {padding, stride_width, stride_height}
            stride = int(np.frombuffer(op.CustomOptionsAsNumpy().tobytes(), dtype=np.int32)[1])
        else:
            options = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
            table = op.BuiltinOptions()
            options.Init(table.Bytes, table.Pos)
            stride = options.StrideW()
        convolutions.append((kind, stride, constant(int(op.Inputs(1))), constant(int(op.Inputs(2)))))
    return convolutions


def layers_in_graph_order(network: SelfieSegmentation) -> list[nn.Conv2d | nn.ConvTranspose2d]:
    """The network's convolutions in the order the TFLite graph runs them."""
    encoder = network.encoder
    layers: list[nn.Conv2d | nn.ConvTranspose2d] = [encoder.stem]
    for block in encoder.blocks:
        layers += [block.expand, block.depthwise]
        if block.excite is not None:
            layers += [block.excite.reduce, block.excite.expand]
        layers.append(block.project)
    layers += [network.head.branch, network.head.gate]
    for up, stage in zip(network.ups, network.stages, strict=True):
        layers += [up.conv, stage.attention.reduce, stage.attention.expand, stage.refine, stage.depthwise]
    return [*layers, network.output]


def to_torch_layout(kind: str, kernel: np.ndarray) -> torch.Tensor:
    """A TFLite kernel in PyTorch's layout.

    CONV_2D ``(out, kh, kw, in)`` -> ``(out, in, kh, kw)``; DEPTHWISE_CONV_2D ``(1, kh, kw, C)`` ->
    ``(C, 1, kh, kw)``; the transposed conv ``(out, kh, kw, in)`` -> ``(in, out, kh, kw)``.
    """
    order = (0, 3, 1, 2) if kind == "CONV_2D" else (3, 0, 1, 2)
    return torch.from_numpy(kernel.transpose(order).copy())


def convert(tflite_bytes: bytes, variant: str) -> dict[str, torch.Tensor]:
    """The float16 state dict of ``variant``'s network from its TFLite graph (layers matched in order)."""
    network = SelfieSegmentation(INPUT_SIZES[variant])
    names = {module: name for name, module in network.named_modules()}
    layers = layers_in_graph_order(network)
    convolutions = read_convolutions(tflite_bytes)
    if len(layers) != len(convolutions):
        sys.exit(f"{variant}: {len(convolutions)} convolutions in the graph, {len(layers)} in the network")
    state = {}
    for layer, (kind, stride, kernel, bias) in zip(layers, convolutions, strict=True):
        weight = to_torch_layout(kind, kernel)
        depthwise = isinstance(layer, nn.Conv2d) and layer.groups > 1
        fits = (
            weight.shape == layer.weight.shape
            and stride == layer.stride[0]
            and (kind == "DEPTHWISE_CONV_2D") == depthwise
            and (kind == "Convolution2DTransposeBias") == isinstance(layer, nn.ConvTranspose2d)
        )
        if not fits:
            sys.exit(f"{variant}: {kind} {tuple(kernel.shape)} stride {stride} does not fit {names[layer]}")
        state[f"{names[layer]}.weight"] = weight
        state[f"{names[layer]}.bias"] = torch.from_numpy(bias.copy())
    network.load_state_dict(state, strict=True)  # every tensor of the network is set
    return state


def write_license(wheel_license: str, variant: str, out_dir: Path) -> Path:
    """Apache-2.0 text (as the wheel ships it) under a header saying where the weights come from."""
    apache = wheel_license.split("=" * 20)[0].rstrip() + "\n"
    header = (
        f"selfie_segmentation_{variant}.safetensors\n\n"
        f"Original: {TFLITE_FILES[variant]} in the PyPI wheel {PACKAGE}=={VERSION}\n"
        f"  ({WHEEL}, sha256 {WHEEL_SHA256}).\n"
        "Authors: Google LLC / The MediaPipe Authors (https://github.com/google/mediapipe).\n"
        "Licence: Apache License 2.0, full text below (the LICENSE of that wheel).\n"
        "Changes: converted to PyTorch safetensors by scripts/convert_selfie_segmentation.py: the float16\n"
        "  weights are unchanged; kernels are transposed from TFLite's layout to PyTorch's.\n\n"
    )
    path = out_dir / f"selfie_segmentation_{variant}.LICENSE.txt"
    path.write_text(header + "-" * 76 + "\n\n" + apache)
    return path


def reference_image(source: str, box: tuple[int, int, int, int], fixtures: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB: a box of the astronaut photo or of a committed fixture image."""
    if source == "astronaut":
        import skimage.data

        image = skimage.data.astronaut()
    else:
        from PIL import Image

        image = np.asarray(Image.open(fixtures / source).convert("RGB"))
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


def network_input(image: np.ndarray, variant: str) -> torch.Tensor:
    """``(1, 3, h, w)`` float in [0, 1] at the variant's input size (what ``segment_people`` feeds)."""
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0
    return resize_images(x, INPUT_SIZES[variant])


def run_original(tflite_bytes: bytes, x: torch.Tensor) -> np.ndarray:
    """The TFLite model's ``(h, w)`` probability on ``x`` ``(1, 3, h, w)``, run by LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite_bytes, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.permute(0, 2, 3, 1).numpy())
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0, :, :, 0]


def compare(tflite_bytes: bytes, variant: str, weights: Path, fixtures: Path, write: bool) -> None:
    """Print the converted network's distance from the original; write the fixtures if asked."""
    network = load_selfie_segmentation(variant, weights=weights)
    arrays = {}
    for case, (source, box) in REFERENCE_CASES[variant].items():
        x = network_input(reference_image(source, box, fixtures), variant)
        original = run_original(tflite_bytes, x)
        with torch.no_grad():
            ours = network(x)[0, 0].numpy()
        diff = np.abs(ours - original)
        print(f"{variant}/{case}: max abs diff {diff.max():.2e}, mean {diff.mean():.2e}")
        arrays[f"{case}.prob"] = original.astype(np.float16)
        arrays[f"{case}.box"] = np.array(box, dtype=np.int32)
        arrays[f"{case}.source"] = np.array(source)
    if write:
        np.savez_compressed(fixtures / f"{variant}.npz", **arrays)
        print(f"wrote {fixtures / f'{variant}.npz'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"the {WHEEL} (else pip download)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder for weights and licences")
    parser.add_argument("--fixtures", type=Path, help="write the original's reference outputs here")
    args = parser.parse_args()
    try:
        import tflite  # noqa: F401
    except ImportError:
        sys.exit("this script needs the tflite package: pip install tflite==2.18.0")
    try:
        import ai_edge_litert  # noqa: F401

        have_litert = True
    except ImportError:
        have_litert = False
        if args.fixtures is not None:
            sys.exit("--fixtures needs the original runtime: pip install ai-edge-litert==2.3.0")
    fixtures = args.fixtures or REPO / "tests" / "fixtures" / "selfie_segmentation"
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as tmp:
        wheel = fetch_wheel(args.wheel, Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            wheel_license = archive.read(LICENSE_FILE).decode()
            graphs = {variant: archive.read(name) for variant, name in TFLITE_FILES.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    for variant, tflite_bytes in graphs.items():
        weights = args.out / f"selfie_segmentation_{variant}.safetensors"
        metadata = {
            MODEL_KEY: weights_model_name(variant),
            "source": f"{PACKAGE}=={VERSION} {TFLITE_FILES[variant]}",
        }
        save_file(convert(tflite_bytes, variant), str(weights), metadata=metadata)
        print(f"wrote {weights} and {write_license(wheel_license, variant, args.out)}")
        if have_litert:
            compare(tflite_bytes, variant, weights, fixtures, write=args.fixtures is not None)


if __name__ == "__main__":
    main()
