"""The trader's report (``gridflow report``) on a real replay: every table in the text,
the same figures in ``--json``, parts that add up to the account, one definition per
metric.

The run: BTC, ETH and SOL 1h from 2021-01-01 to 2021-04-20 05:00 (a volatile window), two
accounts. ``grid`` trades grid ATR on BTC (a perpetual: funding) and ETH and envelope DCA
on SOL, leveraged, with a 2 % daily-loss switch (it trips and resets) and a 40 % max
drawdown (it trips for good); ``trend`` trades grid trend on ETH and SOL (stops, trails
and flips; the window ends with a position open).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from gridflow import metrics
from gridflow.cli import main
from gridflow.control.report import build_report, strict_json
from gridflow.control.report_tables import NA, OVERVIEW_ROWS, TABLES, cell, table
from gridflow.data.candle_files import read_candle_file
from gridflow.data.funding import bundled_funding_files
from gridflow.event_kinds import ExitReason, Reason
from gridflow.journal.store import read_equity

END = "2021-04-20T05:00"
RUN = "report-t"


def _config(path: Path, files: list[Path]) -> Path:
    data = "".join(f'[[data]]\npath = "{f}"\n' for f in files)
    path.write_text(f"""equity_every_ms = 3600000
{data}
[[funding]]
path = "{bundled_funding_files()['BTC/USDT']}"

[[accounts]]
name = "grid"
capital_quote = 10000.0
leverage = 3.0
symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
[[accounts.strategies]]
name = "grid_atr"
symbols = ["BTC/USDT", "ETH/USDT"]
side = "long"
sma_period = 24
atr_period = 14
levels = 4
atr_start = 1.0
atr_step = 0.5
sl_frac = 0.06
[[accounts.strategies]]
name = "envelope_dca"
symbols = ["SOL/USDT"]
side = "long"
sma_period = 48
offsets = [0.03, 0.06]
sl_frac = 0.08
[accounts.risk]
daily_loss_limit = 0.02
session_loss_grid = 0.3
max_drawdown_frac = 0.4

[[accounts]]
name = "trend"
capital_quote = 5000.0
leverage = 1.0
symbols = ["ETH/USDT", "SOL/USDT"]
[[accounts.strategies]]
name = "grid_trend"
ema_fast = 20
ema_slow = 50
adx_period = 14
adx_threshold = 20.0
atr_period = 14
levels = 1
atr_start = 0.5
trail_atr = 3.0
sl_frac = 0.08
[accounts.risk]
cooldown_candles = 12
""")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, three_symbol_files) -> dict:
    """The replay, then ``report`` as text and as JSON, in this process."""
    tmp = tmp_path_factory.mktemp("report")
    db = f"sqlite:///{tmp / 'j.db'}"
    cfg = _config(tmp / "c.toml", three_symbol_files)
    assert main(["replay", "--config", str(cfg), "--db", db, "--no-progress", "--end", END,
                 "--run-id", RUN, "--name", "two accounts"]) == 0
    return {"db": db, "files": three_symbol_files}


@pytest.fixture(scope="module")
def outputs(run) -> tuple[str, dict]:
    import contextlib
    import io

    out = {}
    for flag in ([], ["--json"]):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["report", "--db", run["db"], *flag]) == 0
        out[bool(flag)] = buf.getvalue()

    def refuse(token: str):
        raise AssertionError(f"non-JSON token {token} in the report")

    return out[False], json.loads(out[True], parse_constant=refuse)


@pytest.fixture(scope="module")
def rep(run) -> dict:
    return build_report(run["db"], RUN)


# --- the text ------------------------------------------------------------------------

def _sections(text: str) -> dict[str, str]:
    head, *rest = text.split("\n== ")
    out = {"header": head}
    for part in rest:
        title, _, body = part.partition("\n")
        out[title] = body
    return out


def _parse(body: str) -> list[dict[str, str]]:
    """A text table back to rows of cell text, cut by the dashes under the header."""
    lines = body.splitlines()
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    cols = [lines[0][a:b].strip() if i < len(spans) - 1 else lines[0][a:].strip()
            for i, (a, b) in enumerate(spans)]
    rows = []
    for ln in lines[2:]:
        cells = [ln[a:spans[i + 1][0]].strip() if i < len(spans) - 1 else ln[a:].strip()
                 for i, (a, _) in enumerate(spans)]
        rows.append(dict(zip(cols, cells)))
    return rows


def _same(text: str, value) -> bool:
    """A printed cell shows ``value`` (two decimals for floats)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return text == NA
    if isinstance(value, bool):
        return text == ("yes" if value else "no")
    if isinstance(value, (int, float)):
        return abs(float(text.replace(",", "")) - value) <= 0.005 + 1e-9 * abs(value)
    if isinstance(value, list):
        return text == ", ".join(value)
    return text == (value or "-")


