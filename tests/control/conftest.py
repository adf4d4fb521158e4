"""Fixtures shared by the control-app tests."""

from __future__ import annotations

import subprocess
import sys

import pytest
from app_harness import write_crash_config


@pytest.fixture(scope="session")
def crash_db(tmp_path_factory) -> str:
    """A journal with two finished replays of the crash data: the whole file (its
    kill switches still on) and its first 30 days."""
    d = tmp_path_factory.mktemp("crash")
    cfg = write_crash_config(d)
    db = f"sqlite:///{d / 'journal.db'}"
    for extra in ([], ["--end", "2024-01-31"]):
        subprocess.run([sys.executable, "-m", "gridflow.cli", "replay", "--config", str(cfg),
                        "--db", db, "--no-progress", *extra],
                       check=True, capture_output=True, timeout=300)
    return db
