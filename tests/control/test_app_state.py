"""The Panel control app without a browser: users, authorization, the control state
(reads, polls, commands, backtest edits) and assembling the app outside a server."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("panel")

from sqlalchemy import make_url

from gridflow.control.app.auth import authorized_user, parse_users
from gridflow.control.app.params_form import InvalidParams, bundled_symbols
from gridflow.control.app.state import ControlState
from gridflow.control.client import GridflowClient
from gridflow.journal.commands import last_command_id, read_commands

USERS = "alice:pw-alice,bob:p:w2"


def test_users_parse_and_never_show_passwords() -> None:
    users = parse_users(USERS)
    assert sorted(users) == ["alice", "bob"]
    assert users["bob"].get_secret_value() == "p:w2"
    assert "pw-alice" not in repr(users)
    for bad in ("alice", ":pw", "alice:", "guest:pw", "a:1,a:2"):
        with pytest.raises(ValueError) as err:
            parse_users(bad)
        assert "pw" not in str(err.value).replace("PASSWORD", "")
    assert parse_users("") == {}


def test_only_configured_signed_in_users_may_act() -> None:
    users = parse_users(USERS)
    assert authorized_user("alice", users) == "alice"
    for session_user in (None, "", "guest", "mallory"):
        assert authorized_user(session_user, users) is None
    assert authorized_user("alice", {}) is None  # no users configured: read-only


def test_read_only_state_refuses_every_action(crash_db: str) -> None:
    state = ControlState(db_url=crash_db, user=None)
    state.refresh()
    assert state.account == "crash" and not state.can_act
    before = last_command_id(crash_db)
    for action in (state.reset_kill_switch, state.pause, state.resume, state.launch_backtest):
        with pytest.raises(PermissionError, match="READ_ONLY"):
            action()
    assert "refused" in state.message
    assert last_command_id(crash_db) == before
    assert state.backtest.job is None


def test_state_reads_status_equity_and_compares_runs(crash_db: str) -> None:
    state = ControlState(db_url=crash_db, user="alice")
    state.refresh()
    assert state.refresh_error == ""
    assert "SESSION_LOSS_GRID" in state.status["kill_switches"]
    assert "BTC/USDT" in state.status["positions"]
    assert len(state.equity["ts_ms"]) == len(state.equity["drawdown"]) > 100
    state.compare_runs = list(state.runs)
    assert [r["run_id"] for r in state.compare_reports] == state.runs
    assert set(state.compare_curves) == set(state.runs)


def test_an_idle_poll_changes_nothing_and_a_stale_one_is_dropped(crash_db: str) -> None:
    """fetch() reads (the app runs it on a thread), apply() sets only what changed: a
    second poll of a finished run fires no watcher; a poll read before the user picked
    another run is not shown over the new pick."""
    state = ControlState(db_url=crash_db, user=None)
    state.refresh()
    fired: list[str] = []
    state.param.watch(lambda e: fired.append(e.name), ["status", "equity", "runs", "account"])
    state.apply(state.fetch())
    assert fired == []
    stale = state.fetch()
    state.run_id = state.runs[0]  # the other run of the journal
    state.apply(stale)
    assert "status" not in fired and state.status["run_id"] == state.runs[-1]
    state.refresh()
    assert state.status["run_id"] == state.runs[0]


def test_a_repeated_click_issues_one_command(crash_db: str, tmp_path: Path,
                                            monkeypatch) -> None:
    """A double click (the same action while its command waits for the engine, or just
    after its answer) issues nothing more; another action waits its turn; the answer is
    heard at once."""
    db = f"sqlite:///{tmp_path / 'copy.db'}"
    shutil.copy(make_url(crash_db).database, make_url(db).database)
    state = ControlState(db_url=db, user="alice", ack_timeout_s=0.5)  # no engine: times out
    state.refresh()
    heard = threading.Event()
    state.ack_listener = heard.set
    first = state.pause()
    assert state.pause() is first and state.pending == "pause (crash)"
    with pytest.raises(RuntimeError, match="wait for the acknowledgement of pause"):
        state.resume()
    assert heard.wait(30)
    assert state.pause() is first  # answered but not shown yet: still the same click
    state.collect_ack()
    assert state.pending == "" and state.last_ack["status"] == "timeout"
    assert len(state.last_ack["request_id"]) == 32
    assert [c["kind"] for c in read_commands(db, 0)] == ["pause"]
    # the second click of a double click that reaches the server after the answer
    assert state.pause() is first and state.pending == ""
    import gridflow.control.app.state as app_state

    monkeypatch.setattr(app_state, "REPEAT_WINDOW_S", 0.0)
    second = state.pause()  # a later click is a new command
    assert second is not first and isinstance(second.exception(timeout=30), TimeoutError)
    assert [c["kind"] for c in read_commands(db, 0)] == ["pause", "pause"]
    state.close()


def test_long_equity_curves_are_thinned_to_their_envelope() -> None:
    from gridflow.control.app.charts import MAX_POINTS, display_indices

    rng = np.random.default_rng(7)
    eq = 10_000 + np.cumsum(rng.normal(0, 5, 100_000))
    idx = display_indices(eq)
    assert len(idx) <= MAX_POINTS + 1 and np.all(np.diff(idx) > 0)
    assert {int(np.argmin(eq)), int(np.argmax(eq)), len(eq) - 1} <= set(idx.tolist())
    assert display_indices(eq[:50]).tolist() == list(range(50))


def test_backtest_state_edits_symbols_and_parameters(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'form.db'}"
    state = ControlState(db_url=db, user="alice")
    bt = state.backtest
    assert bt.preset == "default" and bt.symbols == bundled_symbols()
    assert [label for label, _ in bt.strategy_forms] == [
        "grid_atr (long) on BTC/USDT, ETH/USDT, SOL/USDT · not validated",
        "envelope_dca (long) on ADA/USDT, XRP/USDT · not validated"]
    grid = {f.name: f for f in bt.strategy_forms[0][1]}
    assert list(grid) == ["side", "sma_period", "atr_period", "levels", "atr_start",
                          "atr_step", "sl_frac", "sl_atr", "sl_atr_period",
                          "time_stop_candles"]
    # the protections are edited here too; the filter tables are not (set in the preset)
    assert (grid["time_stop_candles"].kind, grid["time_stop_candles"].value) == ("int", 0)
    assert "entry_filter" not in grid and "regime_filter" not in grid
    assert (grid["levels"].kind, grid["levels"].start, grid["levels"].end) == ("int", 1, 20)
    assert (grid["atr_start"].kind, grid["atr_start"].value) == ("float", 3.0)
    assert grid["side"].options == ("long", "short")
    assert {f.name: f.value for f in bt.strategy_forms[1][1]}["offsets"] == "0.04, 0.07, 0.1"
    bt.set_value(0, "atr_start", 2.5)
    assert bt.account().strategies[0].overrides == {"SOL/USDT": {"atr_start": 4.0}}
    # a subset of symbols: the envelope strategy (ADA, XRP) and SOL's override go
    bt.symbols = ["BTC/USDT", "ETH/USDT"]
    acct = bt.account()
    (st,) = acct.strategies
    assert acct.symbols == st.symbols == ("BTC/USDT", "ETH/USDT")
    assert (st.atr_start, st.levels, st.overrides) == (2.5, 5, {})
    # invalid values: pydantic's message names the field; nothing is launched
    for strategy, field, value in ((0, "levels", 0), (1, "offsets", "0.1, 0.05")):
        bt.symbols = bundled_symbols()
        bt.set_value(strategy, field, value)
        with pytest.raises(InvalidParams, match=field):
            state.launch_backtest()
        assert field in bt.params_error and state.message == ""
        bt.set_value(0, "levels", 5)
        bt.set_value(1, "offsets", "0.04, 0.07, 0.1")
    bt.symbols = []
    with pytest.raises(InvalidParams, match="at least one symbol"):
        state.launch_backtest()
    assert bt.job is None and GridflowClient(db).runs() == []
    # a strategy without an allow-list trades every chosen symbol
    bt.preset = "grid_atr_short"
    assert bt.params_error == "" and bt.values == [{}]
    bt.symbols = ["ADA/USDT", "SOL/USDT"]
    acct = bt.account()
    assert acct.symbols == ("ADA/USDT", "SOL/USDT") and acct.strategies[0].symbols == ()


def test_app_assembles_outside_a_server(crash_db: str) -> None:
    from gridflow.control.app import create_app

    template = create_app(crash_db, parse_users(USERS))
    assert template.state.user is None  # no server auth here: read-only
    assert template.state.status["account"] == "crash"
    assert len(template.main) == 2  # the read-only note and the tabs


# ---- browser -----------------------------------------------------------------------------


def test_backtest_reads_the_market_data_store_when_chosen(tmp_path: Path, monkeypatch) -> None:
    """The Backtest page's "Candles" source: an exchange of the store lists its symbols,
    and the replay it launches reads the store's series (exchange:symbol@timeframe),
    charted like a file."""
    import time

    from gridflow.data import bundled_candle_files
    from gridflow.data.store import CandleStore
    from gridflow.ops.market_data import import_candle_file

    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path / "store"))
    store = CandleStore()
    for f in bundled_candle_files():
        if f.name.split("_")[1] in ("BTC", "ETH"):
            import_candle_file(store, f, "binance")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    state = ControlState(db_url=db, user="alice")
    bt = state.backtest
    assert bt.param.source.objects == ["bundled files", "binance"]
    bt.source = "binance"
    assert bt.param.symbols.objects == ["BTC/USDT", "ETH/USDT"]
    assert bt.symbols == ["BTC/USDT", "ETH/USDT"]  # the preset's, where the store has them
    assert [f.path for f in bt.data(["BTC/USDT"])] == ["binance:BTC/USDT@1h"]
    bt.symbols = ["BTC/USDT"]
    job = state.launch_backtest()
    deadline = time.monotonic() + 120
    while not job.done and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.done and job.process.returncode == 0, job.errors()
    bt.poll()  # the results: metrics, equity and the chart from the store's candles
    assert bt.status == "done" and bt.report["trades"] >= 1
    assert [d["path"] for d in bt._config["data"]] == ["binance:BTC/USDT@1h"]
    assert bt.chart_symbol == "BTC/USDT" and bt.chart is not None and not bt.chart_error
    bt.source = "bundled files"
    assert bt.param.symbols.objects == bundled_symbols()
