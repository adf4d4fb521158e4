"""Python client of the control plane: the Panel app and the notebooks use only this.

It writes commands (:mod:`gridflow.journal.commands`), waits for the engine's
acknowledgement in the journal, reads status and history from the journal, and launches
replays in the background. It never touches engine state directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import gridflow
from gridflow.control.report import compute_report
from gridflow.event_kinds import CommandKind, EventKind
from gridflow.journal.commands import issue_command
from gridflow.journal.schema import open_store
from gridflow.journal.store import (
    latest_run_id,
    list_runs,
    read_equity,
    read_events,
    read_summaries,
)
from gridflow.metrics import drawdown

#: Kinds of a command's acknowledgement (plain strings: SQL parameters).
ACK_KINDS = (EventKind.COMMAND_APPLIED.value, EventKind.COMMAND_REJECTED.value)


@dataclass
class ReplayJob:
    """A replay running in a child process (``python -m bytewax.run``).

    Attributes
    ----------
    run_id : str
    db_url : str
    total_candles : int
        Candles the run will process (for :attr:`progress`).
    """

    run_id: str
    db_url: str
    total_candles: int
    process: subprocess.Popen = field(repr=False)
    config_path: Path = field(repr=False)
    stderr_file: Any = field(repr=False, default=None)

    def errors(self) -> str:
        """The tail of the child's error output."""
        if self.stderr_file is None:
            return ""
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")[-4000:]

    def _cleanup(self) -> None:
        self.config_path.unlink(missing_ok=True)

    @property
    def done(self) -> bool:
        """True once the process ended (successfully or not)."""
        return self.process.poll() is not None

    @property
    def progress(self) -> float:
        """Fraction 0..1 of candles processed so far (from the journal)."""
        if self.done and self.process.returncode == 0:
            return 1.0
        try:
            rows = read_summaries(self.db_url, self.run_id)
        except Exception:  # journal not created yet
            return 0.0
        n = sum(r["candles"] for r in rows)
        return min(1.0, n / self.total_candles) if self.total_candles else 0.0

    def wait_running(self, timeout_s: float = 60.0, poll_s: float = 0.05) -> None:
        """Wait until the flow runs and reads commands: its engine journaled a first
        candle (a command issued before the flow is built is meant for an earlier run
        and is not read).

        Raises
        ------
        TimeoutError
            If nothing was journaled within ``timeout_s``.
        RuntimeError
            If the replay ended with an error first (with its error output).
        """
        deadline = time.monotonic() + timeout_s
        while self.progress <= 0.0:
            if self.done:
                if self.process.returncode != 0:
                    raise RuntimeError(f"replay {self.run_id} failed: {self.errors()[-2000:]}")
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"replay {self.run_id} journaled nothing in {timeout_s} s")
            time.sleep(poll_s)

    def result(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Wait for the end and return the run's report.

        Raises
        ------
        TimeoutError
            If it does not end within ``timeout_s``.
        RuntimeError
            If the replay failed (with the tail of its error output).
        """
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"replay {self.run_id} still running after {timeout_s} s") from exc
        self._cleanup()
        if self.process.returncode != 0:
            raise RuntimeError(f"replay {self.run_id} failed: {self.errors()[-2000:]}")
        return compute_report(self.db_url, self.run_id)

    def stop(self) -> None:
        """Terminate the replay."""
        if not self.done:
            self.process.terminate()
            self.process.wait(timeout=10)
        self._cleanup()


def replay_command(config_json: str) -> list[str]:
    """The command line of a replay child: ``python -P -m bytewax.run
    <package>/dataflows/replay.py:from_json('<config_json>')``.

    Its imports do not depend on the working directory (which stays the caller's, for
    relative paths in the config): ``-P`` keeps that folder off ``sys.path``, and the
    flow is named by the file of this installed package, so bytewax puts the package's
    parent first on ``sys.path``. A ``gridflow/`` or ``dataflows/`` folder where the
    caller runs cannot shadow the package.
    """
    replay_py = Path(gridflow.__file__).resolve().parent / "dataflows" / "replay.py"
    return [sys.executable, "-P", "-m", "bytewax.run", f"{replay_py}:from_json({config_json!r})"]


class GridflowClient:
    """Issue commands, read status, launch replays; all through the journal database.

    Parameters
    ----------
    db_url : str
        SQLAlchemy URL of the journal (the one the engine writes).
    user : str
        Name recorded as ``issued_by`` on commands.
    """

    def __init__(self, db_url: str, user: str = "ops") -> None:
        self.db_url = db_url
        self.user = user
        self._engine = open_store(db_url)

    # ---- commands --------------------------------------------------------------------
    def issue(self, account: str, kind: str, payload: dict[str, Any] | None = None) -> int:
        """Write a command and return its id (no waiting)."""
        return issue_command(self._engine, account, kind, payload or {}, self.user)

    def wait_ack(self, command_id: int, timeout_s: float = 10.0, poll_s: float = 0.05
                 ) -> dict[str, Any]:
        """Wait until the engine acknowledged ``command_id``.

        Returns
        -------
        dict
            ``command_id``, ``status`` (``"applied"`` or ``"rejected"``), ``reason``,
            ``ts_ms`` (engine event time), ``run_id`` and the journal ``event``.

        Raises
        ------
        TimeoutError
            No acknowledgement within ``timeout_s`` (is an engine running?).
        """
        from sqlalchemy import select

        from gridflow.journal.schema import EventRow

        table = EventRow.__table__
        deadline = time.monotonic() + timeout_s
        suffix = f":{int(command_id)}"
        while True:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    select(table).where(table.c.kind.in_(ACK_KINDS))
                    .where(table.c.event_id.like(f"command_ack:%{suffix}"))
                ).mappings().all()
            rows = [r for r in rows if r["event_id"].endswith(suffix)]
            if rows:
                r = dict(rows[0])
                return {"command_id": int(command_id),
                        "status": ("applied" if r["kind"] == EventKind.COMMAND_APPLIED
                                   else "rejected"),
                        "reason": r["reason"], "ts_ms": r["ts_ms"], "run_id": r["run_id"],
                        "event": r}
            if time.monotonic() > deadline:
                raise TimeoutError(f"command {command_id}: no acknowledgement in {timeout_s} s")
            time.sleep(poll_s)

    def command(self, account: str, kind: str, payload: dict[str, Any] | None = None,
                timeout_s: float = 10.0) -> dict[str, Any]:
        """:meth:`issue` then :meth:`wait_ack`."""
        return self.wait_ack(self.issue(account, kind, payload), timeout_s)

    def reset_kill_switch(self, account: str, reason: str | None = None,
                          timeout_s: float = 10.0) -> dict[str, Any]:
        """Clear one kill switch (``reason``, e.g. ``"MAX_DRAWDOWN"``) or all."""
        return self.command(account, CommandKind.RESET_KILL_SWITCH,
                            {"reason": reason} if reason else {}, timeout_s)

    def pause(self, account: str, symbol: str | None = None, timeout_s: float = 10.0):
        """No new entries on the account (or one symbol); exits go on."""
        return self.command(account, CommandKind.PAUSE, {"symbol": symbol} if symbol else {},
                            timeout_s)

    def resume(self, account: str, symbol: str | None = None, timeout_s: float = 10.0):
        """Undo :meth:`pause`."""
        return self.command(account, CommandKind.RESUME, {"symbol": symbol} if symbol else {},
                            timeout_s)

    def set_params(self, account: str, params: dict[str, Any], symbol: str | None = None,
                   strategy: int | None = None, timeout_s: float = 10.0):
        """Change strategy parameters (validated by the engine; from the next candle)."""
        payload: dict[str, Any] = {"params": params}
        if symbol:
            payload["symbol"] = symbol
        if strategy is not None:
            payload["strategy"] = strategy
        return self.command(account, CommandKind.SET_PARAMS, payload, timeout_s)

    def flatten(self, account: str, symbol: str | None = None, timeout_s: float = 10.0):
        """Close the account's (or one symbol's) positions at the next candle's open."""
        return self.command(account, CommandKind.FLATTEN, {"symbol": symbol} if symbol else {},
                            timeout_s)

    # ---- reading ---------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        """Registered runs, oldest first."""
        return list_runs(self._engine)

    def _run(self, run_id: str | None) -> str:
        rid = run_id or latest_run_id(self._engine)
        if rid is None:
            raise LookupError("NO_RUNS: the journal has no run yet")
        return rid

    def status(self, account: str, run_id: str | None = None) -> dict[str, Any]:
        """Latest engine summary of ``account``: equity, cash, fees, kill switches (with
        the events that tripped them), positions with their grid levels, last events."""
        rid = self._run(run_id)
        rows = [r for r in read_summaries(self._engine, rid) if r["account"] == account]
        if not rows:
            raise LookupError(f"UNKNOWN_ACCOUNT: {account!r} has no summary in run {rid}")
        st = dict(rows[0])
        events = [e for e in read_events(self._engine, rid) if e["account"] == account]
        active = set(filter(None, st.get("kill_switch", "").split(",")))
        trips = [e for e in events if e["kind"] == EventKind.KILL_SWITCH_TRIPPED]
        st["run_id"] = rid
        st["kill_switches"] = {r: next((e for e in reversed(trips) if e["reason"] == r), None)
                               for r in sorted(active)}
        st["last_events"] = events[-20:]
        return st

    def events(self, run_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` journal events of a run, oldest first."""
        return read_events(self._engine, self._run(run_id))[-limit:]

    def equity(self, run_id: str | None = None) -> dict[str, np.ndarray]:
        """Account-summed equity curve: ``ts_ms`` (int64), ``equity`` (quote) and
        ``drawdown`` (fraction below the running peak, >= 0;
        :func:`gridflow.metrics.drawdown`, NaN where that rule says so)."""
        from gridflow.control.report import equity_curve

        rid = self._run(run_id)
        rows = read_equity(self._engine, rid)
        ts, eq = equity_curve((r["ts_ms"], r["account"], r["equity"]) for r in rows)
        return {"ts_ms": ts, "equity": eq, "drawdown": drawdown(eq)}

    def report(self, run_id: str | None = None) -> dict[str, Any]:
        """Metrics of a run (:func:`gridflow.control.report.compute_report`)."""
        return compute_report(self._engine, self._run(run_id))

    # ---- background replays -------------------------------------------------------------
    def launch_replay(self, config_path: str | Path | None = None, **overrides: Any
                      ) -> ReplayJob:
        """Start a replay in a child process writing to this client's journal.

        ``overrides`` are config fields (``start_ms``, ``end_ms``, ``pace_s``, ``run_id``,
        ``accounts`` ...) applied on top of the preset; the effective config is written
        to a temporary TOML-free JSON handed to the child. Without a ``funding``
        override, the store's funding of the run's store series is added
        (:func:`~gridflow.dataflows.replay.load_replay_config`).
        """
        from gridflow.dataflows.plan import plan_run
        from gridflow.dataflows.replay import load_replay_config

        cfg = load_replay_config(config_path, db_url=self.db_url, **overrides)
        plan = plan_run(cfg)
        total = plan.expected_candles()
        fd, name = tempfile.mkstemp(prefix="gridflow-run-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            # the child reads the env for the Apprise URLs, and takes the run id decided
            # here (derived again, it would follow a download landing in between)
            fh.write(cfg.model_copy(update={"run_id": plan.run_id}).model_dump_json(
                exclude={"apprise_urls"}))
        env = dict(os.environ, GRIDFLOW_DB_URL=self.db_url)
        err = tempfile.TemporaryFile()  # a file, not a pipe: a chatty child never blocks
        proc = subprocess.Popen(replay_command(name), env=env, stdout=subprocess.DEVNULL,
                                stderr=err)
        return ReplayJob(plan.run_id, self.db_url, total, proc, Path(name), err)
