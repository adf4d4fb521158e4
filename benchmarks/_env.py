"""What a benchmark figure was measured on: CPU model, cores, load average at the start,
platform and library versions, recorded in every benchmark's JSON so figures from
different machines (or a busy one) can be told apart."""

from __future__ import annotations

import os
import platform
from importlib import metadata

LIBRARIES = ("numpy", "numba", "bytewax", "ccxt", "pydantic", "sqlmodel", "panel",
             "holoviews", "pyarrow")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict:
    """CPU model, logical cores, 1/5/15-minute load average now, platform, Python and
    the installed versions of :data:`LIBRARIES` (``None`` when not installed)."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "load_average": load,
            "platform": platform.platform(), "python": platform.python_version(),
            "libraries": versions}


AT_START = environment()
"""The environment when the benchmark module was imported (its start)."""
