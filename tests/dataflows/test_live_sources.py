"""Live sources (closed candles, account state) against the local fake Binance USDT-M.

Real ccxt talks HTTP to :class:`gridflow.fakex.FakeExchange` on 127.0.0.1; the fake's
simulated clock (2020) decides what is closed. Candles are the bundled BTC 1h file
around two real gaps in Binance's data (4 missing hours after row 25950, 1 after row
26030), so gaps must be skipped, never invented.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, run_main
from pydantic import SecretStr

from gridflow.chunks import CandleChunk, ExchangeUpdate
from gridflow.config.live import ExchangeConfig
from gridflow.data import CANDLES_DIR
from gridflow.data.candle_files import read_candle_file
from gridflow.dataflows.candle_source import LiveCandleSource
from gridflow.dataflows.live_sources import backoff_s, describe_error
from gridflow.exchange.retry import RATE_LIMIT_BACKOFF_S
from gridflow.dataflows.account_source import ExchangeStateSource
from gridflow.exchange.client import make_exchange
from gridflow.exchange.retry import redact
from gridflow.fakex import FakeExchange, FaultPlan

H = 3_600_000
SYM, MKT = "BTC/USDT", "BTC/USDT:USDT"
_D = read_candle_file(CANDLES_DIR / "binance_BTC_USDT_1h.csv.gz")
ROWS = np.column_stack([_D[k] for k in ("ts", "open", "high", "low", "close", "volume")])
DATA = ROWS[24_000:26_300]  # what the fake serves
START = int(ROWS[26_000, 0])  # first forming candle: 2020-12-22T08:00Z


def file_rows(lo_ms: int, hi_ms: int) -> np.ndarray:
    """File rows with ``lo_ms <= ts < hi_ms``."""
    return ROWS[(ROWS[:, 0] >= lo_ms) & (ROWS[:, 0] < hi_ms)]


def as_rows(chunks: list[CandleChunk]) -> np.ndarray:
    if not chunks:
        return np.empty((0, 6))
    cols = [np.concatenate([getattr(c, k) for c in chunks])
            for k in ("ts", "open", "high", "low", "close", "volume")]
    return np.column_stack(cols)


@pytest.fixture
def fx():
    ex = FakeExchange(candles={SYM: DATA}, timeframe="1h", start_ms=START)
    ex.start()
    yield ex
    ex.stop()


def cfg(fx: FakeExchange) -> ExchangeConfig:
    return ExchangeConfig(api_key=SecretStr("test-key"), secret=SecretStr("test-secret"),
                          urls=fx.ccxt_urls(), timeout_ms=3000, rate_limit_ms=1)


def stepper(fx: FakeExchange, until_ms: int, every_s: float,
            hooks: dict[int, Callable[[], None]] | None = None,
            gate: threading.Event | None = None) -> threading.Thread:
    """Background thread: once ``gate`` is set (the warm-up seen), step the manual clock
    every ``every_s`` until ``now >= until_ms``; ``hooks[k]()`` runs before step ``k``."""
    def run() -> None:
        if gate is not None:
            gate.wait(20)
        k = 0
        while fx.now_ms() < until_ms:
            time.sleep(every_s)
            if hooks and k in hooks:
                try:
                    hooks[k]()
                except Exception as e:  # noqa: BLE001 - keep stepping: the flow must end
                    t.errors.append(e)
            fx.step()
            k += 1

    t = threading.Thread(target=run, daemon=True)
    t.errors = []  # type: ignore[attr-defined]
    t.start()
    return t


def run_flow(source, check: Callable | None = None, gate: threading.Event | None = None
             ) -> list:
    flow = Dataflow("live_test")
    s = op.input("in", flow, source)
    if gate is not None:
        s = op.inspect("gate", s, lambda _step, _item: gate.set())
    if check is not None:
        s = op.map("check", s, check)
    out: list = []
    op.output("out", s, TestingSink(out))
    run_main(flow)
    return out


# ------------------------------------------------------------------ candles


def test_warmup_then_closed_candles_exactly_once(fx: FakeExchange) -> None:
    end_ms = START + 60 * H
    seen_now: list[tuple[int, int]] = []

    def check(ch: CandleChunk) -> CandleChunk:
        if len(ch):
            seen_now.append((int(ch.ts[-1]), fx.now_ms()))
        return ch

    gate = threading.Event()
    t = stepper(fx, end_ms + 3 * H, 0.02, gate=gate)
    src = LiveCandleSource(cfg(fx), [SYM], "1h", warmup_candles=300, poll_s=0.03,
                           end_ms=end_ms)
    out = run_flow(src, check, gate)
    t.join(5)
    warm, live = out[0], out[1:]
    assert warm.warmup and not any(c.warmup for c in live)
    exp = file_rows(START - 300 * H, START)
    assert len(exp) == 296  # the 4-hour gap is inside the warm-up window
    np.testing.assert_array_equal(as_rows([warm]), exp)
    np.testing.assert_array_equal(as_rows(live), file_rows(START, end_ms))  # gap skipped
    assert len(live) > 5  # polled along, not in one go at the end
    assert [c.last for c in out].count(True) == 1 and out[-1].last
    assert all(c.symbol == SYM and c.timeframe == "1h" and c.first_row == -1 for c in out)
    assert all(c.ts.dtype == np.int64 and c.close.dtype == np.float64 for c in out)
    assert all(ts + H <= now for ts, now in seen_now)  # closed when emitted


def test_outage_is_filled_and_logged_redacted(fx: FakeExchange, caplog) -> None:
    end_ms = START + 40 * H
    faulty = FaultPlan(seed=3, apply_to=("read",), server_error=0.5, drop_before=0.5)
    hooks = {10: lambda: fx.set_faults(faulty), 25: lambda: fx.set_faults(None)}
    gate = threading.Event()
    t = stepper(fx, end_ms + 2 * H, 0.03, hooks, gate)
    src = LiveCandleSource(cfg(fx), [SYM], "1h", warmup_candles=0, poll_s=0.02, end_ms=end_ms)
    with caplog.at_level("WARNING", logger="gridflow.dataflows.live_sources"):
        out = run_flow(src, gate=gate)
    t.join(5)
    assert out[0].warmup and len(out[0]) == 0
    np.testing.assert_array_equal(as_rows(out[1:]), file_rows(START, end_ms))
    assert out[-1].last and max(len(c) for c in out) >= 3  # the outage came back in one
    assert fx.fault_log and "live candles BTC/USDT" in caplog.text
    assert "test-secret" not in caplog.text and "test-key" not in caplog.text


def test_partition_errors_backoff_and_gap_fill(fx: FakeExchange) -> None:
    src = LiveCandleSource(cfg(fx), [SYM], "1h", warmup_candles=5, poll_s=0.5)
    part = src.build_part("in", SYM, None)
    (warm,) = part.next_batch()
    np.testing.assert_array_equal(as_rows([warm]), file_rows(START - 5 * H, START))
    assert part.next_batch() == []  # nothing closed yet
    fx.set_faults(FaultPlan(apply_to=("read",), server_error=1.0))
    fx.step(7)
    for k in (1, 2, 3):
        before = time.time()
        assert part.next_batch() == []
        wait = (part.next_awake().timestamp() - before)
        assert wait == pytest.approx(backoff_s(0.5, k), abs=0.2) and part.error_count == k
    assert part.error_counts == {"ExchangeNotAvailable": 3}
    fx.set_faults(None)
    (chunk,) = part.next_batch()
    np.testing.assert_array_equal(as_rows([chunk]), file_rows(START, START + 7 * H))
    assert not chunk.warmup and not chunk.last
    assert backoff_s(0.5, 20) == 5.0 and backoff_s(100.0, 3) == 100.0
    assert backoff_s(0.5, 20, RATE_LIMIT_BACKOFF_S) == 60.0


def test_pages_after_a_long_outage(fx: FakeExchange) -> None:
    src = LiveCandleSource(cfg(fx), [SYM], "1h", warmup_candles=0, poll_s=0.5)
    part = src.build_part("in", SYM, None)
    part.next_batch()
    part.page_limit = 100  # force several pages
    fx.step(250)  # crosses the 1-hour gap after row 26030
    (chunk,) = part.next_batch()
    np.testing.assert_array_equal(as_rows([chunk]), file_rows(START, START + 250 * H))
    assert len(chunk) == 249


def test_resume_from_snapshot_without_doubles(fx: FakeExchange) -> None:
    src = LiveCandleSource(cfg(fx), [SYM], "1h", warmup_candles=10, poll_s=0.5,
                           end_ms=START + 30 * H)
    part = src.build_part("in", SYM, None)
    got = part.next_batch()
    for n in (3, 1, 4):
        fx.step(n)
        got += part.next_batch()
    snap = part.snapshot()
    assert snap == (START + 7 * H, False)
    fx.step(5)  # closed while "down"
    part = src.build_part("in", SYM, snap)
    while True:
        fx.step(2)
        try:
            got += part.next_batch()
        except StopIteration:
            break
    assert [c.warmup for c in got].count(True) == 1  # no warm-up on resume
    np.testing.assert_array_equal(as_rows(got), file_rows(START - 10 * H, START + 30 * H))
    assert got[-1].last and part.snapshot()[1] is True
    with pytest.raises(StopIteration):
        src.build_part("in", SYM, part.snapshot()).next_batch()


def test_bytewax_recovery_neither_loses_nor_doubles(fx: FakeExchange, tmp_path) -> None:
    init_db_dir(tmp_path, 1)
    end_ms = START + 40 * H
    crash = [True]

    def build(out: list) -> Dataflow:
        flow = Dataflow("live_recovery")
        src = LiveCandleSource(cfg(fx), [SYM], "1h", 20, poll_s=0.02, end_ms=end_ms)
        s = op.input("in", flow, src)

        def boom(ch: CandleChunk) -> CandleChunk:
            if crash[0] and len(ch) and ch.ts[-1] >= START + 15 * H:
                raise RuntimeError("simulated crash")
            return ch

        op.output("out", op.map("boom", s, boom), TestingSink(out))
        return flow

    t = stepper(fx, end_ms + 2 * H, 0.02)
    first: list[CandleChunk] = []
    with pytest.raises(Exception, match="boom"):
        run_main(build(first), epoch_interval=timedelta(0),
                 recovery_config=RecoveryConfig(str(tmp_path)))
    crash[0] = False
    second: list[CandleChunk] = []
    run_main(build(second), epoch_interval=timedelta(0),
             recovery_config=RecoveryConfig(str(tmp_path)))
    t.join(5)
    got = first + second
    assert first[0].warmup and second and not any(c.warmup for c in second)  # no re-warm-up
    ts = as_rows(got)[:, 0]
    assert (np.diff(ts) > 0).all() and got[-1].last
    np.testing.assert_array_equal(as_rows(got[1:]), file_rows(int(first[0].ts[-1]) + H, end_ms))


def test_source_arguments_and_redaction() -> None:
    c = ExchangeConfig()
    from gridflow.config.live import StreamsConfig
    assert LiveCandleSource(c, [SYM], "1h", 0, 1.0, streams=StreamsConfig()).websocket
    assert not LiveCandleSource(c, [SYM], "1h", 0, 1.0,
                                streams=StreamsConfig(candles="poll")).websocket
    assert not LiveCandleSource(c.model_copy(update={"id": "nosuchvenue"}), [SYM], "1h", 0,
                                1.0, streams=StreamsConfig()).websocket
    for bad in ({"symbols": []}, {"symbols": [SYM, SYM]}, {"timeframe": "1x"},
                {"warmup_candles": -1}, {"poll_s": 0}):
        kw = {"symbols": [SYM], "timeframe": "1h", "warmup_candles": 0, "poll_s": 1.0} | bad
        with pytest.raises(ValueError):
            LiveCandleSource(c, **kw)
    assert LiveCandleSource(c, [SYM, "ETH/USDT"], "1h", 0, 1.0).list_parts() == [SYM, "ETH/USDT"]
    msg = 'GET http://x/api?symbol=BTC&signature=0a1b2c3d4e5f "apiKey": "k3y-value" sekrit99'
    out = redact(msg, ["sekrit99", None, ""])
    assert "0a1b2c3d" not in out and "k3y-value" not in out and "sekrit99" not in out
    ex = make_exchange(ExchangeConfig(api_key=SecretStr("AKEY1234"), secret=SecretStr("S3CR3T!!")))
    assert describe_error(RuntimeError("bad AKEY1234 S3CR3T!!"), ex) == "RuntimeError: bad *** ***"


# ----------------------------------------------------------- exchange state


def _place(ex, cid: str, side: str, kind: str, amount: float, price: float | None = None,
           params: dict | None = None) -> None:
    ex.create_order(MKT, kind, side, amount, price, {"clientOrderId": cid, **(params or {})})


def test_exchange_state_fills_orders_positions(fx: FakeExchange) -> None:
    ex = make_exchange(cfg(fx))
    row = ROWS[26_000].tolist()  # python floats: ccxt ignores numpy scalars in params
    fx.set_faults(FaultPlan(script=[("partial_fill", "gf-P1")]))  # half fills first

    def first() -> None:
        _place(ex, "gf-L1", "buy", "limit", 0.02, round((row[1] + row[3]) / 2, 1))
        _place(ex, "gf-M1", "sell", "market", 0.01)
        _place(ex, "gf-P1", "buy", "limit", 0.02, round(row[1] + 5.0, 1))  # fills at open
        _place(ex, "gf-L2", "buy", "limit", 0.01, round(row[3] * 0.5, 1))  # rests
        _place(ex, "manual-1", "buy", "market", 0.01)  # somebody else's

    def later() -> None:
        _place(ex, "gf-M2", "buy", "market", 0.03)
        _place(ex, "gf-S1", "sell", "market", 0.01, None,  # a stop-market: rests
               {"stopPrice": round(row[3] * 0.6, 1), "reduceOnly": True})

    end_ms = START + 25 * H
    t = stepper(fx, end_ms + H, 0.03, {0: first, 12: later})
    src = ExchangeStateSource("acc1", cfg(fx), [SYM], poll_s=0.02, end_ms=end_ms,
                              since_ms=START)
    out: list[ExchangeUpdate] = run_flow(src)
    t.join(5)
    assert t.errors == []
    assert all(isinstance(u, ExchangeUpdate) and u.account == "acc1" for u in out)
    assert all(not u.errors for u in out)
    ms = [u.server_ms for u in out]
    assert ms == sorted(ms) and ms[-1] >= end_ms
    reports = [r for u in out for r in u.reports]
    for u in out:
        assert [r.ts_ms for r in u.reports] == sorted(r.ts_ms for r in u.reports)
        assert all(r.ts_ms <= u.server_ms for r in u.reports)
    trades = fx.trades()
    assert Counter(r.report_id for r in reports) == Counter(f"trade-{t['id']}" for t in trades)
    by_id = {f"trade-{t['id']}": t for t in trades}
    for r in reports:
        tr = by_id[r.report_id]
        assert (r.client_order_id, r.side, r.price, r.amount, r.ts_ms) == (
            tr["clientOrderId"], tr["side"], tr["price"], tr["qty"], tr["time"])
        assert r.fee == pytest.approx(tr["commission"]) and r.symbol == SYM
        assert r.liquidity == ("maker" if tr["maker"] else "taker")
        assert r.realized_pnl == pytest.approx(tr["realizedPnl"])
    assert {r.client_order_id for r in reports} >= {"gf-L1", "gf-M1", "gf-P1", "gf-M2",
                                                    "manual-1"}
    p1 = [r for r in reports if r.client_order_id == "gf-P1"]
    assert p1[0].status == "partially_filled" and p1[0].amount == pytest.approx(0.01)
    p1_order = next(o for o in fx.orders() if o["clientOrderId"] == "gf-P1")
    assert (p1[-1].status == "filled") == (p1_order["status"] == "FILLED")
    assert all(r.status == "filled" for r in reports if r.client_order_id in ("gf-M1", "gf-M2"))

    last = out[-1]
    open_fx = {o["clientOrderId"]: o for o in fx.orders() if o["status"] in ("NEW",
                                                                             "PARTIALLY_FILLED")}
    assert {o["client_order_id"] for o in last.open_orders} == set(open_fx)
    s1 = next(o for o in last.open_orders if o["client_order_id"] == "gf-S1")
    assert (s1["type"], s1["side"], s1["price"], s1["reduce_only"], s1["amount"]) == (
        "stop_market", "sell", None, True, 0.01)
    assert s1["stop_price"] == pytest.approx(open_fx["gf-S1"]["stopPrice"])
    l2 = next(o for o in last.open_orders if o["client_order_id"] == "gf-L2")
    assert (l2["type"], l2["price"], l2["stop_price"], l2["filled"]) == (
        "limit", pytest.approx(open_fx["gf-L2"]["price"]), None, 0.0)
    assert l2["exchange_order_id"] == str(open_fx["gf-L2"]["orderId"])
    assert last.positions == {SYM: pytest.approx(fx.positions()[SYM])}
    assert last.balance == pytest.approx(fx.balance())


def test_exchange_state_errors_resume_and_no_doubles(fx: FakeExchange) -> None:
    ex = make_exchange(cfg(fx))
    src = ExchangeStateSource("acc1", cfg(fx), [SYM], poll_s=0.5, since_ms=START)
    part = src.build_part("state", "acc1", None)
    assert src.list_parts() == ["acc1"]
    reports: list = []

    def cycle() -> ExchangeUpdate | None:
        batch = part.next_batch()
        if batch:
            reports.extend(batch[0].reports)
        return batch[0] if batch else None

    _place(ex, "gf-A", "buy", "market", 0.01)
    _place(ex, "gf-B", "sell", "market", 0.01)
    fx.step()
    fx.set_faults(FaultPlan(script=[("server_error", "/fapi/v1/time")]))
    assert cycle() is None  # no time, no update
    fx.set_faults(FaultPlan(script=[("server_error", "/userTrades"),
                                    ("drop_before", "/positionRisk")]))
    u = cycle()
    assert u.reports == [] and u.positions is None and u.open_orders == []
    assert len(u.errors) == 2 and u.errors[0].startswith("trades BTC/USDT: ExchangeNotAvailable")
    assert u.errors[1].startswith("positions: NetworkError")
    assert not any(re.search(r"signature=[0-9a-f]{6}", e) for e in u.errors)
    assert [r.client_order_id for r in cycle().reports] == ["gf-A", "gf-B"]
    assert cycle().reports == []  # the overlap refetches them: not reported again

    snap = part.snapshot()
    _place(ex, "gf-C", "buy", "market", 0.02)
    fx.step()
    part = src.build_part("state", "acc1", snap)  # "recovered"
    assert [r.client_order_id for r in cycle().reports] == ["gf-C"]
    part = src.build_part("state", "acc1", part.snapshot())
    assert cycle().reports == []
    assert sorted(r.report_id for r in reports) == sorted(f"trade-{t['id']}" for t in fx.trades())

    end = ExchangeStateSource("acc1", cfg(fx), [SYM], poll_s=0.5, end_ms=fx.now_ms() - H)
    p = end.build_part("state", "acc1", None)
    assert len(p.next_batch()) == 1 and p.snapshot().done
    with pytest.raises(StopIteration):
        p.next_batch()
