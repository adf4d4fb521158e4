"""Account engine on hand-built candle paths: exact orders, fills, risk gate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.chunks import CandleChunk, IndicatorChunk, JournalBatch
from gridflow.config.models import AccountConfig, FeesConfig, GridAtrParams, MarketSpec, RiskConfig
from gridflow.operators.engine import AccountEngine

H = 3_600_000
NOFEES = FeesConfig(maker_fee=0.0, taker_fee=0.0, slippage=0.0)


def chunk(symbol, rows, sma, atr, start=0, last=False):
    """rows: list of (open, high, low, close); sma/atr: scalars or lists."""
    n = len(rows)
    a = np.array(rows, dtype=float).reshape(n, 4)
    ts = (np.arange(n, dtype=np.int64) + start) * H
    sma = np.broadcast_to(np.asarray(sma, float), (n,)).copy()
    atr = np.broadcast_to(np.asarray(atr, float), (n,)).copy()
    c = CandleChunk(symbol, "1h", ts, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.ones(n), 0, last)
    return IndicatorChunk(c, {"sma_2": sma, "atr_1": atr})


def engine(symbols=("BTC/USDT",), fees=NOFEES, markets=None, **kw):
    strat = kw.pop("strategy", {})
    risk = kw.pop("risk", {})
    acct = AccountConfig(
        name="t",
        capital_quote=kw.pop("capital", 3000.0),
        leverage=kw.pop("leverage", 1.0),
        symbols=tuple(symbols),
        strategy=GridAtrParams(sma_period=2, atr_period=1, levels=strat.pop("levels", 3),
                               atr_start=strat.pop("atr_start", 1.0),
                               atr_step=strat.pop("atr_step", 1.0),
                               sl_pct=strat.pop("sl_pct", 0.5), **strat),
        risk=RiskConfig(**risk),
    )
    return AccountEngine(acct, list(symbols), {s: "1h" for s in symbols}, fees, markets or {})


def run(eng, *chunks):
    out = JournalBatch()
    for c in chunks:
        out.extend(eng.on_chunk(c))
    out.extend(eng.flush())
    return out


def test_long_grid_entry_then_take_profit_exact():
    eng = engine()
    # candle 0 sets quotes: levels 90, 80, 70; TP 100.
    # candle 1 (red: open->high->low->close) dips to 85: level 0 fills at 90.
    # candle 2 (green: open->low->high->close) rallies to 105: TP at 100.
    out = run(eng, chunk("BTC/USDT", [(100, 101, 99, 100), (100, 101, 85, 95), (95, 105, 94, 104)],
                         100.0, 10.0, last=True))
    assert [(o.tag, o.side, o.type, o.price) for o in out.orders] == [
        ("L0", "buy", "limit", 90.0),
        ("TP", "sell", "limit", 100.0),
    ]
    amount = 1000.0 / 90.0  # capital 3000 / 1 symbol / 3 levels, leverage 1
    assert out.fills[0].amount == pytest.approx(amount)
    assert [f.ts_ms for f in out.fills] == [1 * H, 2 * H]
    (trade,) = out.trades
    assert trade.exit_reason == "TP" and trade.entries == 1
    assert trade.pnl == pytest.approx(amount * 10.0)
    assert eng.equity() == pytest.approx(3000.0 + amount * 10.0)


def test_gap_open_below_level_fills_at_open_and_fees_are_charged():
    fees = FeesConfig(maker_fee=0.001, taker_fee=0.002, slippage=0.0)
    eng = engine(fees=fees)
    out = run(eng, chunk("BTC/USDT", [(100, 100, 100, 100), (88, 89, 87, 88)], 100.0, 10.0, last=True))
    (fill,) = out.fills
    assert fill.price == 88.0  # buy limit at 90 with the market opening at 88
    # marketable when placed at the previous close (86 < 90? no: the market gapped to 88
    # below the level), so it fills at the open as a taker
    assert fill.fee == pytest.approx(fill.amount * 88.0 * 0.002)
    assert fill.liquidity == "taker"


def test_stop_loss_closes_grid_with_taker_fee_and_slippage():
    fees = FeesConfig(maker_fee=0.0, taker_fee=0.001, slippage=0.002)
    eng = engine(fees=fees, strategy={"sl_pct": 0.05, "levels": 2})
    # levels 90, 80; candle 1 falls from 100 to 84: L0 at 90, then stop at 85.5 before L1 (80)
    out = run(eng, chunk("BTC/USDT", [(100, 100, 100, 100), (100, 100, 84, 84)], 100.0, 10.0, last=True))
    assert [o.tag for o in out.orders] == ["L0", "SL"]
    sl = out.fills[1]
    assert sl.price == pytest.approx(85.5 * (1 - 0.002))
    assert sl.liquidity == "taker"
    assert sl.fee == pytest.approx(sl.amount * sl.price * 0.001)
    assert out.orders[1].type == "stop_market" and out.orders[1].reduce_only
    (trade,) = out.trades
    assert trade.exit_reason == "SL" and trade.pnl < 0


def test_short_grid_mirrors_long():
    eng = engine(strategy={"side": "short"})
    out = run(eng, chunk("BTC/USDT", [(100, 100, 100, 100), (100, 115, 99, 105), (105, 106, 95, 96)],
                         100.0, 10.0, last=True))
    assert [(o.tag, o.side, o.price) for o in out.orders] == [("L0", "sell", 110.0), ("TP", "buy", 100.0)]
    (trade,) = out.trades
    assert trade.position_side == "short"
    assert trade.pnl == pytest.approx(1000.0 / 110.0 * 10.0)


def test_max_margin_ratio_denies_level_and_journals_numbers():
    eng = engine(strategy={"levels": 5}, risk={"max_margin_ratio": 0.3}, capital=5000.0)
    # each level uses 1000 of margin = 0.2 of equity: L0 passes, L1 would make 0.4
    out = run(eng, chunk("BTC/USDT", [(100, 100, 100, 100), (100, 100, 65, 66)], 100.0, 10.0, last=True))
    assert [o.tag for o in out.orders] == ["L0"]
    denied = [e for e in out.events if e.kind == "order_denied"]
    assert [e.detail["level"] for e in denied] == [1, 2]
    assert {e.reason for e in denied} == {"MAX_MARGIN_RATIO"}
    assert denied[0].detail["margin_ratio_after"] > 0.3
    assert denied[0].detail["max_margin_ratio"] == 0.3


def test_min_notional_denies():
    eng = engine(markets={"BTC/USDT": MarketSpec(min_notional=2000.0)})
    out = run(eng, chunk("BTC/USDT", [(100, 100, 100, 100), (100, 100, 85, 86)], 100.0, 10.0, last=True))
    assert not out.fills
    assert out.events[0].reason == "MIN_NOTIONAL"


def test_amount_rounded_down_to_step():
    eng = engine(markets={"BTC/USDT": MarketSpec(amount_step=0.1)})
    out = run(eng, chunk("BTC/USDT", [(100, 100, 100, 100), (100, 100, 85, 86)], 100.0, 10.0, last=True))
    assert out.fills[0].amount == pytest.approx(11.1)


def test_kill_switch_blocks_every_level_through_a_crash_and_exits_go_on():
    # 5 levels 1 ATR apart, 5x leverage: a crash through all of them loses > 10 %.
    eng = engine(strategy={"levels": 5, "sl_pct": 0.9}, leverage=5.0, capital=10_000.0,
                 risk={"session_loss_grid": 0.10, "max_margin_ratio": 1.0,
                       "daily_loss_limit": 0.5, "rolling_drawdown_pct": 0.9,
                       "max_drawdown_pct": 0.9})
    rows = [(100, 100, 100, 100), (100, 100, 55, 56), (56, 57, 40, 41), (41, 42, 30, 31),
            (31, 100, 31, 99)]
    out = run(eng, chunk("BTC/USDT", rows, 100.0, 8.0, last=True))
    trips = [e for e in out.events if e.kind == "kill_switch_tripped"]
    assert trips[0].reason == "SESSION_LOSS_GRID"  # first; deeper losses trip more
    assert len({t.reason for t in trips}) == len(trips)
    assert trips[0].detail["value"] <= -0.10 and trips[0].detail["threshold"] == -0.10
    trip_seq = trips[0].seq
    entries_after = [o for o in out.orders if o.tag.startswith("L") and o.seq > trip_seq]
    assert entries_after == []
    denied = [e for e in out.events if e.kind == "order_denied"]
    assert denied and all(e.reason == "KILL_SWITCH" for e in denied)
    filled_levels = {int(o.tag[1:]) for o in out.orders if o.tag.startswith("L")}
    denied_levels = {e.detail["level"] for e in denied}
    # every level that was not filled before the trip was refused: not only the first
    assert filled_levels | denied_levels == {0, 1, 2, 3, 4}
    assert len(denied_levels) >= 2
    assert eng.summary().counters["denied_KILL_SWITCH"] >= len(denied_levels)
    # the take profit (a closing order) still went out while the switch was on
    assert out.orders[-1].tag == "TP" and out.orders[-1].seq > trip_seq
    assert "SESSION_LOSS_GRID" in eng.kill_switch.split(",")


def _two_symbol_rows(n, seed):
    rng = np.random.default_rng(seed)
    out = {}
    for sym in ("BTC/USDT", "ETH/USDT"):
        c = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
        o = np.r_[100.0, c[:-1]]
        h = np.maximum(o, c) * (1 + rng.uniform(0, 0.03, n))
        lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.03, n))
        out[sym] = (np.c_[o, h, lo, c], c * 1.0, np.full(n, 4.0))
    return out


def _journal(batch):
    return ([o.model_dump() for o in batch.orders], [f.model_dump() for f in batch.fills],
            [t.model_dump() for t in batch.trades], [e.model_dump() for e in batch.equity])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 59), max_size=6), st.lists(st.integers(1, 59), max_size=6),
       st.booleans())
def test_results_do_not_depend_on_chunking_or_arrival_order(cuts_a, cuts_b, eth_first):
    n = 60
    data = _two_symbol_rows(n, 7)
    ref = engine(symbols=("BTC/USDT", "ETH/USDT"), strategy={"levels": 3})
    whole = run(ref, *[chunk(s, d[0].tolist(), d[1], d[2], last=True) for s, d in data.items()])

    def pieces(sym, cuts):
        rows, sma, atr = data[sym]
        bounds = [0, *sorted(set(cuts)), n]
        return [chunk(sym, rows[a:b].tolist(), sma[a:b], atr[a:b], start=a, last=(b == n))
                for a, b in zip(bounds, bounds[1:]) if b > a]

    pa, pb = pieces("BTC/USDT", cuts_a), pieces("ETH/USDT", cuts_b)
    seq = []
    while pa or pb:  # interleave
        first, second = (pb, pa) if eth_first else (pa, pb)
        if first:
            seq.append(first.pop(0))
        if second:
            seq.append(second.pop(0))
    eng = engine(symbols=("BTC/USDT", "ETH/USDT"), strategy={"levels": 3})
    split = run(eng, *seq)
    assert _journal(split) == _journal(whole)
    assert len(whole.fills) > 0
