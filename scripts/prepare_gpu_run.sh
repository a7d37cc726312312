#!/usr/bin/env bash
# Fill .gpu/ (git-ignored) with what `make train-gpu` needs on a lent GPU machine that reaches no registry:
# the wheels its Python 3.12 lacks (pycocotools) and the ImageNet MobileNetV2 checkpoint.
# Then, with the device tool: carry [".gpu"] and run
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/*.whl && \
#   PYTHONPATH=/tmp/site VIDMATTE_HOME=.gpu OUT=$OUT make train-gpu
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu pycocotools==2.0.10
.venv/bin/vidmatte fetch-backbone --out .gpu/mobilenet_v2-b0353104.pth
ls -la .gpu
