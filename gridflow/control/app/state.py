"""The control app's state: a ``param.Parameterized`` store, no Panel import.

Everything goes through :class:`~gridflow.control.client.GridflowClient` (commands,
status, equity, reports, replays) or the journal readers; nothing here touches
engine state. The Backtest page has its own store, :attr:`ControlState.backtest`
(:class:`~gridflow.control.app.backtest.BacktestState`). Views bind to the parameters;
:meth:`ControlState.refresh` is the one polling entry point (the app calls it every
second).

Commands wait for the engine's acknowledgement on a worker thread, so a slow or absent
engine never blocks the server; :meth:`refresh` collects the answer into
:attr:`ControlState.last_ack`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import param

from gridflow.control.app.backtest import BacktestState, run_config
from gridflow.control.app.params_form import InvalidParams
from gridflow.control.client import GridflowClient, ReplayJob

LATEST = "(latest)"


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
    last_ack = param.Dict(default={}, doc="action, account, status, reason, command_id.")

    compare_runs = param.ListSelector(default=[], objects=[])
    compare_reports = param.List(default=[])
    compare_curves = param.Dict(default={}, doc="run id -> client.equity(run id).")

    def __init__(self, client: GridflowClient | None = None, **params: Any) -> None:
        super().__init__(**params)
        self.client = client or GridflowClient(self.db_url, user=self.user or "guest")
        self._configs: dict[str, dict[str, Any]] = {}
        self._future: Future | None = None
        self._future_of: dict[str, str] = {}
        self._executor: ThreadPoolExecutor | None = None
        self.backtest = BacktestState(self.client)
        self._equity_key: tuple | None = None

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
        """Poll everything: acknowledgements, the replay job, runs, status, equity."""
        self._collect_ack()
        self.backtest.poll()
        try:
            runs = self.client.runs()
        except Exception as exc:  # noqa: BLE001 - journal unreachable: say so, keep polling
            self.refresh_error = f"journal unreadable: {type(exc).__name__}: {exc}"
            return
        self._configs = {r["run_id"]: run_config(r) for r in runs}
        ids = [r["run_id"] for r in runs]
        if ids != self.runs:
            self.param.run_id.objects = [LATEST, *reversed(ids)]
            self.param.compare_runs.objects = list(reversed(ids))
            self.runs = ids
        try:
            self._refresh_live()
        except Exception as exc:  # noqa: BLE001 - keep polling; show what broke
            self.refresh_error = f"refresh failed: {type(exc).__name__}: {exc}"
        else:
            self.refresh_error = ""

    def selected_run(self) -> str | None:
        """The run the Live page shows (the latest when none is picked)."""
        if self.run_id != LATEST:
            return self.run_id
        return self.runs[-1] if self.runs else None

    def _refresh_live(self) -> None:
        rid = self.selected_run()
        if rid is None:
            self.status, self.equity = {}, {}
            return
        names = [a.get("name") for a in self._configs.get(rid, {}).get("accounts", [])]
        names = [n for n in names if n]
        if names != self.param.account.objects:
            self.param.account.objects = names
        if self.account not in names:
            self.account = names[0] if names else None
        status: dict[str, Any] = {}
        if self.account:
            try:
                status = self.client.status(self.account, rid)
            except LookupError:  # the engine has not written a summary yet
                status = {}
        self.status = status
        key = (rid, status.get("candles"), status.get("last_ts_ms"))
        if key != self._equity_key:
            self.equity = self._equity(rid)
            self._equity_key = key

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
        """Issue a command on a worker thread; :meth:`refresh` collects the ack.

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
        if self._future is not None and not self._future.done():
            self.message = f"{action}: wait for the acknowledgement of {self.pending}"
            raise RuntimeError(self.message)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="gridflow-app-cmd")
        self.message = ""
        self.pending = f"{action} ({account})"
        self.last_ack = {}
        self._future = self._executor.submit(call, self.client, account, self.ack_timeout_s)
        self._future_of = {"action": action, "account": account}
        return self._future

    def _collect_ack(self) -> None:
        fut = self._future
        if fut is None or not fut.done():
            return
        self._future = None
        info = dict(self._future_of)
        exc = fut.exception()
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
        self._equity_key = None  # show the effect at once

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
