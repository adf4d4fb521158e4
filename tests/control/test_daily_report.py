"""The daily report (``gridflow report --daily``) on a real replay: each day's figures
recomputed from the journal rows, the days adding up to ``gridflow report``'s tables,
the text and ``--json`` outputs, bad input, and delivery through Apprise to a real
HTTP endpoint on 127.0.0.1.

The run is ``test_report_tables``'s: BTC (a perpetual: funding), ETH and SOL 1h from
2021-01-01 to 2021-04-20 05:00, two accounts, three strategies, daily-loss switches
that trip and reset at the day rollover, candles missing on three days.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from collections import defaultdict
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from test_cli_errors import _one_line_error
from test_report_tables import RUN, run  # noqa: F401  (its replay fixture)

from gridflow.cli import main
from gridflow.control.daily_report import daily_report, day_window, parse_day
from gridflow.control.daily_report_text import (
    daily_title,
    render_daily_text,
    send_daily_report,
)
from gridflow.control.report import build_report, strict_json
from gridflow.control.report_data import load_run, open_positions
from gridflow.journal.schema import open_store

# the alert-sink tests' HTTP endpoint on 127.0.0.1 (module name as pytest imports it)
sys.path.append(str(Path(__file__).resolve().parents[1] / "dataflows"))
from test_alert_sink import closed_port, http_server

FIRST, LAST = date(2021, 1, 1), date(2021, 4, 20)
BUSY = date(2021, 2, 11)  # a reset and a trip, funding, trades, a data gap
TOL = 1e-6
FIGURES = ("realized", "fees_paid", "funding_paid", "net_pnl", "closed_pnl")


@pytest.fixture(scope="module")
def db(request) -> str:
    """The journal of ``test_report_tables``' replay (run :data:`RUN`)."""
    return request.getfixturevalue("run")["db"]


@pytest.fixture(scope="module")
def days(db) -> dict[date, object]:
    """The daily report of every day of the run."""
    out, day = {}, FIRST
    while day <= LAST:
        out[day] = daily_report(db, RUN, day)
        day += timedelta(days=1)
    return out


def _cli(argv: list[str]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return buf.getvalue()


# --- one day, from the journal rows ---------------------------------------------------

def _rows(db: str, sql: str, **params) -> list[tuple]:
    eng = create_engine(db)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), dict(run=RUN, **params)).all()]
    finally:
        eng.dispose()


def _recompute(db: str, day: date) -> dict:
    """The day's figures straight from the journal's rows: fills and round trips by the
    candle open they are stamped with, funding and equity by the candle close."""
    s, e = day_window(day)
    sym: dict = defaultdict(lambda: dict.fromkeys((*FIGURES, "trades", "wins"), 0.0))
    for acc, symbol, fee, realized in _rows(
            db, "select account, symbol, fee, realized_pnl from fills where run_id = :run "
                "and ts_ms >= :s and ts_ms < :e", s=s, e=e):
        sym[acc, symbol]["realized"] += realized
        sym[acc, symbol]["fees_paid"] += fee
    for acc, symbol, detail in _rows(
            db, "select account, symbol, detail from events where run_id = :run and "
                "kind = 'funding' and ts_ms > :s and ts_ms <= :e", s=s, e=e):
        sym[acc, symbol]["funding_paid"] += json.loads(detail)["payment"]
    for acc, symbol, pnl in _rows(
            db, "select account, symbol, pnl from trades where run_id = :run and "
                "close_ts_ms >= :s and close_ts_ms < :e", s=s, e=e):
        sym[acc, symbol]["trades"] += 1
        sym[acc, symbol]["wins"] += pnl > 0
        sym[acc, symbol]["closed_pnl"] += pnl
    for f in sym.values():
        f["net_pnl"] = f["realized"] - f["fees_paid"] - f["funding_paid"]

    def snapshot(acc: str, t: int) -> tuple[float, float] | None:
        got = _rows(db, "select equity, unrealized from equity where run_id = :run and "
                        "account = :a and ts_ms <= :t order by ts_ms desc limit 1", a=acc, t=t)
        return got[0] if got else None

    accounts = {a: c for a, c in _rows(
        db, "select account, initial_capital from account_summaries where run_id = :run")}
    equity = {}
    for acc, capital in accounts.items():
        start = snapshot(acc, s) or (capital, 0.0)
        end = snapshot(acc, e) or start
        equity[acc] = {"equity_start": start[0], "equity_end": end[0],
                       "unrealized_change": end[1] - start[1]}
    switches = _rows(db, "select ts_ms, account, kind, reason from events where run_id = :run "
                         "and kind like 'kill_switch_%' and ts_ms >= :s and ts_ms < :e "
                         "order by ts_ms, account, seq", s=s, e=e)
    gaps = _rows(db, "select ts_ms, symbol, kind from events where run_id = :run and "
                     "kind = 'data_gap' and ts_ms >= :s and ts_ms < :e order by ts_ms, symbol",
                 s=s, e=e)
    return {"symbols": dict(sym), "equity": equity, "switches": switches, "gaps": gaps}