def test_every_table_is_in_the_text(outputs, rep):
    text, _ = outputs
    sections = _sections(text)
    titles = ["overview (per account)", *(t for t, _ in TABLES.values())]
    assert [t for t in sections if t != "header"][:len(titles)] == titles
    head = sections["header"]
    assert f"run {RUN}  name: two accounts  (replay" in head
    assert "window 2021-01-01T00:00:00Z to 2021-04-20T05:00:00Z (109.21 days)" in head
    assert f"{rep['candles']:,} candles; 2 account(s)" in head
    assert "money in quote currency (USDT)" in head and "percent (*_pct)" in head
    for title in titles:
        assert _parse(sections[title]), title  # every table has rows in this run


def test_the_json_has_the_figures_of_the_text(outputs):
    text, js = outputs
    sections = _sections(text)
    shown = _parse(sections["overview (per account)"])
    accounts = {a["account"]: a for a in js["overview"]}
    assert set(shown[0]) == {"metric", *accounts}
    rows = {r["metric"]: r for r in shown}
    assert [m for m in rows if "[" not in m] == list(OVERVIEW_ROWS)
    for metric, row in rows.items():
        for acc, ov in accounts.items():
            key, _, sym = metric.partition("[")
            value = ov["buy_hold_by_symbol_pct"].get(sym[:-1]) if sym else ov[key]
            assert _same(row[acc], value), (metric, acc, row[acc], value)
    for key, (title, cols) in TABLES.items():
        printed = _parse(sections[title])
        assert len(printed) == len(js[key]), key
        for got, want in zip(printed, js[key]):
            for c in cols:
                assert _same(got[c], want[c]), (key, c, got[c], want[c])


def test_json_is_strict_and_keeps_the_run_totals(outputs, rep):
    _, js = outputs
    assert js == json.loads(json.dumps(strict_json(rep)))
    for key in ("run_id", "candles", "orders", "fills", "trades", "net_pnl", "return_pct",
                "max_drawdown_pct", "sharpe", "win_rate", "fees_paid", "funding_paid",
                "orders_denied", "kill_switch_trips", "first_ts_ms", "last_ts_ms"):
        assert key in js, key
    assert js["name"] == "two accounts" and js["window"]["start"] == "2021-01-01T00:00:00Z"
    assert set(js["overview"][1]["buy_hold_by_symbol_pct"]) == {"ETH/USDT", "SOL/USDT"}


# --- parts add up --------------------------------------------------------------------

def test_symbols_strategies_and_months_sum_to_the_account(rep):
    assert sum(o["net_pnl"] for o in rep["overview"]) == pytest.approx(rep["net_pnl"], abs=1e-6)
    for ov in rep["overview"]:
        acc, net = ov["account"], ov["net_pnl"]
        assert net == pytest.approx(ov["final_equity"] - ov["initial_capital"], abs=1e-9)
        rows = {k: [r for r in rep[k] if r["account"] == acc]
                for k in ("symbols", "strategies", "months", "exit_reasons")}
        assert all(r["symbol"] != "(other)" for r in rows["symbols"])  # all explained
        for k in ("symbols", "strategies", "months"):
            assert abs(sum(r["net_pnl"] for r in rows[k]) - net) <= 1e-6, (acc, k)
        for k in ("symbols", "strategies", "exit_reasons"):
            assert sum(r["trades"] for r in rows[k]) == ov["trades"], (acc, k)
        assert sum(r["trades"] for r in rows["months"]) == ov["trades"]
        (dur,) = [d for d in rep["durations"] if d["account"] == acc]
        assert dur["trades"] == ov["trades"]
        assert sum(r["fees_paid"] for r in rows["symbols"]) == pytest.approx(ov["fees_paid"])
        assert sum(r["funding_paid"] for r in rows["symbols"]) == pytest.approx(
            ov["funding_paid"], abs=1e-9)
        exits = {r["exit_reason"] for r in rows["exit_reasons"]}
        assert exits <= {str(e) for e in ExitReason}
    assert sum(o["trades"] for o in rep["overview"]) == rep["trades"]
    # the fixture's promises: funding paid, a position open at the end, every exit kind
    grid, trend = rep["overview"]
    assert grid["funding_paid"] != 0.0 and grid["kill_switch"] == "MAX_DRAWDOWN"
    assert any(r["open_pnl"] != 0.0 for r in rep["symbols"] if r["account"] == "trend")
    assert {r["exit_reason"] for r in rep["exit_reasons"]} >= {"TP", "SL", "TRAIL", "FLIP"}


