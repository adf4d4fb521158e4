"""The numba cache is keyed by the kernel sources only: editing the app, a flow or the
live engine compiles nothing; editing a kernel, or a module a kernel imports, starts
from a clean cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import gridflow
from gridflow._numba_cache import kernel_modules, kernel_source_hash

PKG = Path(gridflow.__file__).resolve().parent


def test_kernel_modules_are_the_kernels_and_what_they_import():
    names = {p.relative_to(PKG).as_posix() for p in kernel_modules()}
    assert {"operators/grid_kernel.py", "operators/risk.py", "operators/entry_gate.py",
            "operators/position.py", "operators/kernel_layout.py", "sweep/kernel.py",
            "operators/strategies/quote_kernel.py"} <= names
    assert not names & {"operators/live_engine.py", "control/app/views.py", "cli.py",
                        "dataflows/replay.py", "operators/engine.py"}


def test_only_a_kernel_edit_changes_the_cache_key(tmp_path):
    root = tmp_path / "gridflow"
    shutil.copytree(PKG, root, ignore=shutil.ignore_patterns("__pycache__", "data"))
    key = kernel_source_hash(root)
    assert key == kernel_source_hash(PKG)
    for rel in ("control/app/views.py", "operators/live_engine.py", "dataflows/live.py"):
        with open(root / rel, "a") as f:
            f.write("\n# an edit\n")
        assert kernel_source_hash(root) == key, rel
    with open(root / "operators/kernel_layout.py", "a") as f:  # imported by the kernels
        f.write("\n# an edit\n")
    assert kernel_source_hash(root) != key


PROBE = """
import numpy as np
import gridflow
from gridflow._numba_cache import count_compiles, uncached_kernels
from gridflow.operators.indicators import atr, sma
assert gridflow.__file__.startswith({root!r}), gridflow.__file__
missing = uncached_kernels()
counter = count_compiles()
x = np.linspace(100.0, 120.0, 64)
sma(x, 5)
atr(x + 1.0, x - 1.0, x, 5)
print(len(missing), counter.count, sorted(set(counter.names)))
"""


def _compiles(root: Path, base: Path) -> tuple[int, int, list[str]]:
    """(kernels uncached at start, kernels compiled, their names) of one run of PROBE
    on the package copy at ``root`` with its numba cache under ``base``."""
    import ast
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR",)}
    env.update(PYTHONPATH=str(root.parent), GRIDFLOW_NUMBA_BASE=str(base))
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(root))], env=env,
                         cwd=root.parent, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    missing, count, names = out.stdout.strip().splitlines()[-1].split(" ", 2)
    return int(missing), int(count), ast.literal_eval(names)


def test_a_second_run_compiles_nothing_after_a_non_kernel_edit(tmp_path):
    """Compile counts, not only cache keys: a cold cache compiles the kernels a run uses
    (and reports them as uncached first), a second run compiles none even after the app,
    a flow and the live engine were edited, and a kernel edit compiles again."""
    root = tmp_path / "pkg" / "gridflow"
    shutil.copytree(PKG, root, ignore=shutil.ignore_patterns("__pycache__", "data"))
    base = tmp_path / "cache"
    missing, count, names = _compiles(root, base)
    assert missing > 0 and count >= 4
    assert "gridflow.operators.indicators.moving_averages._sma_kernel" in names
    for rel in ("control/app/views.py", "dataflows/replay.py", "operators/live_engine.py",
                "cli.py"):
        with open(root / rel, "a") as f:
            f.write("\n# an edit\n")
    assert _compiles(root, base)[1] == 0
    with open(root / "operators/indicators/moving_averages.py", "a") as f:
        f.write("\n# an edit\n")
    assert _compiles(root, base)[1] >= 4


def _python(code: str, tmp_path) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "GRIDFLOW_NUMBA_BASE")}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


def test_a_process_without_kernels_does_not_load_numba_and_one_with_them_caches(tmp_path):
    # the broker and stream children never run a kernel: numba (~60 MB) stays out
    assert _python("import sys, gridflow.dataflows.broker_child, "
                   "gridflow.exchange.stream_child; print('numba' in sys.modules)",
                   tmp_path) == "False"
    want = str(tmp_path / "gridflow" / "numba" / f"gridflow-{kernel_source_hash()}")
    # numba imported after gridflow reads the folder from the environment, numba
    # imported before it is told directly
    for first in ("import gridflow, numba", "import numba, gridflow"):
        got = _python(f"{first}; from numba.core import config; print(config.CACHE_DIR)",
                      tmp_path)
        assert got == want, first
