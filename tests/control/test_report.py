"""Reports: diffable journal lines and the performance summary (real SQLite files)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gridflow.chunks import JournalBatch
from gridflow.control.report import compute_report, equity_curve, journal_lines
from gridflow.events import (
    AccountSummary,
    EquitySnapshot,
    ExecutionReport,
    JournalEvent,
    OrderRequest,
    TradeRecord,
)
from gridflow.journal.store import Journal

D = 86_400_000
H = 3_600_000


def order(cid: str, account: str, ts: int, seq: int) -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        account=account,
        strategy="grid",
        symbol="ETH/USDT",
        tag="L0",
        ts_ms=ts,
        seq=seq,
        side="buy",
        type="limit",
        price=2000.0 + seq / 3,
        amount=0.1,
    )


def fill(
    rid: str, cid: str, account: str, ts: int, seq: int, fee: float = 0.1, status: str = "filled"
) -> ExecutionReport:
    return ExecutionReport(
        report_id=rid,
        client_order_id=cid,
        account=account,
        symbol="ETH/USDT",
        ts_ms=ts,
        seq=seq,
        status=status,
        side="buy",
        price=2000.0 + seq / 3,
        amount=0.1,
        fee=fee,
    )


def trade(i: int, pnl: float) -> TradeRecord:
    return TradeRecord(
        trade_id=f"a:ETH/USDT:{i}",
        account="a",
        symbol="ETH/USDT",
        seq=i,
        position_side="long",
        open_ts_ms=i * H,
        close_ts_ms=(i + 1) * H,
        entries=1,
        amount=0.1,
        avg_entry=2000.0,
        exit_price=2000.0 + pnl * 10,
        pnl=pnl,
        fees=0.0,
        exit_reason="TP",
    )


def eq(account: str, ts: int, equity: float) -> EquitySnapshot:
    return EquitySnapshot(
        account=account, ts_ms=ts, equity=equity, cash=equity, unrealized=0.0, used_margin=0.0
    )


def ev(i: int, kind: str) -> JournalEvent:
    return JournalEvent(event_id=f"{kind}:{i}", kind=kind, reason="X", ts_ms=i * H)


def summary(account: str, equity: float, initial: float = 500.0) -> AccountSummary:
    return AccountSummary(
        account=account,
        candles=10,
        last_ts_ms=4 * D,
        initial_capital=initial,
        equity=equity,
        cash=equity,
        fees_paid=0.0,
        realized_pnl=0.0,
    )


def order_flow() -> JournalBatch:
    """Two accounts; same (ts, seq) across accounts; an order and its fill share a seq."""
    b = JournalBatch()
    for k in range(4):
        for acc in ("b", "a"):
            cid = f"{acc}-o{k}"
            b.orders.append(order(cid, acc, k * H, 2 * k))
            b.fills.append(fill(f"{acc}-f{k}", cid, acc, k * H, 2 * k))
            b.fills.append(fill(f"{acc}-g{k}", cid, acc, (k + 1) * H, 2 * k + 1))
    return b


def test_journal_lines_do_not_depend_on_the_write_split(tmp_path) -> None:
    full = order_flow()
    url_a, url_b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    with Journal(url_a) as j:
        j.upsert_run("run-a", "h", "{}", "{}", "replay")
        j.write("run-a", full)
    with Journal(url_b) as j:
        j.upsert_run("run-b", "h", "{}", "{}", "replay")
        pieces = [
            JournalBatch(fills=full.fills[5:]),
            JournalBatch(orders=full.orders[::-1], fills=full.fills[2:7]),
            JournalBatch(fills=full.fills[:3]),
        ]
        for piece in (*pieces, pieces[1]):  # a replayed piece too
            j.write("run-b", piece)
    lines_a, lines_b = journal_lines(url_a), journal_lines(url_b, "run-b")
    assert lines_a == lines_b
    assert len(lines_a) == len(full.orders) + len(full.fills)
    records = [json.loads(line) for line in lines_a]
    allowed = {"record"} | set(OrderRequest.model_fields) | set(ExecutionReport.model_fields)
    for rec in records:
        assert set(rec) <= allowed  # no run_id, created_at_ms or other wall-clock field
    # event order: (ts, account, seq), an order before the fill with the same seq
    assert [(r["record"], r["account"], r["seq"]) for r in records[:6]] == [
        ("order", "a", 0),
        ("fill", "a", 0),
        ("order", "b", 0),
        ("fill", "b", 0),
        ("fill", "a", 1),
        ("order", "a", 2),
    ]
    assert lines_a[0] == json.dumps(records[0], sort_keys=True)


def test_journal_lines_other_kinds_and_errors(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    with pytest.raises(LookupError, match="NO_RUNS"):
        journal_lines(url)
    with Journal(url) as j:
        j.upsert_run("r", "h", "{}", "{}", "replay")
        j.write("r", JournalBatch(trades=[trade(1, 2.0)], events=[ev(1, "order_denied")]))
    lines = journal_lines(url, include=("trade", "event", "equity"))
    assert [json.loads(x)["record"] for x in lines] == ["event", "trade"]
    with pytest.raises(ValueError, match="UNKNOWN_RECORD_KIND"):
        journal_lines(url, include=("orderz",))


def test_compute_report_on_a_hand_built_run(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    ts = [1 * H, 2 * H, D + H, 2 * D + H, 3 * D + H]  # day 0 has two points
    eq_a = [500.0, 550.0, 450.0, 520.0, 600.0]
    eq_b = [500.0, 550.0, 450.0, 480.0, 500.0]  # summed: 1000, 1100, 900, 1000, 1100
    batch = JournalBatch(
        orders=[order("o1", "a", H, 1), order("o2", "a", H, 2)],
        fills=[
            fill("f1", "o1", "a", H, 1, fee=0.5),
            fill("f2", "o1", "a", H, 1, fee=0.25, status="partially_filled"),
            fill("f3", "o2", "a", H, 2, fee=1.0),
            fill("f4", "o2", "a", H, 2, fee=-0.1),  # maker rebate
            fill("f5", "o2", "a", H, 2, fee=0.0, status="canceled"),
        ],
        trades=[trade(1, 30.0), trade(2, -10.0), trade(3, 20.0), trade(4, 0.0)],
        equity=[eq("a", t, e) for t, e in zip(ts, eq_a)]
        + [eq("b", t, e) for t, e in zip(ts, eq_b)],
        events=[
            ev(1, "candle_rejected"),
            ev(2, "candle_rejected"),
            ev(3, "order_denied"),
            ev(4, "order_denied"),
            ev(5, "order_denied"),
            ev(6, "kill_switch_tripped"),
        ],
        summaries=[summary("a", 600.0), summary("b", 500.0)],
    )
    with Journal(url) as j:
        j.upsert_run("r", "h", "{}", "{}", "replay")
        j.write("r", batch)
    rep = compute_report(url)

    # daily closes 1100 (day 0, last point), 900, 1000, 1100; the first return from the
    # initial capital (1000): the Sharpe covers the window of the net PnL
    r = [1100 / 1000 - 1, 900 / 1100 - 1, 1000 / 900 - 1, 1100 / 1000 - 1]
    mean = sum(r) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
    assert rep["sharpe"] == pytest.approx(mean / sd * math.sqrt(365), rel=1e-12)
    assert rep["max_drawdown_pct"] == pytest.approx(200 / 1100 * 100)  # 1100 -> 900
    assert rep["initial_capital"] == 1000.0 and rep["final_equity"] == 1100.0
    assert rep["net_pnl"] == pytest.approx(100.0)
    assert rep["return_pct"] == pytest.approx(10.0)
    assert rep["win_rate"] == 0.5  # 30 and 20 win; -10 and 0 do not
    assert rep["profit_factor"] == pytest.approx(50 / 10)
    assert rep["avg_trade_pnl"] == pytest.approx(10.0)
    assert rep["fees_paid"] == pytest.approx(0.5 + 0.25 + 1.0 - 0.1)
    assert rep["run_id"] == "r" and rep["accounts"] == 2 and rep["candles"] == 20
    assert (rep["orders"], rep["fills"], rep["trades"]) == (2, 4, 4)
    assert (rep["candles_rejected"], rep["orders_denied"], rep["kill_switch_trips"]) == (2, 3, 1)
    assert (rep["first_ts_ms"], rep["last_ts_ms"]) == (H, 3 * D + H)


def test_compute_report_of_an_empty_run(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    with Journal(url) as j:
        j.upsert_run("r", "h", "{}", "{}", "replay")
    rep = compute_report(url, "r")
    assert rep["trades"] == 0 and rep["win_rate"] == 0.0 and rep["profit_factor"] == 0.0
    # no equity curve: Sharpe and drawdown are undefined, NaN (gridflow.metrics rule)
    assert math.isnan(rep["sharpe"]) and math.isnan(rep["max_drawdown_pct"])
    assert rep["return_pct"] == 0.0
    assert rep["first_ts_ms"] is None


def test_sharpe_needs_two_daily_returns_and_pf_without_losses(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    with Journal(url) as j:
        j.upsert_run("r", "h", "{}", "{}", "replay")
        j.write(
            "r",
            JournalBatch(
                equity=[eq("a", 0, 100.0), eq("a", H, 110.0)],  # one UTC day
                trades=[trade(1, 5.0)],
                summaries=[summary("a", 110.0, initial=100.0)],
            ),
        )
    rep = compute_report(url)
    assert math.isnan(rep["sharpe"])  # one daily return (from the capital): undefined
    assert rep["max_drawdown_pct"] == 0.0  # never below its peak
    assert rep["profit_factor"] == math.inf and rep["win_rate"] == 1.0
    assert rep["return_pct"] == pytest.approx(10.0)


def test_equity_curve_forward_fills_staggered_accounts() -> None:
    rows = [(1, "a", 10.0), (2, "a", 11.0), (3, "a", 12.0), (2, "b", 50.0), (4, "b", 40.0)]
    ts, curve = equity_curve(rows, {"b": 45.0})
    assert ts.tolist() == [1, 2, 3, 4]
    # b before its first snapshot is its initial capital, later its last value
    np.testing.assert_allclose(curve, [10 + 45, 11 + 50, 12 + 50, 12 + 40])
    _, no_initial = equity_curve(rows)
    assert no_initial[0] == 10 + 50  # back-filled with b's first snapshot


def test_build_report_of_an_empty_and_of_a_hand_built_run(tmp_path) -> None:
    """No snapshot, no config, no candle files: every section is there, undefined
    figures are NaN (null in JSON), and symbols the journal does not explain go to an
    ``(other)`` row so the parts still sum to the account."""
    from gridflow.control.report import build_report, strict_json

    url = f"sqlite:///{tmp_path / 'j.db'}"
    with Journal(url) as j:
        j.upsert_run("empty", "h", "{}", "{}", "replay")
    rep = build_report(url, "empty")
    assert rep["overview"] == [] and rep["window"]["start"] is None
    assert rep["kill_switch_events"] == [] and rep["months"] == []
    with Journal(url) as j:
        j.upsert_run("r", "h", "{}", "[]", "replay")
        j.write("r", JournalBatch(
            orders=[order("o1", "a", H, 1)], fills=[fill("f1", "o1", "a", H, 1, fee=0.5)],
            trades=[trade(1, 30.0), trade(2, -10.0)],
            equity=[eq("a", H, 500.0), eq("a", D + H, 520.0)],
            summaries=[summary("a", 520.0)]))
    rep = build_report(url, "r")
    (ov,) = rep["overview"]
    assert ov["net_pnl"] == pytest.approx(20.0) and ov["trades"] == 2
    assert ov["win_rate_pct"] == 50.0 and ov["profit_factor"] == 3.0
    assert math.isnan(ov["buy_hold_pct"])  # no candle file to read
    rows = {r["symbol"]: r for r in rep["symbols"]}
    assert set(rows) == {"ETH/USDT", "(other)"}
    assert sum(r["net_pnl"] for r in rows.values()) == pytest.approx(ov["net_pnl"])
    assert rep["notes"] and "(other)" in rep["notes"][0]
    assert json.loads(json.dumps(strict_json(rep)))["overview"][0]["buy_hold_pct"] is None
