"""Sizing modes and config bounds of the risk gate (see test_risk_rules.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from risk_helpers import (  # noqa: F401
    BTC,
    ETH,
    GRID_VALS,
    LOOSE,
    NOFEES,
    SOL,
    ST,
    H,
    atr_params,
    candles,
    entries,
    events,
    flat,
    make_engine,
    reset_cmd,
    run,
    switch_on,
)

from gridflow.config.models import (
    AccountConfig,
    EnvelopeDcaParams,
    GridAtrParams,
    RiskConfig,
    SizingConfig,
)

# ------------------------------------------------------------------------- sizing
SIZING_PATH = [(100, 100, 100, 100), (100, 100, 85, 86), (86, 86, 79, 80)]  # L0 90, L1 80


@pytest.mark.parametrize("sizing, leverage, hv, amounts", [
    # equal: capital / symbols / levels, times leverage
    ({"mode": "equal"}, 2.0, 1.0, [2000 / 90, 2000 / 80]),
    ({"mode": "fixed_notional", "notional_per_level_quote": 500.0}, 1.0, 1.0,
     [500 / 90, 500 / 80]),
    # risk: risk_per_trade * equity / (levels * sl_pct) with the equity at the fill:
    # 0.01 * 3000 / (3 * 0.2) = 50; then equity 3000 - (50 / 90) * 10
    ({"mode": "risk", "risk_per_trade": 0.01}, 1.0, 1.0,
     [50 / 90, 0.01 * (3000 - 50 / 90 * 10) / 0.6 / 80]),
    # vol_parity: the equal notional 1000 * min(target_vol / hv, max_vol_scale)
    ({"mode": "vol_parity", "vol_window": 4, "target_vol": 0.5, "max_vol_scale": 3.0}, 1.0,
     1.0, [500 / 90, 500 / 80]),
    ({"mode": "vol_parity", "vol_window": 4, "target_vol": 0.5, "max_vol_scale": 3.0}, 1.0,
     0.4, [1250 / 90, 1250 / 80]),
])
def test_sizing_modes_exact_amounts(sizing, leverage, hv, amounts):
    eng = make_engine(atr_params(levels=3, sl_pct=0.2), capital=3000.0, leverage=leverage,
                      sizing=sizing)
    out = run(eng, candles(BTC, SIZING_PATH, {**GRID_VALS, "hv_4": hv}))
    assert not out.events
    assert [(o.tag, o.price) for o in out.orders] == [("L0", 90.0), ("L1", 80.0)]
    assert [f.amount for f in out.fills] == pytest.approx(amounts, rel=1e-12)


def test_vol_parity_size_is_decided_at_the_previous_close():
    eng = make_engine(atr_params(levels=3, sl_pct=0.2), capital=3000.0,
                      sizing={"mode": "vol_parity", "vol_window": 4})
    # hv 1.0 at candle 0's close (scale 0.5), 0.25 at candle 1's close (scale 2)
    out = run(eng, candles(BTC, SIZING_PATH[:2], {**GRID_VALS, "hv_4": [1.0, 0.25]}))
    assert [f.amount * f.price for f in out.fills] == pytest.approx([500.0])  # got 2000


def test_vol_parity_reads_hv_of_its_window():
    acct = AccountConfig(name="t", symbols=(BTC,), strategies=(atr_params(),),
                         sizing=SizingConfig(mode="vol_parity", vol_window=48))
    from gridflow.operators.strategies import strategy_indicators

    assert strategy_indicators(acct, acct.assignment([BTC])[BTC]) == ["sma_2", "atr_1", "hv_48"]


@pytest.mark.parametrize("sizing, strat, notional", [
    ({"mode": "equal"}, {"levels": 1}, 3000.0),
    ({"mode": "fixed_notional", "notional_per_level_quote": 1e6}, {}, 1e6),
    ({"mode": "risk", "risk_per_trade": 0.1}, {"levels": 1, "sl_pct": 0.01}, 30_000.0),
    ({"mode": "vol_parity", "vol_window": 4}, {"levels": 1}, 9000.0),  # scale capped at 3
])
def test_every_sizing_mode_is_capped_by_max_margin_ratio(sizing, strat, notional):
    eng = make_engine(atr_params(**strat), capital=3000.0, sizing=sizing,
                      risk={"max_margin_ratio": 0.7})
    vals = {**GRID_VALS, "hv_4": 0.01}
    out = run(eng, candles(BTC, SIZING_PATH, vals))
    assert out.orders == [] and out.fills == []
    d = events(out, "order_denied")[0]
    assert d.reason == "MAX_MARGIN_RATIO" and d.detail["level"] == 0
    assert d.detail["amount"] == pytest.approx(notional / 90)
    assert d.detail["margin_ratio_after"] == pytest.approx(notional / 3000)
    assert d.detail["max_margin_ratio"] == 0.7


# ---------------------------------------------------------------------- bad config
@pytest.mark.parametrize("build, field", [
    (lambda: SizingConfig(risk_per_trade=0.2), "risk_per_trade"),
    (lambda: RiskConfig(daily_loss_limit=0.6), "daily_loss_limit"),
    (lambda: RiskConfig(max_drawdown_frac=0.95), "max_drawdown_frac"),
    (lambda: RiskConfig(max_drawdown_pct=0.95), "max_drawdown_frac"),  # the deprecated name
    (lambda: RiskConfig(max_margin_ratio=0.0), "max_margin_ratio"),
    (lambda: RiskConfig(session_loss_single=0.001), "session_loss_single"),
    (lambda: RiskConfig(rolling_window_hours=0), "rolling_window_hours"),
    (lambda: RiskConfig(correlation_threshold=1.5), "correlation_threshold"),
    (lambda: RiskConfig(cooldown_candles=-1), "cooldown_candles"),
    (lambda: RiskConfig(max_open_positions=0), "max_open_positions"),
    (lambda: RiskConfig(typo_limit=0.1), "typo_limit"),
    (lambda: SizingConfig(mode="kelly"), "mode"),
    (lambda: SizingConfig(max_vol_scale=0.5), "max_vol_scale"),
    (lambda: AccountConfig(leverage=0.5), "leverage"),
    (lambda: AccountConfig(capital_quote=float("nan")), "capital_quote"),
])
def test_bad_config_is_refused_naming_the_field(build, field):
    with pytest.raises(ValidationError, match=field):
        build()


def test_two_strategies_allowing_the_same_symbol_are_refused():
    msg = r"strategies: BTC/USDT is allowed by strategies 0 and 1"
    with pytest.raises(ValidationError, match=msg):
        AccountConfig(strategies=(GridAtrParams(symbols=(BTC,)),
                                  EnvelopeDcaParams(symbols=(ETH, BTC))))


def test_two_strategies_without_allow_list_are_refused():
    with pytest.raises(ValidationError, match="strategies"):
        AccountConfig(strategies=(GridAtrParams(), EnvelopeDcaParams()))


def test_override_outside_allow_list_is_refused():
    with pytest.raises(ValidationError, match="overrides"):
        GridAtrParams(symbols=(BTC,), overrides={ETH: {"atr_start": 2.0}})
    with pytest.raises(ValidationError, match="atr_start"):
        GridAtrParams(overrides={BTC: {"atr_start": -1.0}})
