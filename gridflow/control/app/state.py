"""The control app's state: a ``param.Parameterized`` store, no Panel import.

Everything goes through :class:`~gridflow.control.client.GridflowClient` (commands,
status, equity, reports, replays) or the journal readers; nothing here touches
engine state. The Backtest page has its own store, :attr:`ControlState.backtest`
(:class:`~gridflow.control.app.backtest.BacktestState`). Views bind to the parameters;
:meth:`ControlState.refresh` is the one polling entry point (the app calls it every
second).

Commands wait for the engine's acknowledgement on a worker thread, so a slow or absent
engine never blocks the server; :meth:`ControlState.collect_ack` (called by
:meth:`refresh`, and at once when the app set :attr:`ControlState.ack_listener`) puts
the answer into :attr:`ControlState.last_ack`. One command is in flight at a time: a
repeated click on the same action while it waits (a double click) issues nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import param

from gridflow.control.app.backtest import BacktestState, run_config
from gridflow.control.app.params_form import InvalidParams
from gridflow.control.client import GridflowClient, ReplayJob

LATEST = "(latest)"
REPEAT_WINDOW_S = 1.0
"""A command repeated this soon (wall seconds) after the same one was answered is the
same gesture (a double click), not a new command."""


@dataclass
class Snapshot:
    """What one poll read (:meth:`ControlState.fetch`), applied by
    :meth:`ControlState.apply`. ``runs`` is None when the journal was unreadable;
    ``equity`` is None when the curve did not change since it was last shown."""

    backtest: dict[str, Any] = field(default_factory=dict)
    runs: list[str] | None = None
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_id: str | None = None
    accounts: list[str] = field(default_factory=list)
    account: str | None = None
    status: dict[str, Any] = field(default_factory=dict)
    equity: dict[str, np.ndarray] | None = None
    equity_key: tuple | None = None
    error: str = ""


class ControlState(param.Parameterized):
    """What the control app shows and does, for one browser session.

    Parameters
    ----------
    db_url : str
        Journal the engine writes.
    user : str or None
        The authenticated user allowed to act; None gives a read-only state whose
        action methods raise :class:`PermissionError`.
    client : GridflowClient, optional
        Defaults to ``GridflowClient(db_url, user=user or "guest")``.
    """

    db_url = param.String(constant=True)
    user = param.String(default=None, allow_None=True, constant=True)
    ack_timeout_s = param.Number(default=15.0, bounds=(0.1, 300.0))

    runs = param.List(default=[], item_type=str, doc="Run ids, oldest first.")
    run_id = param.Selector(default=LATEST, objects=[LATEST])
    account = param.Selector(default=None, objects=[], allow_None=True)
    status = param.Dict(default={}, doc="client.status(account); {} without one.")
    equity = param.Dict(default={}, doc="client.equity(run): ts_ms, equity, drawdown.")
    message = param.String(default="", doc="Last refusal or failed action, for the user.")
    refresh_error = param.String(default="", doc="Why the last poll failed ('' if it worked).")
    pending = param.String(default="", doc="Command waiting for its acknowledgement.")
    last_ack = param.Dict(default={}, doc="action, account, request_id, status, reason, "
                          "command_id, ts_ms (engine time).")

    compare_runs = param.ListSelector(default=[], objects=[])
    compare_reports = param.List(default=[])
    compare_curves = param.Dict(default={}, doc="run id -> client.equity(run id).")

    def __init__(self, client: GridflowClient | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.client = client or GridflowClient(self.db_url, user=self.user or "guest")
        self._configs: dict[str, dict[str, Any]] = {}
        self._future: Future | None = None
        self._future_of: dict[str, str] = {}
        self._done: tuple[str, str, float, Future] | None = None  # last answered command
        self._executor: ThreadPoolExecutor | None = None
        self.backtest = BacktestState(self.client)
        self._equity_key: tuple | None = None
        self._equity_stale = False
        self.ack_listener: Callable[[], None] | None = None
        """Called from the command's worker thread when its wait ends (the app
        schedules :meth:`collect_ack` on the session's event loop)."""

    # ---- authorization -----------------------------------------------------------------
    @property
    def can_act(self) -> bool:
        """True when a logged-in user may issue commands and launch replays."""
        return bool(self.user)

    def _require_user(self, action: str) -> None:
        if not self.can_act:
            self.message = f"refused: {action} needs a logged-in user (read-only session)"
            raise PermissionError(f"READ_ONLY: {action} needs a logged-in user")

    # ---- polling -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Poll everything: acknowledgements, the replay job, runs, status, equity.

        The same as ``self.apply(self.fetch())``; the app runs :meth:`fetch` on a worker
        thread and :meth:`apply` on the server's event loop, so journal reads never
        block the server.
        """
        self.apply(self.fetch())

    def fetch(self) -> Snapshot:
        """Read what :meth:`apply` shows (journal reads only; sets no parameter).

        Safe to call from a worker thread while the event loop runs :meth:`apply` or
        handles clicks: it reads the current selection and the client, nothing else.
        """
        snap = Snapshot(backtest=self.backtest.fetch())
        try:
            runs = self.client.runs()
        except Exception as exc:  # noqa: BLE001 - journal unreachable: say so, keep polling
            snap.error = f"journal unreadable: {type(exc).__name__}: {exc}"
            return snap
        snap.runs = [r["run_id"] for r in runs]
        snap.configs = {r["run_id"]: run_config(r) for r in runs}
        rid = self.run_id if self.run_id != LATEST else (snap.runs[-1] if snap.runs else None)
        snap.run_id = rid
        if rid is None:
            if self._equity_key is not None:
                snap.equity, snap.equity_key = {}, None
            return snap
        names = [a.get("name") for a in snap.configs.get(rid, {}).get("accounts", [])]
        snap.accounts = [n for n in names if n]
        account = self.account if self.account in snap.accounts else (
            snap.accounts[0] if snap.accounts else None)
        snap.account = account
        try:
            if account:
                try:
                    snap.status = self.client.status(account, rid)
                except LookupError:  # the engine has not written a summary yet
                    snap.status = {}
            key = (rid, snap.status.get("candles"), snap.status.get("last_ts_ms"))
            if key != self._equity_key or self._equity_stale:
                snap.equity = self._equity(rid)
                snap.equity_key = key
        except Exception as exc:  # noqa: BLE001 - keep polling; show what broke
            snap.error = f"refresh failed: {type(exc).__name__}: {exc}"
        return snap

    def apply(self, snap: Snapshot) -> None:
        """Show a :meth:`fetch` result: set only the parameters whose value changed, so
        an idle poll re-renders nothing."""
        self.collect_ack()
        self.backtest.apply(snap.backtest)
        if snap.runs is None:
            self.refresh_error = snap.error
            return
        self._configs = snap.configs
        if snap.runs != self.runs:
            self.param.run_id.objects = [LATEST, *reversed(snap.runs)]
            self.param.compare_runs.objects = list(reversed(snap.runs))
            self.runs = snap.runs
        if snap.run_id != self.selected_run():
            return  # the user picked another run meanwhile: the next poll shows it
        if snap.accounts != self.param.account.objects:
            self.param.account.objects = snap.accounts
        if self.account not in snap.accounts:
            self.account = snap.account
        elif self.account != snap.account:
            return  # the user picked another account meanwhile
        if snap.error:
            self.refresh_error = snap.error
            return
        if snap.status != self.status:
            self.status = snap.status
        if snap.equity is not None:
            self.equity = snap.equity
            self._equity_key, self._equity_stale = snap.equity_key, False
        if self.refresh_error:
            self.refresh_error = ""

    def selected_run(self) -> str | None:
        """The run the Live page shows (the latest when none is picked)."""
        if self.run_id != LATEST:
            return self.run_id
        return self.runs[-1] if self.runs else None

    def _equity(self, rid: str) -> dict[str, np.ndarray]:
        try:
            return self.client.equity(rid)
        except KeyError:
            raise  # a bug, not "no data": let refresh report it
        except LookupError:
            return {}

    # ---- commands ----------------------------------------------------------------------
    def reset_kill_switch(self, reason: str | None = None) -> Future:
        """Reset one kill switch (``reason``) or all of the selected account."""
        return self._command("reset kill switch", lambda c, a, t: c.reset_kill_switch(a, reason, t))

    def pause(self, symbol: str | None = None) -> Future:
        """No new entries on the selected account (or one symbol)."""
        return self._command("pause", lambda c, a, t: c.pause(a, symbol, t))

    def resume(self, symbol: str | None = None) -> Future:
        """Undo :meth:`pause`."""
        return self._command("resume", lambda c, a, t: c.resume(a, symbol, t))

    def _command(self, action: str, call: Callable[..., dict[str, Any]]) -> Future:
        """Issue a command on a worker thread; :meth:`collect_ack` shows the ack.

        Idempotent while it waits: the same action on the same account again (a double
        click, a resent click) returns the command in flight and issues nothing; so does
        a repeat within :data:`REPEAT_WINDOW_S` after its answer (a double click whose
        second click reaches the server after a fast acknowledgement). Each
        issued command gets a ``request_id`` (uuid4, in :attr:`last_ack`).

        Raises
        ------
        PermissionError
            Read-only session.
        RuntimeError
            No account selected, or another command still waits for its ack.
        """
        self._require_user(action)
        account = self.account
        if not account:
            self.message = f"{action}: no account selected"
            raise RuntimeError(self.message)
        if self._future is not None:  # in flight, or answered but not shown yet
            if (self._future_of.get("action"), self._future_of.get("account")) == (action,
                                                                                   account):
                return self._future
            self.message = f"{action}: wait for the acknowledgement of {self.pending}"
            raise RuntimeError(self.message)
        done = self._done
        if done is not None and done[:2] == (action, account) \
                and time.monotonic() - done[2] < REPEAT_WINDOW_S:
            return done[3]  # the second click of a double click the engine already answered
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="gridflow-app-cmd")
        self.message = ""
        self._future_of = {"action": action, "account": account,
                           "request_id": uuid.uuid4().hex}
        self.last_ack = {}
        self.pending = f"{action} ({account})"
        self._future = self._executor.submit(call, self.client, account, self.ack_timeout_s)
        self._future.add_done_callback(self._answered)
        return self._future

    def _answered(self, _fut: Future) -> None:
        listener = self.ack_listener
        if listener is not None:
            try:
                listener()
            except Exception:  # noqa: BLE001 - a closed session: the poll shows it
                pass

    def collect_ack(self) -> None:
        """Show the engine's answer to the command in flight, once it came (event
        loop only: it sets parameters the page shows)."""
        fut = self._future
        if fut is None or not fut.done():
            return
        self._future = None
        info = dict(self._future_of)
        self._done = (info.get("action", ""), info.get("account", ""), time.monotonic(), fut)
        exc = fut.exception() if not fut.cancelled() else RuntimeError("cancelled")
        if exc is None:
            ack = fut.result()
            info.update(status=ack["status"], reason=ack["reason"],
                        command_id=ack["command_id"], ts_ms=ack["ts_ms"])
        elif isinstance(exc, TimeoutError):
            info.update(status="timeout", reason=str(exc))
        else:
            info.update(status="error", reason=f"{type(exc).__name__}: {exc}")
        self.pending = ""
        self.last_ack = info
        self._equity_stale = True  # show the effect at the next poll

    # ---- backtest ----------------------------------------------------------------------
    def launch_backtest(self) -> ReplayJob:
        """Replay the Backtest page's preset, symbols, parameters and window
        (:meth:`BacktestState.launch`).

        Raises
        ------
        PermissionError
            Read-only session.
        InvalidParams
            Invalid symbols or parameters: nothing launched; the reason is in
            ``backtest.params_error``, shown next to the parameters.
        """
        self._require_user("launch a backtest")
        try:
            return self.backtest.launch()
        except InvalidParams:
            self.message = ""
            raise
        except Exception as exc:
            self.message = f"backtest: {exc}"
            raise

    # ---- compare -----------------------------------------------------------------------
    @param.depends("compare_runs", watch=True)
    def load_compare(self) -> None:
        """Reports and equity curves of the runs picked for comparison."""
        reports, curves = [], {}
        for rid in self.compare_runs:
            try:
                reports.append(self.client.report(rid))
                curves[rid] = self._equity(rid)
            except Exception as exc:  # noqa: BLE001 - one bad run must not hide others
                self.message = f"compare {rid}: {type(exc).__name__}: {exc}"
        self.compare_reports, self.compare_curves = reports, curves

    def close(self) -> None:
        """Stop the command worker (the session ended); a running replay goes on."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
