"""Starting the live flow after a passing preflight: its default recovery folder and
the command that runs it.

``gridflow live`` replaces its own process with ``python -m bytewax.run
"gridflow.dataflows.live:build('CONFIG')" -r DIR -s 5 -b 0`` (``os.execv``): the flow
keeps the process id, so a supervisor's SIGTERM / SIGINT reaches the flow itself and
its exit code is the command's, exactly as with the documented ``bytewax.run`` line;
nothing sits in between to forward signals.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

__all__ = ["SNAPSHOT_S", "default_recovery_dir", "flow_argv", "prepare_recovery"]

SNAPSHOT_S = 5
"""Seconds between two Bytewax recovery snapshots of the live flow (``-s``)."""


def default_recovery_dir(run_id: str, base: str | Path = "live-state") -> Path:
    """``./live-state/<run_id>`` (characters outside ``[A-Za-z0-9._-]`` as ``_``): one
    recovery folder per run, so another config never resumes this run's state."""
    return Path(base) / (re.sub(r"[^A-Za-z0-9._-]", "_", run_id) or "run")


def prepare_recovery(folder: Path) -> bool:
    """Create ``folder`` and its one Bytewax recovery partition, as ``python -m
    bytewax.recovery FOLDER 1`` does, unless it holds partitions already (the flow then
    resumes from them). Returns True when it was created now.

    Raises
    ------
    ValueError
        ``folder`` exists and is not a folder.
    """
    from bytewax.recovery import init_db_dir

    if folder.exists() and not folder.is_dir():
        raise ValueError(f"recovery folder {folder} is a file; give --recovery a folder")
    if any(folder.glob("part-*.sqlite3")):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    init_db_dir(folder, 1)
    return True


def flow_argv(config: str | Path, recovery: Path) -> list[str]:
    """The ``bytewax.run`` command line of the live flow of TOML ``config`` with recovery
    in ``recovery`` (snapshots every :data:`SNAPSHOT_S` s, no backup lag: ``-b 0``)."""
    target = f"gridflow.dataflows.live:build({str(Path(config).resolve())!r})"
    return [sys.executable, "-m", "bytewax.run", target, "-r", str(recovery),
            "-s", str(SNAPSHOT_S), "-b", "0"]
