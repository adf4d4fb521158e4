"""Risk invariants under random price paths and random limits (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.chunks import CandleChunk, IndicatorChunk, JournalBatch
from gridflow.config.models import AccountConfig, FeesConfig, GridAtrParams, RiskConfig
from gridflow.events import OrderRequest
from gridflow.operators import risk
from gridflow.operators.engine import AccountEngine
from gridflow.operators.indicators import IndicatorBank

H = 3_600_000
SYMS = ("BTC/USDT", "ETH/USDT")


@st.composite
def scenario(draw):
    n = draw(st.integers(30, 160))
    seed = draw(st.integers(0, 2**31 - 1))
    vol = draw(st.floats(0.005, 0.08))
    drift = draw(st.floats(-0.03, 0.01))
    rng = np.random.default_rng(seed)
    paths = {}
    for sym in SYMS:
        c = 100.0 * np.exp(np.cumsum(rng.normal(drift, vol, n)))
        o = np.r_[100.0, c[:-1]]
        h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, vol, n)))
        lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, vol, n)))
        paths[sym] = (o, h, lo, c)
    acct = AccountConfig(
        name="p",
        capital_quote=draw(st.floats(1_000, 100_000)),
        leverage=draw(st.floats(1.0, 10.0)),
        symbols=SYMS,
        strategy=GridAtrParams(
            sma_period=draw(st.integers(2, 20)), atr_period=draw(st.integers(1, 14)),
            levels=draw(st.integers(1, 8)), atr_start=draw(st.floats(0.0, 3.0)),
            atr_step=draw(st.floats(0.0, 2.0)), sl_pct=draw(st.floats(0.01, 0.5)),
        ),
        risk=RiskConfig(max_margin_ratio=draw(st.floats(0.05, 1.0)),
                        session_loss_grid=draw(st.floats(0.01, 0.5)),
                        session_loss_single=draw(st.floats(0.01, 0.5)),
                        daily_loss_limit=draw(st.floats(0.01, 0.5)),
                        rolling_drawdown_pct=draw(st.floats(0.05, 0.9)),
                        rolling_window_hours=draw(st.integers(1, 48)),
                        max_drawdown_pct=draw(st.floats(0.05, 0.9))),
    )
    fees = FeesConfig(maker_fee=draw(st.floats(0.0, 0.001)), taker_fee=draw(st.floats(0.0, 0.002)),
                      slippage=draw(st.floats(0.0, 0.005)))
    return paths, acct, fees


def replay(paths, acct, fees):
    eng = AccountEngine(acct, SYMS, {s: "1h" for s in SYMS}, fees, {})
    p = acct.strategy
    out = JournalBatch()
    for sym, (o, h, lo, c) in paths.items():
        bank = IndicatorBank([f"sma_{p.sma_period}", f"atr_{p.atr_period}"])
        ts = np.arange(len(c), dtype=np.int64) * H
        vals = bank.update(ts, o, h, lo, c)
        chunk = CandleChunk(sym, "1h", ts, o, h, lo, c, np.ones(len(c)), 0, True)
        out.extend(eng.on_chunk(IndicatorChunk(chunk, vals)))
    out.extend(eng.flush())
    return eng, out


@settings(max_examples=60, deadline=None)
@given(scenario())
def test_risk_invariants_hold_on_random_paths(sc):
    paths, acct, fees = sc
    eng, out = replay(paths, acct, fees)
    trips = [e for e in out.events if e.kind == "kill_switch_tripped"]
    # 1. nothing opens while any kill switch is on (any level); only DAILY_LOSS clears
    #    itself (at 00:00 UTC), the others need an explicit reset
    on: set[str] = set()
    switches = sorted(trips + [e for e in out.events if e.kind == "kill_switch_reset"],
                      key=lambda e: e.seq)
    timeline = sorted([(e.seq, "ks", e) for e in switches]
                      + [(o.seq, "order", o) for o in out.orders], key=lambda t: t[0])
    for _, what, ev in timeline:
        if what == "ks":
            if ev.kind == "kill_switch_tripped":
                assert ev.reason not in on  # a repeated transition is a no-op
                assert ev.detail["value"] <= ev.detail["threshold"] + 1e-12
                on.add(ev.reason)
            else:
                assert ev.reason == "DAILY_LOSS" and ev.detail["by"] == "DAY_ROLLOVER"
                assert ev.ts_ms % 86_400_000 == 0
                on.discard(ev.reason)
        elif ev.tag.startswith("L"):
            assert not on, (ev, on)
    # 2. every entry respected the margin cap with equity marked at that moment:
    #    its symbol at the fill price, others at their last close (sorted-symbol order)
    lev = acct.leverage
    cash = acct.capital_quote
    pos = {s: [0.0, 0.0] for s in SYMS}  # amount, avg entry

    def mark(sym, ts, fill_sym):
        i = ts // H
        if SYMS.index(sym) < SYMS.index(fill_sym):
            return paths[sym][3][i]
        return paths[sym][3][i - 1]

    for f, o in zip(out.fills, out.orders):
        assert f.client_order_id == o.client_order_id
        assert math.isfinite(f.price) and f.price > 0 and f.amount > 0
        if o.tag.startswith("L"):
            unreal = sum(a * ((f.price if sym == f.symbol else mark(sym, f.ts_ms, f.symbol)) - avg)
                         for sym, (a, avg) in pos.items() if a > 0)
            equity = cash + unreal
            used = sum(a * avg for a, avg in pos.values()) / lev
            assert (used + f.amount * f.price / lev) / equity <= acct.risk.max_margin_ratio + 1e-9
            a, avg = pos[f.symbol]
            pos[f.symbol] = [a + f.amount, (a * avg + f.amount * f.price) / (a + f.amount)]
            cash -= f.fee
        else:
            cash += f.realized_pnl - f.fee
            pos[f.symbol] = [0.0, 0.0]
    # 3. closing orders are reduce-only and never denied
    assert all(o.reduce_only for o in out.orders if o.tag in ("TP", "SL"))
    denied = [e for e in out.events if e.kind == "order_denied"]
    assert all(e.detail["level"] >= 0 for e in denied)
    for e in denied:
        if e.reason == "MAX_MARGIN_RATIO":
            assert e.detail["margin_ratio_after"] > acct.risk.max_margin_ratio
    # 4. accounting: equity = initial + realized - fees + unrealized; cash identity
    s = eng.summary()
    assert math.isfinite(s.equity)
    assert s.cash == np.float64(s.cash)
    assert abs(s.cash - (acct.capital_quote + s.realized_pnl - s.fees_paid)) < 1e-6 * acct.capital_quote
    # 5. trades: net pnl = price pnl - fees, round trips close what they opened
    for t in out.trades:
        assert t.entries >= 1 and t.amount > 0


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 1e6), st.floats(0.0, 1e6), st.floats(0.0, 1e5), st.floats(0.01, 1.0),
       st.floats(1.0, 20.0))
def test_margin_rule_denies_exactly_above_the_cap(equity, used, order_notional, cap, lev):
    r = risk.rule_margin_ratio(equity, used, order_notional / lev, cap)
    ratio = (used + order_notional / lev) / equity
    if ratio > cap + 1e-12:
        assert r == risk.DENY_MAX_MARGIN_RATIO
    else:
        assert r == risk.OK


@given(st.sampled_from([0.0, -1.0, float("nan"), float("-inf")]), st.floats(0.0, 1e6))
def test_margin_rule_fails_closed_without_equity(equity, used):
    assert risk.rule_margin_ratio(equity, used, 1.0, 0.7) == risk.DENY_NO_EQUITY


def _gate(kill_mask: int, price: float, amount: float) -> int:
    """The one entry gate (:func:`~gridflow.operators.entry_gate.gate_level`) of a fresh
    one-symbol account, with ``kill_mask`` switched on."""
    from gridflow.operators import kernel_layout as kl
    from gridflow.operators.entry_gate import gate_level

    acct = AccountConfig(name="p", capital_quote=1e9, symbols=("BTC/USDT",),
                         strategy=GridAtrParams())
    eng = AccountEngine(acct, ["BTC/USDT"], {"BTC/USDT": "1h"}, FeesConfig(), {})
    st_ = eng.state
    st_.ai[kl.AI_KILL] = kill_mask
    return int(gate_level(0, 0, price, amount, 1e9, 0.0, 0.0, 0, 0.0, st_.sf, st_.si, st_.ai,
                          eng.pf, eng.mp)[0])


@given(st.integers(1, 5), st.floats(0.01, 1e6), st.floats(0.0, 1e3))
@settings(max_examples=30, deadline=None)
def test_kill_switch_rule_denies_every_order_while_on(code, price, amount):
    assert _gate(code, price, amount) == risk.DENY_KILL_SWITCH


@given(st.sampled_from([float("nan"), float("inf"), -1.0, 0.0]))
@settings(deadline=None)
def test_bad_price_is_denied(price):
    assert _gate(0, price, 1.0) == risk.DENY_BAD_PRICE


@given(st.floats(-1e9, 1e9), st.floats(1.0, 1e9), st.floats(0.01, 0.99))
def test_session_loss_trips_exactly_at_the_limit(pnl, capital, limit):
    tripped = risk.session_loss_tripped(pnl, capital, limit)
    assert tripped == (pnl <= -limit * capital)
    assert risk.session_loss_tripped(float("nan"), capital, limit)


# ---- random command sequences, midnight resets, closing orders under kill switches ----

from gridflow.events import Command  # noqa: E402


def replay_with_commands(paths, acct, fees, cuts, reset_after):
    """Feed the paths in pieces; after the pieces listed in ``reset_after`` issue a
    ``reset_kill_switch`` command (random reasons)."""
    eng = AccountEngine(acct, SYMS, {s: "1h" for s in SYMS}, fees, {})
    p = acct.strategy
    n = len(next(iter(paths.values()))[0])
    vals = {}
    for sym, (o, h, lo, c) in paths.items():
        bank = IndicatorBank([f"sma_{p.sma_period}", f"atr_{p.atr_period}"])
        ts = np.arange(n, dtype=np.int64) * H
        vals[sym] = (ts, bank.update(ts, o, h, lo, c))
    bounds = [0, *sorted({min(max(x, 1), n - 1) for x in cuts}), n]
    out = JournalBatch()
    issued = 0
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        for sym, (o, h, lo, c) in paths.items():
            ts, v = vals[sym]
            sl = slice(a, b)
            chunk = CandleChunk(sym, "1h", ts[sl], o[sl], h[sl], lo[sl], c[sl], np.ones(b - a),
                                a, b == n)
            out.extend(eng.on_chunk(IndicatorChunk(chunk, {kk: vv[sl] for kk, vv in v.items()})))
        if k in reset_after:
            reason = reset_after[k]
            cmd = Command(command_id=k + 1, account=acct.name, kind="reset_kill_switch",
                          payload={"reason": reason} if reason else {}, issued_at_ms=0,
                          issued_by="hypothesis")
            out.extend(eng.apply_command(cmd, int(b * H)))
            issued += 1
    out.extend(eng.flush())
    return eng, out, issued


REASONS = [None, "SESSION_LOSS_GRID", "SESSION_LOSS_SINGLE", "DAILY_LOSS", "ROLLING_DRAWDOWN",
           "MAX_DRAWDOWN"]


@settings(max_examples=60, deadline=None)
@given(scenario(), st.lists(st.integers(1, 159), max_size=5),
       st.dictionaries(st.integers(0, 5), st.sampled_from(REASONS), max_size=4))
def test_no_entry_while_any_switch_is_on_with_random_resets(sc, cuts, resets):
    paths, acct, fees = sc
    eng, out, issued = replay_with_commands(paths, acct, fees, cuts, resets)
    on: set[str] = set()
    items = sorted([(e.seq, e) for e in out.events
                    if e.kind in ("kill_switch_tripped", "kill_switch_reset")]
                   + [(o.seq, o) for o in out.orders], key=lambda t: t[0])
    for _, ev in items:
        if isinstance(ev, OrderRequest):
            if ev.tag.startswith("L"):
                assert not on, (ev.tag, on)
        elif ev.kind == "kill_switch_tripped":
            assert ev.reason not in on
            on.add(ev.reason)
        else:
            assert ev.reason in on  # only a switch that is on is reset
            on.discard(ev.reason)
    assert set(filter(None, eng.kill_switch.split(","))) == on
    acks = [e for e in out.events if e.kind in ("command_applied", "command_rejected")]
    assert len(acks) == issued  # every command is acknowledged


@settings(max_examples=40, deadline=None)
@given(scenario())
def test_daily_baseline_is_the_equity_at_utc_midnight(sc):
    paths, acct, fees = sc
    eng, out = replay(paths, acct, fees)
    at_midnight = {q.ts_ms: q.equity for q in out.equity if q.ts_ms % 86_400_000 == 0}
    for e in out.events:
        if e.kind == "kill_switch_tripped" and e.reason == "DAILY_LOSS":
            day = e.ts_ms - e.ts_ms % 86_400_000
            expected = at_midnight.get(day, acct.capital_quote)
            assert e.detail["day_start_equity"] == expected
        if e.kind == "kill_switch_reset" and e.reason == "DAILY_LOSS":
            assert e.ts_ms % 86_400_000 == 0


@settings(max_examples=40, deadline=None)
@given(scenario())
def test_closing_orders_do_not_depend_on_kill_switches(sc):
    """Force every kill switch on right after the first entry: the exit of that position
    happens exactly as without the switches."""
    paths, acct, fees = sc
    _, base = replay(paths, acct, fees)
    entries = [o for o in base.orders if o.tag.startswith("L")]
    if not entries:
        return
    first = entries[0]
    exits = [o for o in base.orders if o.symbol == first.symbol and o.reduce_only
             and o.seq > first.seq]
    cut = first.ts_ms // H + 1  # the candle after the first entry's candle
    eng = AccountEngine(acct, SYMS, {s: "1h" for s in SYMS}, fees, {})
    p = acct.strategy
    n = len(next(iter(paths.values()))[0])
    out = JournalBatch()
    vals = {}
    for sym, (o, h, lo, c) in paths.items():
        ts = np.arange(n, dtype=np.int64) * H
        vals[sym] = IndicatorBank([f"sma_{p.sma_period}", f"atr_{p.atr_period}"]).update(
            ts, o, h, lo, c)
    for a, b in ((0, cut), (cut, n)):
        if b <= a:
            continue
        for sym, (o, h, lo, c) in paths.items():
            ts = np.arange(a, b, dtype=np.int64) * H
            chunk = CandleChunk(sym, "1h", ts, o[a:b], h[a:b], lo[a:b], c[a:b], np.ones(b - a),
                                a, b == n)
            out.extend(eng.on_chunk(IndicatorChunk(chunk, {k: v[a:b] for k, v in vals[sym].items()})))
        if a == 0:
            eng.state.ai[0] = 31  # every kill switch on (AI_KILL)
    out.extend(eng.flush())
    forced_exits = [o for o in out.orders if o.symbol == first.symbol and o.reduce_only]
    same_position = exits and not [o for o in entries if o.symbol == first.symbol
                                   and first.seq < o.seq < exits[0].seq]
    if same_position:  # no level added before the exit: the very same close must happen
        e0 = exits[0]
        assert forced_exits, "the position must still be closed"
        f0 = forced_exits[0]
        assert (f0.tag, f0.ts_ms, f0.price, f0.amount) == (e0.tag, e0.ts_ms, e0.price, e0.amount)
    assert not [o for o in out.orders if o.tag.startswith("L") and o.ts_ms >= cut * H]
