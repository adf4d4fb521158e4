"""The funding grid (``grid_funding``) on hand-built candles and settled rates: where it
enters and exits, its rates in paper and live, spot refused, the rate's expiry, a replay
without its funding file refused."""

from __future__ import annotations

import numpy as np
import pytest
from test_engine import NOFEES
from test_live_engine import H
from test_strategies_engine import BTC, assert_orders, candles, run

from gridflow.config.models import AccountConfig, RiskConfig


def _funding_engine(rates, **kw):
    """One BTC account trading a funding grid; ``rates``: [(settlement ms, rate)]."""
    from gridflow.config.strategies import GridFundingParams
    from gridflow.operators.engine import AccountEngine

    p = GridFundingParams(sma_period=2, atr_period=1, levels=2, atr_start=1.0, atr_step=1.0,
                          sl_frac=0.5, entry_rate=0.0003, exit_rate=0.0001, **kw)
    acct = AccountConfig(name="t", capital_quote=2000.0, symbols=(BTC,), strategy=p,
                         risk=RiskConfig(max_margin_ratio=1.0))
    f_ts = np.array([t for t, _ in rates], np.int64)
    f_rate = np.array([r for _, r in rates], float)
    return AccountEngine(acct, [BTC], {BTC: "1h"}, NOFEES, {}, funding={BTC: (f_ts, f_rate)})


def test_funding_grid_shorts_where_funding_pays_shorts_and_exits_when_it_normalises():
    # the settlement at 1 H (+0.05 %) is known at c0's close: a short grid at 110 / 120,
    # TP at the SMA; c1 rises to 112: L0 sells at 110; the settlement at 3 H (+0.005 %,
    # below the exit rate) is known at c2's close: c3's open (105) closes it, market
    eng = _funding_engine([(1 * H, 0.0005), (3 * H, 0.00005)])
    rows = [(100, 100, 100, 100), (100, 112, 99, 108), (108, 109, 104, 106), (105, 106, 95, 96)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100, "atr_1": 10}))
    q = 1000 / 110
    assert_orders(out.orders, [("L0", "sell", "limit", 110.0, q),
                               ("EXIT", "buy", "market", 105.0, q)])
    (tr,) = out.trades
    assert (tr.position_side, tr.exit_reason, tr.close_ts_ms) == ("short", "SIGNAL", 3 * H)
    # the short received the 3 H settlement (open at c2's close): funding < 0 (received)
    assert tr.funding == pytest.approx(-q * 106 * 0.00005)
    assert tr.pnl == pytest.approx(q * (110 - 105) - tr.funding)


def test_funding_grid_goes_long_on_negative_funding_and_holds_between_the_thresholds():
    # -0.05 %: a long grid at 90 / 80; c1 fills L0 at 90; the 2 H settlement -0.02 % is
    # between exit and entry: no new level (c2's dip to 78 takes no L1), position held
    # until its take profit at the SMA in c3
    eng = _funding_engine([(1 * H, -0.0005), (2 * H, -0.0002)])
    rows = [(100, 100, 100, 100), (100, 100, 85, 88), (92, 95, 78, 92), (92, 101, 91, 100)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100, "atr_1": 10}))
    assert [(o.tag, o.side, o.price) for o in out.orders] == [("L0", "buy", 90.0),
                                                              ("TP", "sell", 100.0)]
    (tr,) = out.trades
    assert tr.position_side == "long" and tr.exit_reason == "TP" and tr.entries == 1


def test_funding_grid_quotes_nothing_before_the_first_settlement():
    eng = _funding_engine([(5 * H, 0.001)])
    rows = [(100, 100, 100, 100), (100, 130, 70, 100), (100, 130, 70, 100)]
    out = run(eng, candles(BTC, rows, {"sma_2": 100, "atr_1": 10}))
    assert not out.orders


def test_paper_and_live_feed_the_funding_grid_its_rates_and_spot_is_refused():
    from gridflow.config import load_config
    from gridflow.config.strategies import GridAtrParams, GridFundingParams
    from gridflow.dataflows.plan import plan_run

    funded = AccountConfig(name="a", symbols=(BTC,), strategy=GridFundingParams())
    plain = AccountConfig(name="b", symbols=(BTC, "ETH/USDT"), strategy=GridAtrParams())
    cfg = load_config(None, accounts=(funded, plain))
    for mode in ("paper", "live"):
        # only the symbol a strategy reads the rate of is fed; a replay reads files
        assert plan_run(cfg, mode=mode).funding_feed == (BTC,)
    # a spot market has no funding: refused when the config loads (the funding grid
    # sells short, which spot cannot; and Binance USDT-M has no spot market)
    with pytest.raises(ValueError, match=r"strategies\[0\]\.name = 'grid_funding'"):
        load_config(None, accounts=(funded,), live={"exchange": {"id": "binance"}})
    with pytest.raises(ValueError, match="market_type must be 'swap'"):
        load_config(None, accounts=(funded,), live={"exchange": {"market_type": "spot"}})


def test_the_known_funding_rate_expires_with_its_series():
    from gridflow.data.funding import last_rate

    f_ts = np.array([8, 16, 24], np.int64) * H
    rate = np.array([1e-4, 2e-4, 3e-4])
    close = np.array([7, 8, 15, 16, 24, 48, 49], np.int64) * H
    got = last_rate(close, f_ts, rate)
    # unknown before the first; a settlement at the close is known at it; stale after
    # 24 h after the last
    np.testing.assert_array_equal(got, [np.nan, 1e-4, 1e-4, 2e-4, 3e-4, 3e-4, np.nan])
    # the answer at a close depends only on the settlements up to it: a live feed keeping
    # the last few settlements of a schedule that went 8 h -> 1 h -> 8 h gets the replay's
    f_ts = np.concatenate([np.arange(0, 48, 8), np.arange(48, 60), np.arange(64, 120, 8)]) * H
    rate = np.linspace(1e-4, 9e-4, len(f_ts))
    close = np.arange(0, 150, dtype=np.int64) * H + H // 2
    full = last_rate(close, f_ts, rate)
    for k in range(len(f_ts)):
        tail = close >= f_ts[k]
        np.testing.assert_array_equal(last_rate(close[tail], f_ts[k:], rate[k:]), full[tail])
    known = close - f_ts[-1] <= 24 * H  # no hole in the schedule reaches 24 h
    assert not np.isnan(full[known]).any() and np.isnan(full[~known]).all()


def test_a_replay_refuses_a_funding_grid_without_its_funding_file():
    from gridflow.config import load_config
    from gridflow.config.strategies import GridFundingParams
    from gridflow.dataflows.plan import plan_run

    acct = AccountConfig(name="a", symbols=("SOL/USDT",), strategy=GridFundingParams())
    with pytest.raises(ValueError, match="grid_funding needs the symbol's funding file"):
        plan_run(load_config(None, accounts=(acct,)))
    from gridflow.config.models import FundingFile
    from gridflow.data.funding import bundled_funding_files

    btc = AccountConfig(name="b", symbols=("BTC/USDT",), strategy=GridFundingParams())
    with pytest.raises(ValueError, match="funding file"):
        plan_run(load_config(None, accounts=(btc,)))
    cfg = load_config(None, accounts=(btc,),
                      funding=(FundingFile(path=str(bundled_funding_files()["BTC/USDT"])),))
    assert "BTC/USDT" in plan_run(cfg).funding
