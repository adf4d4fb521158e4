"""Where numba caches gridflow's compiled kernels.

numba's ``cache=True`` invalidates a cached function only when *its own* source file
changes, not when a kernel it calls (in another module) does: after an upgrade a stale
machine-code copy of a changed risk rule could run. gridflow therefore keeps its cache
in a folder named after a hash of its kernel sources (the modules that define kernels
and the gridflow modules they import), so any change to any of them starts from a clean
cache, and a change anywhere else (the app, the flows, the live engine) compiles nothing.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def kernel_modules(root: Path = _PKG) -> list[Path]:
    """The kernel sources: every gridflow module that defines a numba kernel
    (``@njit``), and every gridflow module those import, transitively (a kernel
    compiles in the constants and functions it reads from them)."""
    import ast

    files = {p for p in root.rglob("*.py") if p.name != "_numba_cache.py"}
    by_name = {".".join(("gridflow", *p.relative_to(root).with_suffix("").parts))
               .removesuffix(".__init__"): p for p in files}
    todo = [p for p in files if "@njit" in p.read_text(encoding="utf-8")]
    seen: set[Path] = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name in by_name:
                    todo.append(by_name[name])
                for alias in getattr(node, "names", []) if isinstance(node, ast.ImportFrom) \
                        else []:
                    sub = f"{name}.{alias.name}"
                    if sub in by_name:
                        todo.append(by_name[sub])
    return sorted(seen)


def kernel_source_hash(root: Path = _PKG) -> str:
    """SHA-256 (16 hex chars) over the kernel sources (:func:`kernel_modules`) and
    numba's version: editing any other module (the app, a flow, a test) recompiles
    nothing."""
    import importlib.metadata

    h = hashlib.sha256(importlib.metadata.version("numba").encode())
    for p in kernel_modules(root):
        h.update(p.relative_to(root).as_posix().encode())
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
    if "numba" in sys.modules:  # numba read the environment already: tell it directly
        from numba.core import config

        config.CACHE_DIR = str(target)
    # else numba reads NUMBA_CACHE_DIR when first imported: a process that never runs a
    # kernel (a broker or stream child, `gridflow data`) does not import numba here
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


def _gridflow_dispatchers() -> list:
    """The cached numba kernels of the gridflow modules imported so far."""

    try:
        from numba.core.registry import CPUDispatcher
    except ImportError:  # pragma: no cover - numba is a hard dependency
        return []
    out = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] != "gridflow" or module is None:
            continue
        for value in list(vars(module).values()):
            if (isinstance(value, CPUDispatcher) and getattr(value, "_cache", None) is not None
                    and value.py_func.__module__ == name):
                out.append(value)
    return out


def uncached_kernels() -> list[str]:
    """Names (``module.function``) of the imported gridflow kernels that have no
    compiled copy in the cache yet: what the first run compiles (about 1 s each)."""
    missing = []
    for d in _gridflow_dispatchers():
        cache_file = getattr(d._cache, "_cache_file", None)
        index = getattr(cache_file, "_index_path", None)
        if index is not None and not os.path.exists(index):
            missing.append(f"{d.py_func.__module__}.{d.py_func.__name__}")
    return sorted(missing)


def count_compiles(on_compile=None):
    """Count the gridflow kernels numba compiles from now on (a cache hit compiles
    nothing and is not counted).

    Parameters
    ----------
    on_compile : callable, optional
        ``on_compile(n, name)`` after the ``n``-th compile starts (``name`` =
        ``module.function``), e.g. to show progress.

    Returns
    -------
    object
        With ``.count`` (int) and ``.names`` (list of str), updated as numba compiles.
    """
    from numba.core import event

    class _Counter(event.Listener):
        def __init__(self) -> None:
            self.count = 0
            self.names: list[str] = []

        def on_start(self, ev) -> None:
            func = getattr(ev.data.get("dispatcher"), "py_func", None)
            module = getattr(func, "__module__", "") or ""
            if module.split(".")[0] != "gridflow":
                return
            self.count += 1
            self.names.append(f"{module}.{func.__name__}")
            if on_compile is not None:
                on_compile(self.count, self.names[-1])

        def on_end(self, ev) -> None:
            pass

    counter = _Counter()
    event.register("numba:compile", counter)
    return counter
