"""The websocket sources of the live flow (``live.streams = "websocket"``) against the
local exchange's real websockets and REST: candles from ``watch_ohlcv``, fills and marks
from the user and mark-price streams, REST only for the warm-up, the catch-up after a
reconnect or a stale stream, and the periodic reconciliation.

Each test drives partitions directly (no Bytewax process): ``pump`` calls
``next_batch`` until a condition holds, bounded in wall time."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone

import ccxt
import numpy as np
import pytest
from live_harness import KEY, MARKETS, SECRET, H, candles, start_exchange
from pydantic import SecretStr

from gridflow.config.live import ExchangeConfig, StreamsConfig
from gridflow.dataflows.account_source import ExchangeStateSource
from gridflow.dataflows.candle_source import LiveCandleSource
from gridflow.fakex import FaultPlan

START = int(datetime(2024, 3, 4, tzinfo=timezone.utc).timestamp() * 1000)
BTC, ETH = "BTC/USDT", "ETH/USDT"


def cfg(fx, timeout_ms: int = 2000) -> ExchangeConfig:
    return ExchangeConfig(urls=fx.ccxt_urls(), ws_urls=fx.ccxt_ws_urls(), rate_limit_ms=0,
                          api_key=SecretStr(KEY), secret=SecretStr(SECRET),
                          timeout_ms=timeout_ms)


def pump(part, until, timeout: float = 10.0, what: str = "") -> list:
    """``part.next_batch()`` (at its own awake times) until ``until(items so far)``."""
    got: list = []
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        awake = part.next_awake()
        if awake is not None:
            wait = (awake - datetime.now(timezone.utc)).total_seconds()
            if wait > 0:
                time.sleep(min(wait, 0.05))
                continue
        got += part.next_batch()
        if until(got):
            return got
    what = what() if callable(what) else what
    raise AssertionError(f"not within {timeout} s: {what}; got {len(got)} items")


def requests(fx, path: str, since: int = 0) -> int:
    return sum(1 for r in fx.request_log[since:] if r["path"] == path)


@pytest.fixture
def fx():
    ex = start_exchange(START)
    yield ex
    ex.stop()


def subscribed(fx, part) -> bool:
    """The partition's kline stream is up and the exchange lists its subscription (a
    kline published before the server registered it would not reach the client)."""
    return part.feed.status == "up" and any("@kline" in s for s in fx.ws_streams())


def candle_part(fx, streams: StreamsConfig | None = None, warmup: int = 3):
    """A streaming candle partition of BTC. By default ``stale_s`` is 60 s: the manual
    clock publishes klines only when a test steps it, and a loaded machine must not
    make the stream stale between two steps."""
    src = LiveCandleSource(cfg(fx), [BTC], "1h", warmup, 0.05,
                           streams=streams or StreamsConfig(stale_s=60.0))
    assert src.websocket
    return src.build_part("candles", BTC, None)


def rows_of(chunks) -> np.ndarray:
    return np.concatenate([np.column_stack([c.ts, c.open, c.high, c.low, c.close, c.volume])
                           for c in chunks if len(c.ts)])


@pytest.mark.parametrize("hub", ["process", "thread"])
def test_closed_candles_stream_in_once_each_and_equal_rest(fx, hub):
    part = candle_part(fx, StreamsConfig(stale_s=60.0, hub=hub))
    assert type(part.hub).__name__ == {"process": "StreamProcess", "thread": "StreamHub"}[hub]
    try:
        (warm,) = pump(part, lambda g: g, what="warm-up")
        assert warm.warmup and list(warm.ts) == [START - 3 * H, START - 2 * H, START - H]
        pump(part, lambda g: subscribed(fx, part), what="subscribed")
        klines = requests(fx, "/fapi/v1/klines")
        catchups = part.rest_catchups  # REST polls while the stream was connecting
        got = []
        for k in range(6):
            fx.step()
            got += pump(part, lambda g: g, what=f"candle {k}")
        assert requests(fx, "/fapi/v1/klines") == klines  # no REST once streaming
        ref = candles(BTC)
        want = ref[(ref[:, 0] >= START) & (ref[:, 0] < START + 6 * H)]
        np.testing.assert_allclose(rows_of(got), want, rtol=1e-9)
        assert [len(c.ts) for c in got] == [1] * 6 and part.rest_catchups == catchups
    finally:
        part.close()


def test_a_dropped_stream_is_caught_up_by_rest_without_a_hole_or_a_double(fx):
    part = candle_part(fx)
    try:
        pump(part, lambda g: g and subscribed(fx, part), what="warm-up and subscribed")
        fx.step()
        got = pump(part, lambda g: g, what="first streamed candle")
        fx.ws_drop("market")
        fx.step(3)  # three candles close while the stream is down or just back
        got += pump(part, lambda g: sum(len(c.ts) for c in g) >= 3, what="catch-up")
        pump(part, lambda g: part._trusted, what="trusted again")
        rest_before = part.rest_catchups
        fx.step()
        got += pump(part, lambda g: g, what="after the catch-up")
        ts = list(rows_of(got)[:, 0].astype(np.int64))
        assert ts == [START + k * H for k in range(5)]  # each candle once, in order
        assert rest_before >= 1 and part.feed.generation >= 1
        assert part.rest_catchups == rest_before  # streamed again
    finally:
        part.close()


def test_a_silent_stream_is_polled_by_rest_then_trusted_again(fx):
    part = candle_part(fx, StreamsConfig(stale_s=0.3))
    try:
        pump(part, lambda g: g and part.feed.status == "up", what="warm-up and subscribed")
        fx.ws_silence("market", True)
        fx.step(2)
        got = pump(part, lambda g: sum(len(c.ts) for c in g) >= 2, what="REST while silent")
        assert part.rest_catchups >= 1
        fx.ws_silence("market", False)
        fx.step()
        got += pump(part, lambda g: g, what="stream again")
        assert list(rows_of(got)[:, 0].astype(np.int64)) == [START, START + H, START + 2 * H]
    finally:
        part.close()


# ---------------------------------------------------------------- account state


def rest(fx) -> ccxt.binanceusdm:
    from gridflow.exchange.client import make_exchange

    ex = make_exchange(cfg(fx))
    ex.load_markets()
    return ex


def below(fx, rest_ex, cid: str, symbol: str = BTC, frac: float = 0.0, amount: float = 0.01):
    """A limit buy ``frac`` under the price (0: at the price, marketable)."""
    px = fx.price(symbol) * (1 - frac)
    rest_ex.create_order(f"{symbol}:USDT", "limit", "buy", amount,
                         float(rest_ex.price_to_precision(f"{symbol}:USDT", px)),
                         {"clientOrderId": cid})


def state_part(fx, streams: StreamsConfig | None = None, timeframe: str | None = None,
               timeout_ms: int = 2000):
    src = ExchangeStateSource("acct", cfg(fx, timeout_ms), [BTC, ETH], 0.05,
                              streams=streams or StreamsConfig(reconcile_s=30.0),
                              timeframe=timeframe)
    assert src.websocket
    return src.build_part("state", "acct", None)


def _state(part) -> str:
    """The partition's trust state, for a failure message."""
    return (f"proof={part._proof} trusted={part._trusted} gen={part._gen} feeds="
            f"{[(f.key, f.status, f.generation, f.last_error) for f in (part.trades_feed, part.orders_feed)]}")