def test_kill_switch_events_and_denials(rep):
    events = rep["kill_switch_events"]
    trips = [e for e in events if e["event"] == "kill_switch_tripped"]
    assert len(trips) == rep["kill_switch_trips"] > 0
    assert {e["reason"] for e in trips} == {"DAILY_LOSS", "MAX_DRAWDOWN"}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", e["time"]) for e in events)
    assert [e["ts_ms"] for e in events] == sorted(e["ts_ms"] for e in events)
    for e in trips:  # percent, at or beyond the threshold
        assert e["value_pct"] <= e["threshold_pct"] + 1e-9 and -100 < e["threshold_pct"] < 0
    resets = [e for e in events if e["event"] == "kill_switch_reset"]
    assert resets and all(e["by"] == "DAY_ROLLOVER" for e in resets)
    assert sum(d["events"] for d in rep["denials"]) == rep["orders_denied"]
    assert {d["reason"] for d in rep["denials"]} <= {str(r) for r in Reason}
    assert all(d["attempts"] >= d["events"] for d in rep["denials"])


# --- one definition per metric -------------------------------------------------------

def test_overview_metrics_are_the_metrics_modules(rep, run):
    start, end = rep["window"]["start_ms"], rep["window"]["end_ms"]
    days = (end - start) / 86_400_000
    rows = read_equity(run["db"], RUN)
    for ov in rep["overview"]:
        ts = np.array([r["ts_ms"] for r in rows if r["account"] == ov["account"]])
        eq = np.array([r["equity"] for r in rows if r["account"] == ov["account"]])
        cap = ov["initial_capital"]
        total = ov["net_pnl"] / cap
        r = metrics.daily_returns(ts, eq, base=cap)[1]
        assert ov["sharpe"] == pytest.approx(metrics.sharpe(r))
        assert ov["sortino"] == pytest.approx(metrics.sortino(r))
        dd = metrics.max_drawdown(np.r_[cap, eq])
        assert ov["max_drawdown_pct"] == pytest.approx(dd * 100)
        assert ov["cagr_pct"] == pytest.approx(metrics.annualised_return(total, days) * 100)
        assert ov["calmar"] == pytest.approx(metrics.calmar(total, days, dd))
        assert 0.0 < ov["exposure_pct"] < 100.0
        assert np.sign(ov["sharpe"]) == np.sign(ov["net_pnl"])
    assert rep["overview"][0]["max_drawdown_pct"] >= 40.0  # the switch tripped at 40 %


def test_buy_and_hold_from_the_candle_files(rep, run):
    start, end = rep["window"]["start_ms"], rep["window"]["end_ms"]
    want = {}
    for f, sym in zip(run["files"], ("BTC/USDT", "ETH/USDT", "SOL/USDT")):
        c = read_candle_file(f)
        inside = np.flatnonzero((c["ts"] >= start) & (c["ts"] + 3_600_000 <= end))
        want[sym] = (c["close"][inside[-1]] / c["open"][inside[0]] - 1.0) * 100
    grid, trend = rep["overview"]
    assert grid["buy_hold_by_symbol_pct"] == pytest.approx(want)
    assert grid["buy_hold_pct"] == pytest.approx(np.mean(list(want.values())))
    assert trend["buy_hold_pct"] == pytest.approx((want["ETH/USDT"] + want["SOL/USDT"]) / 2)


# --- the formatter and the metrics the report adds -----------------------------------

def test_table_alignment_and_cells():
    out = table([{"a": "x", "n": 1234.5, "k": 3}, {"a": "long name", "n": math.nan, "k": None}],
                ["a", "n", "k"])
    assert out.splitlines() == ["a                 n    k",
                                "---------  --------  ---",
                                "x          1,234.50    3",
                                "long name       n/a  n/a"]
    assert [cell(v) for v in (math.inf, -math.inf, True, "", [1, 2], 7)] == [
        "inf", "-inf", "yes", "-", "1, 2", "7"]
    assert table([], ["a"]) == "(none)"


def test_exposure_counts_overlaps_once_and_clips_to_the_window():
    assert metrics.exposure([0, 5, 20], [10, 15, 30], 0, 40) == pytest.approx(25 / 40)
    assert metrics.exposure([-10], [10], 0, 20) == pytest.approx(0.5)
    assert metrics.exposure([], [], 0, 10) == 0.0
    assert math.isnan(metrics.exposure([0], [1], 5, 5))
    with pytest.raises(ValueError, match="closes before it opens"):
        metrics.exposure([5], [1], 0, 10)


def test_simple_returns_from_a_base():
    r = metrics.simple_returns([110.0, 99.0], 100.0)
    assert r.tolist() == pytest.approx([0.1, -0.1])
    assert metrics.simple_returns([110.0, 99.0]).tolist() == pytest.approx([-0.1])
    assert math.isnan(metrics.simple_returns([5.0], 0.0)[0])  # rule 4: base not > 0
    days, r = metrics.daily_returns([0, 3_600_000, 86_400_000], [1.0, 2.0, 3.0], base=1.0)
    assert days.tolist() == [0, 86_400_000] and r.tolist() == pytest.approx([1.0, 0.5])
