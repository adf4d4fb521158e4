"""Run plan: indicators asked by several accounts are computed once per symbol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from gridflow.chunks import CandleChunk
from gridflow.config import load_config
from gridflow.config.models import AccountConfig, DataFile, GridAtrParams
from gridflow.data.candle_files import read_candle_file
from gridflow.dataflows.plan import plan_run
from gridflow.dataflows.steps import make_indicator_step


def test_union_of_indicators_computed_once_per_symbol(three_symbol_files: list[Path]) -> None:
    btc, eth, _ = three_symbol_files
    a = AccountConfig(name="a", symbols=("BTC/USDT", "ETH/USDT"),
                      strategy=GridAtrParams(sma_period=24, atr_period=14),
                      indicators=("sma_24", "ema_50", "atr_14@4h"))
    b = AccountConfig(name="b", symbols=("BTC/USDT",),
                      strategy=GridAtrParams(sma_period=48, atr_period=14),
                      indicators=("ema_50", "trange"))
    cfg = load_config(None, data=(DataFile(path=str(btc)), DataFile(path=str(eth))),
                      accounts=(a, b), start_ms=None)
    plan = plan_run(cfg)
    assert plan.indicators["BTC/USDT"] == ("atr_14", "atr_14@4h", "ema_50", "sma_24", "sma_48",
                                           "trange")
    assert plan.indicators["ETH/USDT"] == ("atr_14", "atr_14@4h", "ema_50", "sma_24")
    assert plan.routes() == {"BTC/USDT": ("a", "b"), "ETH/USDT": ("a",)}
    d = read_candle_file(btc)
    chunk = CandleChunk("BTC/USDT", "1h", d["ts"], d["open"], d["high"], d["low"], d["close"],
                        d["volume"], 0, True)
    _, out = make_indicator_step(plan)(None, chunk)
    assert sorted(out.values) == sorted(plan.indicators["BTC/USDT"])
    v = out.values["atr_14@4h"]
    assert np.isnan(v[:4 * 14]).all() and np.isfinite(v[-100:]).all()


@pytest.mark.parametrize("bad", ["nope_3", "sma_024", "sma_24@5x", "ema", "bbands_20_inf"])
def test_bad_indicator_names_in_config_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ValidationError, match="indicators"):
        AccountConfig(name="a", indicators=(bad,))


@pytest.mark.parametrize("bad", ["sma_0", "rsi_1", "macd_26_12_9"])
def test_indicator_parameters_out_of_range_are_refused_when_the_run_is_planned(
    bad: str, three_symbol_files: list[Path]
) -> None:
    btc = three_symbol_files[0]
    acct = AccountConfig(name="a", symbols=("BTC/USDT",), indicators=(bad,))  # grammar is fine
    cfg = load_config(None, data=(DataFile(path=str(btc)),), accounts=(acct,), start_ms=None)
    with pytest.raises(ValueError, match=f"account 'a': indicators: indicator '{bad}'"):
        plan_run(cfg)


def test_flow_with_every_kind_and_higher_timeframes_runs_and_keeps_decisions(
    tmp_path: Path, three_symbol_files: list[Path]
) -> None:
    """Extra indicators (every kind, some @4h / @1d) flow through the replay; asking for
    them does not change a single order."""
    from bytewax.testing import run_main
    from helpers import write_config

    from gridflow.control.report import journal_lines
    from gridflow.dataflows.replay import build

    extra = ["wma_20", "rsi_14", "adx_14", "macd_12_26_9", "bbands_20_2", "donchian_20",
             "supertrend_10_3@4h", "hv_24", "hvz_24_48", "ema_20@1d", "trange"]
    acct = (
        '[[accounts]]\nname = "t"\ncapital_quote = 10000.0\nleverage = 2.0\n'
        f"indicators = {extra!r}\n".replace("'", '"')
        + "[accounts.strategy]\nsma_period = 24\natr_period = 14\n"
    )
    write_config(tmp_path / "plain.toml", three_symbol_files)
    write_config(tmp_path / "rich.toml", three_symbol_files, extra="chunk_size = 333\n",
                 account=acct)
    out = {}
    for name in ("plain", "rich"):
        cfg = load_config(tmp_path / f"{name}.toml", db_url=f"sqlite:///{tmp_path / name}.db")
        if name == "rich":
            assert len(plan_run(cfg).indicators["BTC/USDT"]) == 2 + len(extra)
        run_main(build(cfg))
        out[name] = journal_lines(cfg.db_url)
    assert out["plain"] and out["plain"] == out["rich"]


def test_data_of_symbols_no_account_trades_is_skipped(tmp_path: Path,
                                                      three_symbol_files: list[Path]) -> None:
    from bytewax.testing import run_main

    from gridflow.control.report import compute_report
    from gridflow.dataflows.replay import build

    btc, eth, sol = three_symbol_files
    acct = AccountConfig(name="a", symbols=("BTC/USDT",), strategy=GridAtrParams())
    cfg = load_config(None, data=tuple(DataFile(path=str(f)) for f in (btc, eth, sol)),
                      accounts=(acct,), start_ms=None, db_url=f"sqlite:///{tmp_path / 's.db'}")
    plan = plan_run(cfg)
    assert [s for _, s, _ in plan.files] == ["BTC/USDT"]
    run_main(build(cfg))
    assert compute_report(cfg.db_url)["candles"] == 3000


def test_a_live_start_refuses_a_regime_window_longer_than_its_warm_up() -> None:
    """Otherwise every entry stays blocked for (window - 1 - warmup) candles after each
    start, silently; the filters' indicators are planned with the strategy's."""
    strat = GridAtrParams(regime_filter={"window": 720, "bear": "block"},
                          entry_filter={"rsi_band": (30, 70)})
    acct = AccountConfig(name="a", symbols=("BTC/USDT",), strategy=strat)
    short = load_config(None, accounts=(acct,), live={"warmup_candles": 200})
    with pytest.raises(ValueError, match=r"regime_filter.window = 720 .*warmup_candles >= 719"):
        plan_run(short, mode="paper")
    enough = load_config(None, accounts=(acct,), live={"warmup_candles": 719})
    plan = plan_run(enough, mode="paper")
    assert {"regime_720", "rsi_14"} <= set(plan.indicators["BTC/USDT"])
    assert "BTC/USDT" in plan_run(short, mode="replay").indicators  # replay: its data