def reports(updates) -> list[str]:
    return [r.report_id for u in updates for r in u.reports]


def changes(updates) -> list[tuple[str, str]]:
    return [(c["status"], c["reason"]) for u in updates for c in u.streams]


@pytest.mark.parametrize("hub", ["process", "thread"])
def test_fills_stream_in_once_each_with_their_client_ids_and_rest_reconciles(fx, hub):
    part, ex = state_part(fx, StreamsConfig(reconcile_s=30.0, hub=hub)), rest(fx)
    try:
        ups = pump(part, lambda g: ("restored", "CAUGHT_UP") in changes(g), what="trusted")
        assert ups[0].positions is not None  # the start is a whole REST cycle
        trades_rest = requests(fx, "/fapi/v1/userTrades")
        below(fx, ex, "gf-ws-1")  # marketable: fills at once
        ups = pump(part, lambda g: reports(g), what="streamed fill")
        (rep,) = [r for u in ups for r in u.reports]
        t = fx.trades()[-1]
        assert (rep.report_id, rep.client_order_id, rep.amount) == (
            f"trade-{t['id']}", "gf-ws-1", 0.01)
        assert requests(fx, "/fapi/v1/userTrades") == trades_rest  # no REST for it
        assert ups[-1].server_ms >= int(t["time"])  # the watermark passed the fill
        # the next reconciliation finds the same trade by REST and reports nothing new
        part._next_rest = 0.0
        ups = pump(part, lambda g: any(u.positions is not None for u in g), what="reconcile")
        assert reports(ups) == [] and ups[-1].positions[BTC]["amount"] == pytest.approx(0.01)
    finally:
        part.close()


