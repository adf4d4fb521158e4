"""Each rule and the bound beside it (the sweep's "can this happen?" form) agree: a
bound never says "impossible" where the rule acts, and the day rollover, the ring
shortcut and the strategy kinds behave as documented (hypothesis)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.operators import kernel_layout as kl
from gridflow.operators import risk
from gridflow.operators.strategies import STRATEGIES
from gridflow.operators.strategies import quote_kernel as qk
from gridflow.timeframes import DAY_MS

H = 3_600_000


def test_kinds_are_a_closed_set_refused_where_they_are_encoded():
    assert set(qk.KINDS) == set(STRATEGIES)
    with pytest.raises(ValueError, match="UNKNOWN_STRATEGY_KIND"):
        qk.quote_params(SimpleNamespace(name="grid_magic", levels_count=1))
    for code in (5.0, -1.0, 0.5, math.nan):
        qp = np.zeros(qk.Q_W)
        qp[qk.Q_KIND] = code
        with pytest.raises(ValueError, match="UNKNOWN_STRATEGY_KIND"):
            qk.quotes_array(qp, np.ones(3))
        with pytest.raises(ValueError, match="UNKNOWN_STRATEGY_KIND"):
            qk.check_kinds(np.vstack([np.zeros(qk.Q_W), qp]))
    qk.check_kinds(np.zeros((2, qk.Q_W)))  # grid ATR rows pass


@st.composite
def quote_case(draw):
    kind = draw(st.sampled_from(sorted(qk.KIND_CODES)))
    L = draw(st.integers(1, 5))
    qp = np.zeros(qk.Q_W)
    qp[qk.Q_KIND] = kind
    qp[qk.Q_SIDE] = draw(st.sampled_from([1, -1]))
    qp[qk.Q_LEVELS] = L
    qp[qk.Q_TICK] = draw(st.sampled_from([0.0, 0.01, 0.1, 0.5, 7.0]))
    qp[qk.Q_ADX] = draw(st.floats(0.0, 40.0))
    qp[qk.Q_TRAIL] = draw(st.floats(0.3, 5.0))
    steps = draw(st.lists(st.floats(0.0, 2.0), min_size=L, max_size=L))
    if kind == qk.KIND_ENVELOPE:
        off = np.minimum(np.cumsum(np.r_[0.001, steps[1:]]) / 10.0, 0.9)
        qp[qk.Q_MULT:qk.Q_MULT + L] = 1.0 - off if qp[qk.Q_SIDE] > 0 else 1.0 / (1.0 - off)
    else:
        qp[qk.Q_MULT:qk.Q_MULT + L] = np.cumsum(steps)
    price = st.floats(1.0, 1e5)
    x0 = draw(st.one_of(price, st.just(math.nan)))
    x1 = draw(st.floats(0.0, 1e3))
    x2 = draw(st.sampled_from([-1.0, 1.0, 0.0])) if kind == qk.KIND_MULTI_TF else draw(price)
    if kind == qk.KIND_FUNDING:  # a funding rate around the entry and exit thresholds
        qp[qk.Q_ENTRY_RATE], qp[qk.Q_EXIT_RATE] = 3e-4, 1e-4
        x2 = draw(st.sampled_from([-5e-4, -3e-4, -2e-4, -1e-4, 0.0, 5e-5, 1e-4, 3e-4, 1e-3]))
    x3 = draw(st.floats(0.0, 60.0))
    g = draw(st.sampled_from([1.0, 0.0, math.nan]))  # the filters' gate: open, closed
    return qp, x0, x1, x2, x3, g


@settings(max_examples=300, deadline=None)
@given(quote_case(), st.data())
def test_quote_bound_never_misses_a_reached_quote(case, data):
    qp, x0, x1, x2, x3, g = case
    L = int(qp[qk.Q_LEVELS])
    tick = qp[qk.Q_TICK]
    lv = np.full(L, np.nan)
    side, tp, trail, ex = qk.quote_at(qp, x0, x1, x2, x3, g, lv)
    d, center, on, trail2, ex2 = qk.quote_shape(qp, x0, x1, x2, x3, g)
    assert ex == ex2 and not (ex and (on or d != 0))  # an exit quotes nothing
    assert d == side and (trail == trail2 or (math.isnan(trail) and math.isnan(trail2)))
    assert math.isnan(tp) == math.isnan(center)
    assert on or np.isnan(lv).all()
    if not g > 0.0:  # a closed gate quotes no level, and leaves the rest as it is
        assert np.isnan(lv).all()
        lv_open = np.full(L, np.nan)
        assert qk.quote_at(qp, x0, x1, x2, x3, 1.0, lv_open)[:2] == (side, tp) or math.isnan(tp)
    kind = int(qp[qk.Q_KIND])
    eps = data.draw(st.sampled_from([0.0, 1e-12, 1e-9, 1e-6]))
    for i in range(L):
        if not lv[i] > 0.0:
            continue
        lo, hi = lv[i] * (1.0 - eps), lv[i] * (1.0 + eps)  # a candle that reaches it
        raw = qk.raw_level(qp, kind, d, x0, x1, i)
        assert qk.may_touch(d, raw, tick, lv[i], lv[i]), (i, raw, lv[i])
        assert qk.may_touch(d, raw, tick, lo, hi)
    if tp > 0.0:
        assert qk.may_touch(-d, center, tick, tp, tp), (center, tp)


@st.composite
def account(draw):
    pf = np.zeros(kl.P_W)
    pf[kl.P_SESSION_GRID] = draw(st.floats(0.01, 0.9))
    pf[kl.P_SESSION_SINGLE] = draw(st.floats(0.01, 0.9))
    pf[kl.P_DAILY] = draw(st.floats(0.01, 0.5))
    pf[kl.P_ROLLING_DD] = draw(st.floats(0.05, 0.9))
    pf[kl.P_MAX_DD] = draw(st.floats(0.05, 0.9))
    pf[kl.P_ROLLING_MS] = draw(st.integers(1, 96)) * H
    af = np.zeros(kl.AF_W)
    af[kl.AF_PEAK] = draw(st.floats(1.0, 1e6))
    af[kl.AF_DAY_START] = draw(st.floats(1.0, 1e6))
    marks = draw(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8))
    rw_eq = np.array(marks) * af[kl.AF_PEAK]  # every mark is an equity the peak took in
    rw_ts = np.arange(len(marks), dtype=np.int64) * H
    return pf, af, rw_ts, rw_eq


@settings(max_examples=400, deadline=None)
@given(account(), st.floats(-1e3, 2e6) | st.sampled_from([math.nan, 0.0]),
       st.floats(-1e6, 1e6), st.floats(0.0, 1e6), st.floats(-1e6, 1e6), st.floats(0.0, 1e6))
def test_kill_switch_bound_covers_every_trip(acct, equity, pnl_g, cap_g, pnl_s, cap_s):
    pf, af, rw_ts, rw_eq = acct
    ai = np.zeros(kl.AI_W, np.int64)
    out_i = np.zeros((8, kl.OI_W), np.int64)
    out_f = np.zeros((8, kl.OF_W))
    ts = int(rw_ts[-1]) + H
    maybe = risk.kill_switch_may_trip(equity, pnl_g, cap_g, pnl_s, cap_s,
                                      af[kl.AF_DAY_START], af[kl.AF_PEAK], pf)
    n = risk.check_kill_switches(ts, equity, pnl_g, cap_g, pnl_s, cap_s, af, ai, pf,
                                 rw_ts, rw_eq, out_i, out_f, 0)
    assert maybe or (ai[kl.AI_KILL] == 0 and n == 0)


def test_day_rollover_clears_the_daily_switch_except_on_the_first_day():
    af = np.zeros(kl.AF_W)
    ai = np.zeros(kl.AI_W, np.int64)
    ai[kl.AI_DAY] = -1
    ai[kl.AI_KILL] = risk.KS_DAILY | risk.KS_MAX_DD
    day = risk.utc_day(20_000 * DAY_MS + 5)
    assert day == 20_000 and risk.day_rolls(day, ai)
    assert not risk.start_day(day, 900.0, af, ai)  # the first day clears nothing
    assert ai[kl.AI_KILL] == risk.KS_DAILY | risk.KS_MAX_DD and af[kl.AF_DAY_START] == 900.0
    assert not risk.day_rolls(day, ai) and not risk.day_rolls(day - 1, ai)
    assert risk.start_day(day + 1, 800.0, af, ai)
    assert ai[kl.AI_KILL] == risk.KS_MAX_DD and ai[kl.AI_DAY] == day + 1
    assert af[kl.AF_DAY_START] == 800.0
    assert risk.KS_RESET_ONLY & risk.KS_DAILY == 0
    assert risk.KS_RESET_ONLY | risk.KS_DAILY == risk.KS_ALL


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.data())
def test_skipping_marks_equals_writing_them(R, data):
    pos = data.draw(st.integers(0, R))
    count = data.draw(st.integers(0, 4 * R + 3))
    rings = []
    for shortcut in (False, True):
        ai = np.zeros(kl.AI_W, np.int64)
        ai[kl.AI_RW_POS] = pos
        rw_ts = np.full(R, -1, np.int64)
        rw_eq = np.zeros(R)
        first = count - risk.skip_marks(count, ai, rw_ts) if shortcut else 0
        for j in range(first, count):
            risk.mark_rolling(j * H, float(j), ai, rw_ts, rw_eq)
        rings.append((rw_ts.tolist(), rw_eq.tolist(), int(ai[kl.AI_RW_POS])))
    assert rings[0] == rings[1]


@settings(max_examples=400, deadline=None)
@given(st.floats(1.0, 1e6), st.sampled_from([0.0, 1e-5, 1e-3, 0.1]), st.floats(1.0, 1e5),
       st.floats(0.0, 0.05), st.floats(1.0, 10.0), st.floats(0.05, 1.0), st.floats(1.0, 1e6),
       st.floats(0.0, 0.5), st.floats(0.0, 1e6))
def test_margin_bound_never_refuses_an_allowed_entry(size, step, px, up, lev, max_mr, eq_max,
                                                     down, used):
    hi = px * (1.0 + up)  # the fill is at or below the candle's high
    equity = eq_max * (1.0 - down)  # and the equity at most the bound's
    if not risk.margin_denied_for_sure(used, size, step, hi, lev, max_mr, eq_max):
        return
    amount = size / px  # level_amount's flooring
    if step > 0.0:
        amount = math.floor(amount / step + 1e-9) * step
    assert risk.rule_margin_ratio(equity, used, amount * px / lev, max_mr) != risk.OK
