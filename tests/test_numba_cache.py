"""The numba cache is keyed by the kernel sources only: editing the app, a flow or the
live engine compiles nothing; editing a kernel, or a module a kernel imports, starts
from a clean cache."""

from __future__ import annotations

import shutil
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