def test_duplicated_and_reordered_messages_report_each_fill_once(fx):
    fx.set_faults(FaultPlan(seed=3, ws_duplicate=0.5, ws_reorder=0.5))
    part, ex = state_part(fx), rest(fx)
    try:
        pump(part, lambda g: ("restored", "CAUGHT_UP") in changes(g), what="trusted")
        got = []
        for k in range(6):
            below(fx, ex, f"gf-dup-{k}", frac=0.002 * (k % 3))
        fx.step()
        n = len(fx.trades())
        got = pump(part, lambda g: len(reports(g)) >= n, what="every fill")
        part._next_rest = 0.0
        got += pump(part, lambda g: any(u.positions is not None for u in g),
                    what="reconcile")
        assert Counter(reports(got)) == Counter(f"trade-{t['id']}" for t in fx.trades())
        assert max(Counter(reports(got)).values()) == 1
        assert [k for k in fx.fault_log if k["kind"].startswith("ws_")]
    finally:
        part.close()


def test_a_silent_user_stream_is_stale_caught_up_by_rest_and_trusted_again(fx):
    part, ex = state_part(fx, StreamsConfig(reconcile_s=0.5, fill_lag_s=0.0)), rest(fx)
    try:
        pump(part, lambda g: ("restored", "CAUGHT_UP") in changes(g), what="trusted")
        fx.ws_silence("user", True)
        below(fx, ex, "gf-silent-1")
        fx.advance_ms(60_000)
        got = pump(part, lambda g: ("stale", "MISSED_FILLS") in changes(g), timeout=5,
                   what="stale within the reconcile period")
        assert reports(got) == [f"trade-{fx.trades()[-1]['id']}"]  # by REST, once
        fx.ws_silence("user", False)
        # the stale stream was reset: it reconnects, yet is trusted only once it delivers
        feeds = (part.trades_feed, part.orders_feed)
        got += pump(part, lambda g: all(f.generation >= 1 and f.status == "up" for f in feeds),
                    timeout=20, what="reconnected")
        assert ("restored", "CAUGHT_UP") not in changes(got)
        below(fx, ex, "gf-silent-2")
        got += pump(part, lambda g: ("restored", "CAUGHT_UP") in changes(g), timeout=20,
                    what=lambda: f"trusted again once the stream delivers; {_state(part)}")
        assert Counter(reports(got)) == Counter(f"trade-{t['id']}" for t in fx.trades())
    finally:
        part.close()


@pytest.mark.parametrize("fault", ["drop", "expire"])
def test_a_lost_user_stream_reconnects_and_rest_catches_up(fx, fault):
    part, ex = state_part(fx), rest(fx)
    try:
        pump(part, lambda g: ("restored", "CAUGHT_UP") in changes(g), what="trusted")
        if fault == "drop":
            fx.ws_drop("user")
        else:
            fx.expire_listen_key()
        below(fx, ex, f"gf-{fault}-1")  # fills while the stream is down
        got = pump(part, lambda g: ("stale", "DISCONNECTED") in changes(g), what="down")
        got += pump(part, lambda g: ("restored", "CAUGHT_UP") in changes(g), timeout=15,
                    what="reconnected and caught up")
        below(fx, ex, f"gf-{fault}-2")
        got += pump(part, lambda g: reports(g), what="the stream delivers again")
        assert Counter(reports(got)) == Counter(f"trade-{t['id']}" for t in fx.trades())
    finally:
        part.close()


def test_every_symbols_mark_comes_through_when_published_at_once():
    """The exchange publishes five symbols' marks in one instant; ccxt resolves the
    watch with the first message's symbol only (the others reach its ticker cache), so
    the partition reads that cache: after each step every mark is the exchange's new
    price, from the stream (no REST). Reading only what the watch returned, 2 of 5
    marks came through at the first step."""
    syms = tuple(MARKETS)
    ex = start_exchange(START, symbols=syms)
    src = ExchangeStateSource("acct", cfg(ex), list(syms), 0.05,
                              streams=StreamsConfig(reconcile_s=30.0, stale_s=30.0))
    part = src.build_part("state", "acct", None)
    try:
        pump(part, lambda g: ("restored", "CAUGHT_UP") in changes(g), what="trusted")
        premium = requests(ex, "/fapi/v1/premiumIndex")
        for k in range(4):
            ex.substep(1, 12)
            want = {s: ex.price(s) for s in syms}
            seen: dict[str, float] = {}

            def every(g, want=want, seen=seen) -> bool:
                for u in g:
                    seen.update(u.marks or {})
                return all(abs(seen.get(s, 0.0) - px) <= 1e-9 * px for s, px in want.items())

            pump(part, every, timeout=5.0,
                 what=lambda: f"step {k}: marks {seen}, exchange {want}")
        assert requests(ex, "/fapi/v1/premiumIndex") == premium
    finally:
        part.close()
        ex.stop()


