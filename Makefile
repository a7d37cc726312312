# Every target creates .venv/ on first use, so `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format clean train-gpu

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev,export]'
	# compile the metric kernels into numba's cache now, so that the first `vidmatte eval` does not
	$(BIN)/python -c 'from vidmatte.metrics.runner import warm_up_kernels; warm_up_kernels()'
	touch $(STAMP)

# the browser tests of `vidmatte app` drive Debian's headless Chromium through its chromedriver
BROWSER := $(VENV)/.browser
$(BROWSER): $(STAMP)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	touch $@

demo: $(STAMP)
	$(BIN)/vidmatte demo

test: $(STAMP) $(BROWSER)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The GPU recipe of the default weights: on a machine whose python3 has PyTorch with CUDA (no venv made),
# within 9 minutes; weights and runs go to $OUT (default runs/gpu). See README "Training on a GPU".
GPU_PYTHON ?= python3
train-gpu:
	PYTHONPATH=src$${PYTHONPATH:+:$$PYTHONPATH} $(GPU_PYTHON) -m vidmatte.cli train-recipe \
		--out $${OUT:-runs/gpu} --budget $${BUDGET:-540} --device cuda

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) demo_out