@pytest.mark.parametrize("day", [FIRST, date(2021, 1, 4), BUSY, date(2021, 3, 2), LAST])
def test_a_day_equals_its_figures_recomputed_from_the_journal_rows(db, days, day):
    rep, want = days[day], _recompute(db, day)
    assert rep.date == day.isoformat() and rep.start_ms == day_window(day)[0]
    got_syms = {(a.account, s.symbol): s for a in rep.accounts for s in a.symbols}
    assert set(want["symbols"]) <= set(got_syms)
    for key, s in got_syms.items():
        w = want["symbols"].get(key, dict.fromkeys((*FIGURES, "trades", "wins"), 0.0))
        for f in FIGURES:
            assert getattr(s, f) == pytest.approx(w[f], abs=TOL), (key, f)
        assert s.trades == w["trades"]
        assert s.win_rate_pct == pytest.approx(100 * w["wins"] / w["trades"] if w["trades"]
                                               else 0.0)
    for a in rep.accounts:
        w = want["equity"][a.account]
        assert a.equity_start == pytest.approx(w["equity_start"], abs=TOL)
        assert a.equity_end == pytest.approx(w["equity_end"], abs=TOL)
        # the booked PnL is the change of cash: the rest is the positions' value
        assert a.unrealized_change == pytest.approx(w["unrealized_change"], abs=TOL)
        assert a.equity_change == pytest.approx(a.net_pnl + a.unrealized_change, abs=TOL)
    assert [(e.ts_ms, e.account, e.event, e.reason) for e in rep.kill_switch_events] \
        == want["switches"]
    assert [(g.ts_ms, g.symbol, g.kind) for g in rep.data_gaps] == want["gaps"]


def test_the_busy_day_has_each_section(days):
    rep = days[BUSY]
    grid = next(a for a in rep.accounts if a.account == "grid")
    assert grid.funding_paid > 0 and grid.trades > 0 and grid.fees_paid > 0
    assert {e.event for e in rep.kill_switch_events} == {"kill_switch_tripped",
                                                         "kill_switch_reset"}
    assert {g.symbol for g in rep.data_gaps} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert all(g.detail["missing"] == 1 for g in rep.data_gaps)


def test_symbols_and_strategies_sum_to_their_account_every_day(days):
    for rep in days.values():
        for a in rep.accounts:
            for parts in (a.symbols, a.strategies):
                for f in (*FIGURES, "trades"):
                    assert sum(getattr(p, f) for p in parts) == pytest.approx(
                        getattr(a, f), abs=TOL), (rep.date, a.account, f)
            assert sorted(s for st in a.strategies for s in st.symbols) \
                == sorted(s.symbol for s in a.symbols)