def test_silent_mark_and_kline_streams_are_stale_and_rest_fills_in(fx):
    """The market connection goes silent: the mark stream and the kline stream of the
    candle partition (same process, same hub) are journaled stale, REST marks fill in;
    both are restored when the stream speaks again. ETH has no candle partition here:
    its kline stream is not judged."""
    streams = StreamsConfig(reconcile_s=30.0, stale_s=0.5)
    part = state_part(fx, streams, timeframe="1h")
    candles_part = candle_part(fx, streams)
    seen: list[tuple[str, str, str]] = []

    def note(g) -> list[tuple[str, str, str]]:
        new = [(c["stream"], c["status"], c["reason"]) for u in g for c in u.streams]
        seen.extend(new)
        return seen

    try:
        pump(candles_part, lambda g: g and subscribed(fx, candles_part), what="candles up")
        pump(part, lambda g: ("account", "restored", "CAUGHT_UP") in note(g), what="trusted")
        fx.step()  # a streamed mark and kline
        pump(part, lambda g: any(u.marks for u in g), what="streamed mark")
        fx.ws_silence("market", True)
        premium = requests(fx, "/fapi/v1/premiumIndex")
        pump(part, lambda g: {("marks", "stale", "SILENT"), (f"candles {BTC}", "stale", "SILENT")}
             <= set(note(g)), what=lambda: f"streams stale: {seen}")
        pump(part, lambda g: any(u.marks for u in g), what="REST marks")
        assert requests(fx, "/fapi/v1/premiumIndex") > premium
        fx.ws_silence("market", False)
        seen.clear()
        fx.step()
        pump(part, lambda g: {("marks", "restored", "CAUGHT_UP"),
                              (f"candles {BTC}", "restored", "CAUGHT_UP")} <= set(note(g)),
             what=lambda: f"streams back: {seen}")
        assert not [s for s in seen if s[0] == f"candles {ETH}"]
    finally:
        candles_part.close()
        part.close()


def test_a_held_reconciliation_does_not_hold_up_a_streamed_fill(fx):
    """The REST cycle's requests run on a thread of their own: while the exchange holds
    its ``positionRisk`` answer, a fill on the user stream is reported at once (and is
    in the resume state at once); the cycle, whose trade query may have found the same
    fill, reports it no second time, and its positions and open orders, which may
    predate that fill, are left out until the next reconciliation."""
    part, ex = state_part(fx, timeout_ms=20_000), rest(fx)
    try:
        pump(part, lambda g: ("restored", "CAUGHT_UP") in changes(g), what="trusted")
        fx.set_faults(FaultPlan(script=[("timeout_after", "positionRisk")], hang_s=6.0))
        part._next_rest = 0.0
        pump(part, lambda g: part._rest is not None, what="reconciliation started")
        below(fx, ex, "gf-ws-held")
        ups = pump(part, lambda g: reports(g), what="streamed fill")
        assert part._rest is not None and not part._rest.done()  # the cycle still runs
        assert all(u.positions is None for u in ups)
        (tid,) = [r.report_id.removeprefix("trade-") for u in ups for r in u.reports]
        assert tid in part.snapshot().recent[BTC]
        ups = pump(part, lambda g: part._rest is None, what="reconciled", timeout=15.0)
        assert reports(ups) == [] and ups[-1].open_orders is None and ups[-1].positions is None
        assert part._next_rest > time.monotonic() + 20  # the next at the usual period
        part._next_rest = 0.0
        ups = pump(part, lambda g: any(u.positions is not None for u in g), what="again")
        assert ups[-1].positions[BTC]["amount"] == pytest.approx(0.01)
        assert any(f["kind"] == "timeout_after" for f in fx.fault_log)
    finally:
        part.close()
