"""Parameter sweeps: the numba sweep kernel and its Python driver."""

from gridflow.sweep.data import SweepData
from gridflow.sweep.engine import IndicatorTable, SweepResult, expand_grid, run_sweep
from gridflow.sweep.metrics import METRICS

__all__ = ["METRICS", "IndicatorTable", "SweepData", "SweepResult", "expand_grid", "run_sweep"]
