"""The process supervisor recipe in ``deploy/``, as far as a machine without systemd
allows: the unit's command is a real ``gridflow live`` invocation (gridflow's own CLI
parser reads it), its stop timeout covers the flow's shutdown bound, and a flow run by
``deploy/supervise.sh`` that is killed with SIGKILL is restarted and resumes from its
recovery state."""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from live_harness import H, caught_up, live_env, start_exchange, wait_until, write_live_config
from sqlalchemy.exc import OperationalError

from gridflow.cli import _parser
from gridflow.config.ops import OpsConfig

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNIT = DEPLOY / "gridflow-live.service"
SUPERVISE = DEPLOY / "supervise.sh"
START = int(datetime(2024, 3, 4, tzinfo=UTC).timestamp() * 1000)
RUN = "live-test"


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(UNIT.read_text())
    return unit


def test_unit_runs_gridflow_live_with_recovery_and_restarts_always():
    unit = _unit()
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    svc = unit["Service"]
    argv = shlex.split(svc["ExecStart"])
    assert Path(argv[0]).name == "gridflow" and Path(argv[0]).is_absolute()
    args = _parser().parse_args(argv[1:])  # gridflow's own CLI parser
    assert args.cmd == "live" and not args.dry_run
    assert args.config.endswith(".toml") and Path(args.config).is_absolute()
    assert args.recovery is not None and args.recovery.is_absolute()
    assert svc["Restart"] == "always" and float(svc["RestartSec"]) > 0
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"  # never gives up
    assert svc["KillSignal"] == "SIGTERM" and svc["KillMode"] == "mixed"
    # the flow's own bound to stop, plus a margin before systemd's SIGKILL
    assert float(svc["TimeoutStopSec"]) >= OpsConfig().shutdown_timeout_s + 10
    assert svc["EnvironmentFile"].startswith("/")  # keys from a file, not the unit
    settings = [ln for ln in UNIT.read_text().splitlines() if not ln.startswith("#")]
    assert not [ln for ln in settings if "KEY" in ln or "SECRET" in ln]  # secrets: the file
    assert svc["ReadWritePaths"] == str(args.recovery.parent)
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_supervise_rejects_a_missing_command():
    out = subprocess.run(["bash", str(SUPERVISE), "-n", "1", "--"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 64 and "usage:" in out.stderr


def _gridflow() -> list[str]:
    script = Path(sys.executable).parent / "gridflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gridflow.cli"]


def _wait(pred, what: str, log: Path, timeout: float = 60.0):
    return wait_until(pred, timeout, f"no {what}", log.read_text)


def _started(url: str) -> list[dict]:
    from gridflow.journal.store import read_events

    try:
        return [e for e in read_events(url, RUN) if e["kind"] == "engine_started"]
    except OperationalError:  # the flow is creating the journal
        return []


def _snap_epoch(rec: Path) -> int:
    """The latest epoch with a recovery snapshot of the account engines (0 before one)."""
    try:
        con = sqlite3.connect(f"file:{rec / 'part-0.sqlite3'}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT MAX(snap_epoch) FROM snaps WHERE step_id LIKE "
                              "'%account_engine%'").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def _pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def test_supervised_flow_killed_is_restarted_and_resumes_from_recovery(tmp_path):
    fx = start_exchange(START)
    db, rec, pidfile, log = (tmp_path / "j.db", tmp_path / "state", tmp_path / "flow.pid",
                             tmp_path / "supervise.log")
    url = f"sqlite:///{db}"
    cfg = write_live_config(tmp_path / "live.toml", db, fx, START + 10 * H, warmup=30)
    with cfg.open("a") as fh:  # the local exchange's clock runs on 2024 candles
        fh.write("\n[live.preflight]\nmax_clock_skew_ms = 0\n")
    cmd = [*_gridflow(), "live", "--config", str(cfg), "--recovery", str(rec)]
    with log.open("w") as out:
        sup = subprocess.Popen(["bash", str(SUPERVISE), "-n", "2", "-d", "0.2", "-p",
                                str(pidfile), "--", *cmd], cwd=tmp_path, env=live_env(db),
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: _started(url), "engine_started", log, 90)
        fx.step()
        _wait(lambda: caught_up(db, RUN, START), "candle 0", log)
        seen = _snap_epoch(rec)  # a snapshot taken after candle 0 holds the booted engine
        _wait(lambda: _snap_epoch(rec) > seen, "recovery snapshot of the engines", log, 30)
        first = _pid(pidfile)
        assert first is not None
        cmdline = Path(f"/proc/{first}/cmdline").read_bytes().split(b"\0")
        assert b"bytewax.run" in cmdline and str(rec).encode() in cmdline  # gridflow live exec'd
        os.kill(first, signal.SIGKILL)
        second = _wait(lambda: (p := _pid(pidfile)) not in (None, first) and p, "restart",
                       log, 30)
        for i in (1, 2):  # the restarted flow trades on where the killed one stopped
            fx.step()
            _wait(lambda i=i: caught_up(db, RUN, START + i * H), f"candle {i}", log)
        assert _pid(pidfile) == second
        # resumed from the snapshot: the engine did not start cold (one engine_started);
        # the start journaled that the previous process of the run was killed
        assert len(_started(url)) == 1
        from gridflow.journal.store import read_events

        stops = [e for e in read_events(url, RUN) if e["kind"] == "shutdown"]
        assert [e["reason"] for e in stops] == ["UNCLEAN"], stops
        assert max(fx.accepted_client_ids().values(), default=1) == 1  # nothing sent twice
        os.kill(sup.pid, signal.SIGTERM)  # stop: the supervisor passes SIGTERM on, no restart
        sup.wait(40)
    finally:
        if sup.poll() is None:
            os.killpg(sup.pid, signal.SIGKILL)
            sup.wait(10)
        pid = _pid(pidfile)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        fx.stop()
    text = log.read_text()
    assert "preflight: passed" in text and "(restart 1 of 2)" in text
    assert f"pid {first} exited with status 137" in text  # SIGKILL'd, then restarted
    assert "got SIGTERM" in text and "(restart 2 of 2)" not in text
    assert "recovery" in text and "(resumed)" in text  # the second start found the state