def test_the_days_add_up_to_gridflow_reports_tables(db, days):
    """Summed over the run's days, each figure is the report's: a symbol's booked PnL
    plus its open position's unrealized PnL is its net PnL; the equity changes chain
    and sum to the account's net PnL; the switches and gaps are the report's."""
    rep = build_report(db, RUN)
    eng = open_store(db)
    try:
        data = load_run(eng, RUN)
    finally:
        eng.dispose()
    reps = [days[d] for d in sorted(days)]
    for row in rep["symbols"]:
        acc, sym = row["account"], row["symbol"]
        parts = [s for r in reps for a in r.accounts if a.account == acc for s in a.symbols
                 if s.symbol == sym]
        unreal = open_positions(data, acc).get(sym, {}).get("unrealized", 0.0)
        assert sum(p.net_pnl for p in parts) + unreal == pytest.approx(row["net_pnl"], abs=TOL)
        assert sum(p.fees_paid for p in parts) == pytest.approx(row["fees_paid"], abs=TOL)
        assert sum(p.funding_paid for p in parts) == pytest.approx(row["funding_paid"], abs=TOL)
        assert sum(p.closed_pnl for p in parts) == pytest.approx(row["closed_pnl"], abs=TOL)
        assert sum(p.trades for p in parts) == row["trades"]
        assert {p.strategy for p in parts} == {row["strategy"]}
    for row in rep["strategies"]:
        parts = [s for r in reps for a in r.accounts if a.account == row["account"]
                 for s in a.strategies if s.strategy == row["strategy"]]
        assert sum(p.fees_paid for p in parts) == pytest.approx(row["fees_paid"], abs=TOL)
        assert sum(p.trades for p in parts) == row["trades"]
    for ov in rep["overview"]:
        accs = [a for r in reps for a in r.accounts if a.account == ov["account"]]
        assert accs[0].equity_start == ov["initial_capital"]
        assert all(x.equity_end == y.equity_start for x, y in pairwise(accs))
        assert sum(a.equity_change for a in accs) == pytest.approx(ov["net_pnl"], abs=TOL)
        assert accs[-1].equity_end == pytest.approx(ov["final_equity"], abs=TOL)
        assert sum(a.trades for a in accs) == ov["trades"]
        # the positions are the summary's, with its distances as percent
        held = {p.symbol: p for p in accs[-1].positions}
        assert set(held) == set(open_positions(data, ov["account"]))
        summary = next(s for s in data.summaries if s["account"] == ov["account"])
        for sym, p in held.items():
            pos = summary["positions"][sym]
            assert p.amount == pos["amount"] > 0 and p.side == pos["side"]
            for key in ("take_profit", "stop"):
                d = pos[f"{key}_distance"]
                assert getattr(p, f"{key}_distance_pct") == (None if d is None else d * 100)
    assert [(e.ts_ms, e.account, e.event, e.reason) for r in reps
            for e in r.kill_switch_events] == [
        (e["ts_ms"], e["account"], e["event"], e["reason"])
        for e in rep["kill_switch_events"]]
    assert sum(len(r.data_gaps) for r in reps) == rep["data_gaps"] == 9
    assert any(p for r in reps for a in r.accounts for p in a.positions)


# --- the command line -----------------------------------------------------------------

def test_cli_prints_the_day_as_text_and_as_json(db, days):
    rep = days[BUSY]
    out = _cli(["report", "--db", db, "--run", RUN, "--daily", "--date", "2021-02-11"])
    assert out.strip() == render_daily_text(rep)
    lines = out.splitlines()
    assert lines[0] == daily_title(rep)
    assert f"PnL {sum(a.net_pnl for a in rep.accounts):+,.2f} USDT" in lines[0]
    for a in rep.accounts:
        assert f"[{a.account}] PnL {a.net_pnl:+,.2f} USDT" in out
        for s in a.symbols:
            assert f"  {s.symbol} {s.net_pnl:+,.2f} (" in out
    assert "grid tripped DAILY_LOSS" in out and "reset DAILY_LOSS by DAY_ROLLOVER" in out
    assert "BTC/USDT data_gap: 1 candle(s) missing between 03:00 and 05:00" in out

    got = json.loads(_cli(["report", "--db", db, "--daily", "--date", "2021-02-11", "--json"]),
                     parse_constant=lambda c: pytest.fail(f"non-JSON token {c}"))
    assert got == strict_json(rep.model_dump(mode="json"))
    assert got["run_id"] == RUN and got["date"] == "2021-02-11"


