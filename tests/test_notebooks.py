"""Execute every notebook of ``notebooks/`` top to bottom; any cell error fails the test.

The kernel is the interpreter running the tests (``sys.executable``): a ``python3``
kernel spec is written to a temporary folder and used through an explicit kernel spec
manager, so a ``python3`` kernel installed elsewhere (another venv, the system Python)
can never be picked up, and nothing needs ``ipykernel install`` beforehand. Each notebook
runs with a fresh temporary folder as its working directory and ``TMPDIR``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
for _module in ("holoviews", "bokeh", "pandas"):  # what the notebooks import
    pytest.importorskip(_module)
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300
KERNEL_NAME = "python3"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A folder of kernel specs holding ``python3`` -> this interpreter."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL_NAME
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({sys.executable})",
        "language": "python",
        "metadata": {"debugger": False},
    }))
    return root


def test_notebooks_found() -> None:
    assert NOTEBOOKS, f"no notebook in {NOTEBOOKS_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel_dir: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    ksm = KernelSpecManager(kernel_dirs=[str(kernel_dir)])
    assert Path(ksm.get_kernel_spec(KERNEL_NAME).argv[0]) == Path(sys.executable)
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    client = nbclient.NotebookClient(
        nb,
        km=km,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,
        # plain tracebacks: the CellExecutionError message stays readable in pytest output
        extra_arguments=["--InteractiveShell.colors=NoColor"],
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    # The notebooks' temporary journals (tempfile.mkdtemp) land in tmp_path too.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    # CellExecutionError (with the failing cell's source and traceback) propagates.
    client.execute(env=env)
