"""Funding of perpetual positions: the files, their per-candle sums, and the payments the
account engine books at 8 h settlements (hand-computed), journaled and summarised."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from helpers import indicator_chunk

from gridflow.config import load_config
from gridflow.config.models import AccountConfig, FeesConfig, GridAtrParams, RiskConfig
from gridflow.data.funding import (
    bundled_funding_files,
    funding_file_symbol,
    funding_per_candle,
    read_funding,
)
from gridflow.dataflows.plan import load_funding
from gridflow.operators.engine import AccountEngine

H = 3_600_000
BTC = "BTC/USDT"
NOFEES = FeesConfig(maker_fee=0.0, taker_fee=0.0, slippage=0.0)


def _write(path, text):
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_bundled_funding_files_read_and_are_8h_settlements():
    files = bundled_funding_files()
    assert set(files) == {"BTC/USDT", "ETH/USDT", "XRP/USDT"}
    ts, rate = read_funding(files[BTC])
    assert len(ts) == 7323 and (ts % (8 * H) == 0).all() and (np.diff(ts) == 8 * H).all()
    assert np.abs(rate).max() <= 0.003 + 1e-12  # Binance's cap in those years


@pytest.mark.parametrize("body, message", [
    ("time,rate\n1,0.1\n", "header"),
    ("timestamp,funding_rate\n28800000,nan\n", "row 2"),
    ("timestamp,funding_rate\n28800000,0.0001\n57600000,0.2\n", "row 3"),
    ("timestamp,funding_rate\n57600000,0.0001\n28800000,0.0001\n", "row 3"),
    ("timestamp,funding_rate\n28800000,abc\n", "unparsable"),
])
def test_bad_funding_files_are_refused_naming_the_row(tmp_path, body, message):
    with pytest.raises(ValueError, match=message):
        read_funding(_write(tmp_path / "x_BTC_USDT_funding.csv.gz", body))


def test_funding_file_names():
    assert funding_file_symbol("binanceusdm_ETH_USDT_funding.csv.gz") == "ETH/USDT"
    assert funding_file_symbol("SOL_USDT_funding.csv") == "SOL/USDT"
    with pytest.raises(ValueError, match="give symbol"):
        funding_file_symbol("btc.csv.gz")


def test_funding_per_candle_puts_a_settlement_on_the_candle_closing_at_it():
    f_ts = np.array([8 * H, 16 * H, 24 * H], np.int64)
    f_rate = np.array([0.0001, -0.0003, 0.0007])
    ts = np.arange(0, 30, dtype=np.int64) * H  # 1h candles from 00:00
    x = funding_per_candle(ts, H, f_ts, f_rate)
    assert np.flatnonzero(x).tolist() == [7, 15, 23]  # the candles opening at 07, 15, 23 h
    assert x[[7, 15, 23]].tolist() == [0.0001, -0.0003, 0.0007]  # copied exactly
    day = funding_per_candle(np.array([0, 24 * H], np.int64), 24 * H, f_ts, f_rate)
    assert day[0] == pytest.approx(0.0001 - 0.0003 + 0.0007) and day[1] == 0.0
    assert not funding_per_candle(ts, H, f_ts[:0], f_rate[:0]).any()


def test_a_long_pays_and_a_short_receives_at_the_settlement_hand_computed():
    # grid ATR, one level at SMA - ATR = 90 (long) / 110 (short); candle 1 fills it,
    # candle 7 closes at 08:00 (a settlement, rate +0.1 %), candle 9 takes profit.
    rate = 0.001
    funding = {BTC: (np.array([8 * H], np.int64), np.array([rate]))}
    for side, fill, close7 in (("long", 90.0, 95.0), ("short", 110.0, 105.0)):
        p = GridAtrParams(side=side, sma_period=2, atr_period=1, levels=1, atr_start=1.0,
                          atr_step=0.0, sl_pct=0.5)
        acct = AccountConfig(name="f", capital_quote=1000.0, symbols=(BTC,), strategies=(p,),
                             risk=RiskConfig(max_margin_ratio=1.0))
        eng = AccountEngine(acct, [BTC], {BTC: "1h"}, NOFEES, {}, funding=funding)
        # candle 1 reaches the level and closes short of the take profit at 100
        c1 = (100, 100, 89, 92) if side == "long" else (100, 111, 100, 108)
        rows = [(100, 100, 100, 100), c1] + [(close7,) * 4] * 7 + [(100, 100, 100, 100)]
        vals = {"sma_2": [100.0, 100.0] + [close7 + (1 if side == "long" else -1)] * 7
                + [100.0], "atr_1": 10.0}
        out = eng.on_chunk(indicator_chunk(BTC, rows, vals))
        out.extend(eng.flush())
        amount = 1000.0 / fill
        d = 1 if side == "long" else -1
        pay = d * amount * close7 * rate
        (ev,) = [e for e in out.events if e.kind == "funding"]
        assert ev.ts_ms == 8 * H and ev.symbol == BTC
        assert ev.detail["payment"] == pytest.approx(pay)
        assert ev.detail["rate"] == rate and ev.detail["mark_price"] == close7
        assert ev.detail["position_side"] == side
        summary = eng.summary()
        assert summary.funding_paid == pytest.approx(pay)
        (tr,) = out.trades
        assert tr.funding == pytest.approx(pay)
        price_pnl = d * amount * (tr.exit_price - fill)
        assert tr.pnl == pytest.approx(price_pnl - pay)
        assert summary.equity == pytest.approx(1000.0 + price_pnl - pay)
        assert (pay > 0) == (side == "long")  # longs pay a positive rate


def test_funding_files_from_a_preset_resolve_relative_to_it(tmp_path):
    src = bundled_funding_files()[BTC]
    (tmp_path / "f").mkdir()
    dst = tmp_path / "f" / src.name
    dst.write_bytes(src.read_bytes())
    preset = tmp_path / "p.toml"
    preset.write_text('[[funding]]\npath = "f/%s"\n' % src.name)
    cfg = load_config(preset)
    assert cfg.funding[0].path == str(dst.resolve())
    got = load_funding(cfg, {BTC, "ETH/USDT"})
    assert list(got) == [BTC] and len(got[BTC][0]) == 7323
    assert load_funding(cfg, {"ETH/USDT"}) == {}  # not traded: not read
