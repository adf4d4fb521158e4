"""A walk-forward window's Sharpe and net PnL come from one equity curve over one window.

The regression: the window table showed an OOS Sharpe of -0.03 beside an OOS net PnL of
+441.56 USDT. The Sharpe was the sweep's (daily returns from the first day's close on),
the PnL the whole window's: a first day that moved most put their signs apart.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gridflow
from gridflow import metrics as gm
from gridflow.config.models import AccountConfig, GridAtrParams
from gridflow.sweep import SweepData, run_sweep
from gridflow.wfo.walkforward import WfoConfig, run_walkforward

PKG = Path(gridflow.__file__).parent
SPACE = {"atr_start": [1, 2, 3], "sl_frac": [0.05, 0.1], "side": ["long", "short"]}
BASE = {"levels": 3}
ACCOUNT = AccountConfig()


@pytest.fixture(scope="module")
def data() -> SweepData:
    return SweepData.from_file(PKG / "data" / "candles" / "binance_BTC_USDT_1h.csv.gz",
                               funding=PKG / "data" / "funding" /
                               "binanceusdm_BTC_USDT_funding.csv.gz")


@pytest.fixture(scope="module")
def res(data):
    """BTC/USDT 2019-2026, 365 / 90-day windows: 26 windows, two of which used to show
    a positive Sharpe beside a loss, or the other way round."""
    cfg = WfoConfig(is_days=365, oos_days=90, start_ms="2019-01-01", end_ms="2026-05-01",
                    n_boot=100)
    return run_walkforward(data, ACCOUNT, "grid_atr", SPACE, cfg, base=BASE)


def _daily(data, w: dict, phase: str) -> np.ndarray:
    combo = GridAtrParams(**BASE, **w["params"])
    r = run_sweep(data, ACCOUNT, [combo], start_ms=w[f"{phase}_start_ms"],
                  end_ms=w[f"{phase}_end_ms"], daily=True)
    d = r.daily[0]
    return d[np.isfinite(d)]


def _agree(sharpe: float, pnl: float) -> bool:
    """What one curve guarantees: a profit has a positive (or undefined) Sharpe and a
    negative Sharpe a loss."""
    return not (pnl > 0 and sharpe <= 0) and not (sharpe < 0 and pnl >= 0)


def test_the_sweep_rows_sharpe_used_to_disagree_with_the_windows_pnl(res):
    """The case exists in this run: the result row of a window's best combination has a
    Sharpe whose sign differs from the window's net PnL (the old window figures)."""
    old = []
    for w in res.windows:
        row = next(r for r in res.results if r["window"] == w["window"]
                   and r["phase"] == "oos" and r["combo_id"] == w["best_combo_id"])
        if math.isfinite(row["sharpe"]) and row["sharpe"] * row["net_pnl"] < 0:
            old.append(w["window"])
    assert old, "no window whose old figures disagreed: the regression case is gone"


def test_every_window_sharpe_and_pnl_come_from_one_curve_and_agree(res, data):
    cap = ACCOUNT.capital_quote
    for w in res.windows:
        for phase in ("is", "oos"):
            d = _daily(data, w, phase)
            want = gm.sharpe(gm.simple_returns(d, cap), 365)
            got = w[f"{phase}_sharpe"]
            assert got == pytest.approx(want, rel=1e-12) or math.isnan(got) == math.isnan(want)
            assert w[f"{phase}_net_pnl"] == pytest.approx(d[-1] - cap, abs=1e-9)
            assert _agree(got, w[f"{phase}_net_pnl"]), (w["window"], phase)


def test_the_report_figures_are_of_the_stitched_curve(res):
    rep, (_, eq) = res.report, res.stitched
    cap = ACCOUNT.capital_quote
    assert rep["oos_net_pnl"] == pytest.approx(eq[-1] - cap)
    assert np.sign(rep["oos_net_pnl"]) == np.sign(rep["oos_total_return"])
    assert _agree(rep["oos_sharpe"], rep["oos_net_pnl"])
    summed = sum(w["oos_net_pnl"] for w in res.windows)
    assert rep["oos_net_pnl_windows"] == pytest.approx(summed)
    assert rep["oos_net_pnl_windows"] != pytest.approx(rep["oos_net_pnl"])  # not compounded


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-0.3, 0.3), min_size=1, max_size=60), st.floats(10.0, 1e6))
def test_one_curve_from_its_base_never_shows_a_profit_with_a_negative_sharpe(steps, base):
    """For any positive curve: the Sharpe of its returns from the base and its net PnL
    never disagree the way the window table did (arithmetic mean >= geometric mean)."""
    curve = base * np.cumprod(1.0 + np.asarray(steps))
    assume(abs(curve[-1] / base - 1.0) > 1e-9)  # a flat end: rounding decides the sign
    r = gm.simple_returns(curve, base)
    assert r.size == curve.size and r[0] == pytest.approx(curve[0] / base - 1.0)
    assert _agree(gm.sharpe(r, 365), float(curve[-1] - base))
