"""Where numba caches gridflow's compiled kernels.

numba's ``cache=True`` invalidates a cached function only when *its own* source file
changes, not when a kernel it calls (in another module) does: after an upgrade a stale
machine-code copy of a changed risk rule could run. gridflow therefore keeps its cache
in a folder named after a hash of all its kernel sources, so any change to any of them
starts from a clean cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def kernel_source_hash() -> str:
    """SHA-256 (16 hex chars) over every ``.py`` file of the gridflow package."""
    h = hashlib.sha256()
    for p in sorted(_PKG.rglob("*.py")):
        h.update(p.relative_to(_PKG).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def configure_numba_cache() -> Path:
    """Point numba's cache at ``<base>/gridflow-<hash>`` and return that folder.

    ``<base>`` is ``$NUMBA_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/gridflow/numba``
    (``~/.cache/gridflow/numba``). Must run before any kernel module is imported.
    """
    base = os.environ.get("GRIDFLOW_NUMBA_BASE") or os.environ.get("NUMBA_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "gridflow" / "numba")
    os.environ["GRIDFLOW_NUMBA_BASE"] = base  # keep the base for child processes
    target = Path(base) / f"gridflow-{kernel_source_hash()}"
    os.environ["NUMBA_CACHE_DIR"] = str(target)
    _prune(Path(base), keep=target)
    try:
        from numba.core import config

        config.CACHE_DIR = str(target)
    except ImportError:  # pragma: no cover - numba is a hard dependency
        pass
    return target


def _prune(base: Path, keep: Path, newest: int = 3) -> None:
    """Delete all but the ``newest`` cache folders of older gridflow sources."""
    import shutil

    try:
        olds = sorted((p for p in base.glob("gridflow-*") if p != keep and p.is_dir()),
                      key=lambda p: p.stat().st_mtime, reverse=True)
        for p in olds[newest:]:
            shutil.rmtree(p, ignore_errors=True)
    except OSError:  # a read-only or shared cache folder: leave it alone
        pass
