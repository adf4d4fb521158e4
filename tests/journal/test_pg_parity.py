"""The default replay and every bundled preset journal the same on PostgreSQL as on
SQLite: byte-identical ``gridflow journal`` output, the same full journal (orders,
fills, trades, events, equity) and the same report figures. Whole windows, through the
``gridflow`` console script, each PostgreSQL run in a schema of its own."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
from pg_helpers import pg_schema

from gridflow.cli import PRESETS
from gridflow.control.report import journal_lines

ALL_KINDS = ("order", "fill", "trade", "event", "equity")
CASES = ["default", *sorted(p.stem for p in PRESETS.glob("*.toml"))]


def gridflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("gridflow")
    assert exe, "the gridflow console script is installed"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, timeout=300)


def replay_and_read(case: str, url: str, cwd: Path) -> dict:
    """Replay ``case`` into ``url``; what each reader prints of the run."""
    preset = [] if case == "default" else ["--preset", case]
    res = gridflow("replay", *preset, "--db", url, "--no-progress", "--json", cwd=cwd)
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    report = json.loads(res.stdout)  # the full report, strict JSON
    report.pop("created")  # wall-clock time of the run row
    run_id = report["run_id"]
    shown = gridflow("journal", "--db", url, "--run", run_id, cwd=cwd)
    assert shown.returncode == 0, shown.stderr.decode()[-3000:]
    return {"run_id": run_id, "journal": shown.stdout, "report": report,
            "all": journal_lines(url, run_id, include=ALL_KINDS)}


def same_figures(a: object, b: object) -> bool:
    """``a == b`` with floats equal to 1e-9 relative: the report sums rows in the order
    the database returns them, so its last digit may differ between backends."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_figures(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same_figures, a, b))
    return a == b


def test_every_preset_is_a_case() -> None:
    assert len(CASES) >= 5 and {"default", "grid_trend", "envelope_dca"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_postgresql_journals_what_sqlite_does(case: str, tmp_path: Path) -> None:
    with pg_schema() as pg:
        on_pg = replay_and_read(case, pg, tmp_path)
    on_sqlite = replay_and_read(case, f"sqlite:///{tmp_path / 'journal.db'}", tmp_path)
    rep = on_sqlite["report"]
    assert rep["orders"] > 0 and rep["fills"] > 0, rep
    lines = on_sqlite["journal"].splitlines()
    assert len(lines) == rep["orders"] + rep["fills"]
    assert on_pg["journal"] == on_sqlite["journal"]  # byte for byte
    assert on_pg["run_id"] == on_sqlite["run_id"]
    assert len(on_pg["all"]) == len(on_sqlite["all"]) > len(lines)
    assert on_pg["all"] == on_sqlite["all"]
    assert same_figures(on_pg["report"], on_sqlite["report"])
