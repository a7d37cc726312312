import sys
from pathlib import Path

# The numpy + OpenCV formulation of the metrics lives with the benchmarks; tests compare against it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
