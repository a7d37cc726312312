import os
import sys
from pathlib import Path

# Two pytest workers on two cores: one thread each. Set before torch is imported, and inherited by the
# subprocesses that tests start (torchrun, the CLI), or threads fight over the cores (10x slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The numpy + OpenCV formulation of the metrics lives with the benchmarks; tests compare against it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