def test_a_day_without_rows_or_a_bad_date_is_one_line_and_exit_2(db, capsys, tmp_path):
    msg = _one_line_error(capsys, ["report", "--db", db, "--daily"])  # yesterday: no rows
    assert "NO_DATA" in msg and f"on {parse_day(None).isoformat()} (UTC)" in msg
    assert "2021-01-01T00:00:00Z to 2021-04-20T05:00:00Z" in msg
    msg = _one_line_error(capsys, ["report", "--db", db, "--daily", "--date", "2021-04-21"])
    assert "NO_DATA" in msg and "2021-04-21" in msg
    for bad in ("2021-02-30", "yesterday", "2021-2-1x", ""):
        msg = _one_line_error(capsys, ["report", "--db", db, "--daily", "--date", bad])
        assert "YYYY-MM-DD" in msg and repr(bad) in msg
    msg = _one_line_error(capsys, ["report", "--db", db, "--date", "2021-02-11"])
    assert "--date needs --daily" in msg
    msg = _one_line_error(capsys, ["report", "--db", db, "--daily", "--run", "nope"])
    assert "UNKNOWN_RUN" in msg
    missing = tmp_path / "none.db"
    msg = _one_line_error(capsys, ["report", "--db", f"sqlite:///{missing}", "--daily"])
    assert "no journal at" in msg and not missing.exists()


def test_parse_day_defaults_to_yesterday_utc():
    from datetime import UTC, datetime

    assert parse_day(None) == datetime.now(UTC).date() - timedelta(days=1)
    assert parse_day("2024-02-29") == date(2024, 2, 29)
    assert day_window(date(2024, 2, 29)) == (1_709_164_800_000, 1_709_251_200_000)


# --- delivery -------------------------------------------------------------------------

def test_the_report_reaches_a_real_json_endpoint_with_its_figures(db, days):
    rep, want = days[BUSY], _recompute(db, BUSY)
    with http_server() as srv:
        assert send_daily_report(rep, [f"json://127.0.0.1:{srv.server_port}/daily"],
                                 timeout_s=5.0)
    [post] = srv.posts
    assert post["path"] == "/daily" and post["type"].startswith("application/json")
    body = post["json"]
    assert body["title"] == daily_title(rep) and body["type"] == "warning"  # a trip
    assert body["message"] == render_daily_text(rep)
    for acc in ("grid", "trend"):  # the figures recomputed from the rows, as printed
        net = sum(f["net_pnl"] for (a, _), f in want["symbols"].items() if a == acc)
        assert f"[{acc}] PnL {net:+,.2f} USDT" in body["message"]
    for (acc, sym), f in want["symbols"].items():
        if f["trades"]:
            assert f"  {sym} {f['net_pnl']:+,.2f} ({int(f['trades'])} trade" in body["message"]


def test_a_failed_delivery_is_false_and_logs_no_url(days, caplog):
    rep = days[LAST]
    url = f"json://127.0.0.1:{closed_port()}/s3cr3tT0kenDaily"
    with caplog.at_level(logging.DEBUG):
        assert send_daily_report(rep, [url], timeout_s=1.0) is False
    assert any("not delivered" in r.getMessage() for r in caplog.records)
    assert "s3cr3tT0kenDaily" not in caplog.text
    with pytest.raises(ValueError, match="non-empty"):
        send_daily_report(rep, [])
    with pytest.raises(ValueError, match="not a valid Apprise URL"):
        send_daily_report(rep, ["nosuchscheme://x"])
