"""Walk-forward optimisation (gridflow.wfo.walkforward) on the bundled BTC/USDT 1h data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import gridflow
from gridflow.config.models import AccountConfig, GridAtrParams, GridflowConfig
from gridflow.sweep import METRICS, IndicatorTable, SweepData, run_sweep
from gridflow.wfo.grade import grade, grade_score, window_score
from gridflow.wfo.regimes import REGIMES, regime_label
from gridflow.wfo.stats import (
    annualised_sharpe,
    block_bootstrap_pvalue,
    deflated_sharpe_ratio,
    max_drawdown,
)
from gridflow.wfo.walkforward import WfoConfig, WfoResult, run_walkforward, windows

DAY = 86_400_000
PKG = Path(gridflow.__file__).parent
CANDLES = PKG / "data" / "candles" / "binance_BTC_USDT_1h.csv.gz"
FUNDING = PKG / "data" / "funding" / "binanceusdm_BTC_USDT_funding.csv.gz"
SPACE = {"atr_start": [1, 2, 3], "sl_pct": [0.1, 0.2]}
BASE = {"levels": 3}
START, END = "2022-01-01", "2024-01-01"
ACCOUNT = AccountConfig()


@pytest.fixture(scope="module")
def data() -> SweepData:
    return SweepData.from_file(CANDLES, funding=FUNDING)


@pytest.fixture(scope="module")
def cfg() -> WfoConfig:
    return WfoConfig(is_days=180, oos_days=90, start_ms=START, end_ms=END, n_boot=500)


@pytest.fixture(scope="module")
def run(data, cfg):
    calls: list[tuple[int, int]] = []
    res = run_walkforward(data, ACCOUNT, "grid_atr", SPACE, cfg, base=BASE,
                          progress=lambda done, total: calls.append((done, total)))
    return res, calls


@pytest.fixture(scope="module")
def res(run) -> WfoResult:
    return run[0]


def oos_daily(data, w: dict) -> np.ndarray:
    """Daily OOS equity of a window's best combination, from a fresh run_sweep."""
    combo = GridAtrParams(**BASE, **w["params"])
    r = run_sweep(data, ACCOUNT, [combo], start_ms=w["oos_start_ms"], end_ms=w["oos_end_ms"],
                  daily=True)
    d = r.daily[0]
    return d[np.isfinite(d)]


# --- config ---------------------------------------------------------------------------

def test_config_defaults_and_dates():
    c = WfoConfig()
    assert (c.is_days, c.oos_days, c.step_days, c.step) == (365, 90, None, 90)
    assert (c.min_trades, c.perturbations, c.n_boot, c.seed, c.metric) == (
        10, (-0.2, -0.1, 0.1, 0.2), 2000, 0, "score")
    c = WfoConfig(start_ms="2022-01-01", end_ms="2023-06-01T12:00")
    main = GridflowConfig(start_ms="2022-01-01", end_ms="2023-06-01T12:00")
    assert (c.start_ms, c.end_ms) == (main.start_ms, main.end_ms) == (1640995200000,
                                                                       1685620800000)
    assert WfoConfig(start_ms=5, step_days=120).start_ms == 5
    assert WfoConfig(step_days=120).step == 120


@pytest.mark.parametrize("kw", [
    {"is_days": 6}, {"oos_days": 0}, {"step_days": 30}, {"unknown": 1},
    {"start_ms": "2023-01-01", "end_ms": "2022-01-01"}, {"start_ms": "not a date"},
    {"metric": "max_drawdown"}, {"perturbations": (0.1, 0.0)}, {"perturbations": (-1.0,)},
    {"n_boot": 0},
])
def test_config_refuses(kw):
    with pytest.raises(ValidationError):
        WfoConfig(**kw)


def test_config_is_frozen():
    with pytest.raises(ValidationError):
        WfoConfig().is_days = 30


# --- windows --------------------------------------------------------------------------

def test_window_boundaries(data, cfg):
    ws = windows(data, cfg)
    assert len(ws) == 6  # OOS 2022-06-30 .. 2023-12-22; a 10-day remainder is dropped
    assert ws[0].is_start_ms == cfg.start_ms
    for k, w in enumerate(ws):
        assert w.index == k
        assert w.is_end_ms - w.is_start_ms == 180 * DAY
        assert w.oos_end_ms - w.oos_start_ms == 90 * DAY
        assert w.is_start_ms < w.is_end_ms == w.oos_start_ms < w.oos_end_ms <= cfg.end_ms
    for a, b in zip(ws, ws[1:]):
        assert b.oos_start_ms == a.oos_end_ms  # contiguous OOS
        assert b.is_start_ms - a.is_start_ms == 90 * DAY


def test_window_partial_last_oos(data, cfg):
    keep = windows(data, cfg.model_copy(update={"end_ms": cfg.end_ms + 40 * DAY}))
    assert len(keep) == 7  # 50 days left >= 45: kept, cut at the end
    assert keep[-1].oos_end_ms == cfg.end_ms + 40 * DAY
    assert keep[-1].oos_end_ms - keep[-1].oos_start_ms == 50 * DAY
    drop = windows(data, cfg.model_copy(update={"end_ms": cfg.end_ms + 34 * DAY}))
    assert len(drop) == 6  # 44 days < 45: dropped


def test_window_step_and_data_bounds(data):
    ws = windows(data, WfoConfig(is_days=30, oos_days=10, step_days=20,
                                 start_ms="2000-01-01", end_ms="2018-04-01"))
    assert ws[0].is_start_ms == int(data.ts[0])  # clipped to the first candle
    assert all(b.oos_start_ms - a.oos_end_ms == 10 * DAY for a, b in zip(ws, ws[1:]))
    tail = windows(data, WfoConfig(is_days=30, oos_days=10, start_ms=int(data.ts[-1]) - 45 * DAY))
    assert tail[-1].oos_end_ms == int(data.ts[-1]) + data.tf_ms  # cut at the last close


def test_windows_errors(data):
    with pytest.raises(ValueError, match=r"is_days=4000 \+ oos_days=90"):
        windows(data, WfoConfig(is_days=4000))
    with pytest.raises(ValueError, match="is_days=180"):
        windows(data, WfoConfig(is_days=180, oos_days=90, start_ms="2022-01-01",
                                end_ms="2022-07-01"))
    with pytest.raises(ValueError, match="no walk-forward window"):
        windows(data, WfoConfig(is_days=7, start_ms="2030-01-01"))
    with pytest.raises(ValueError, match="no walk-forward window"):
        run_walkforward(data, ACCOUNT, "grid_atr", SPACE, WfoConfig(is_days=4000))


# --- run ------------------------------------------------------------------------------

def test_shapes_and_rows(res, data, cfg):
    ws = windows(data, cfg)
    C = 6
    assert res.report["n_windows"] == len(res.windows) == len(ws)
    assert res.report["n_combos"] == len(res.params) == C
    assert res.report["invalid_combos"] == 0
    assert len(res.results) == len(ws) * 2 * C
    row = res.results[0]
    assert set(row) == {"window", "phase", "combo_id", "params", "score", *METRICS}
    for w, wr in zip(ws, res.windows):
        assert (wr["index"], wr["window"], wr["is_start_ms"], wr["is_end_ms"],
                wr["oos_start_ms"], wr["oos_end_ms"]) == (
            w.index, w.index, w.is_start_ms, w.is_end_ms, w.oos_start_ms, w.oos_end_ms)
        assert wr["params"] == res.params[wr["best_combo_id"]]
    assert {tuple(sorted(p.items())) for p in res.params} == {
        (("atr_start", a), ("sl_pct", s)) for a in (1, 2, 3) for s in (0.1, 0.2)}


def test_best_is_argmax_of_stored_is_scores(res):
    for wr in res.windows:
        for phase in ("is", "oos"):
            rows = [r for r in res.results if r["window"] == wr["window"] and r["phase"] == phase]
            assert [r["combo_id"] for r in rows] == list(range(len(res.params)))
            for r in rows:
                want = window_score(r["total_return"], r["max_drawdown"], r["trades"],
                                    r["sharpe"], 10)
                assert r["score"] == pytest.approx(want) or r["score"] == want == -math.inf
            if phase == "is":
                scores = [r["score"] for r in rows]
                assert wr["best_combo_id"] == int(np.argmax(scores))
                assert wr["score"] == max(scores)
                best = rows[wr["best_combo_id"]]
                assert wr["is_trades"] == best["trades"]
                assert wr["is_net_pnl"] == pytest.approx(best["net_pnl"], abs=1e-6)
            else:
                best = rows[wr["best_combo_id"]]
                assert (wr["oos_trades"], wr["oos_max_drawdown"]) == (
                    best["trades"], best["max_drawdown"])
                assert wr["oos_net_pnl"] == pytest.approx(best["net_pnl"], abs=1e-6)


def test_best_oos_metrics_match_separate_sweep(res, data):
    for wr in res.windows:
        combo = GridAtrParams(**BASE, **wr["params"])
        sep = run_sweep(data, ACCOUNT, [combo], start_ms=wr["oos_start_ms"],
                        end_ms=wr["oos_end_ms"], table=IndicatorTable(data))
        row = next(r for r in res.results if r["window"] == wr["window"]
                   and r["phase"] == "oos" and r["combo_id"] == wr["best_combo_id"])
        for k in METRICS:
            a, b = row[k], sep.metrics[k][0].item()
            assert a == b or (math.isnan(a) and math.isnan(b)), k


def test_stitched_curve(res, data):
    ts, eq = res.stitched
    assert ts.dtype == np.int64 and eq.dtype == np.float64 and ts.shape == eq.shape
    assert np.all(np.diff(ts) > 0)
    assert ts[0] == res.windows[0]["oos_start_ms"] and eq[0] == ACCOUNT.capital_quote
    assert ts[-1] == res.windows[-1]["oos_end_ms"]
    cap = ACCOUNT.capital_quote
    rets, growth = [], 1.0
    for wr in res.windows:
        d = oos_daily(data, wr)
        rets.append(np.diff(np.concatenate(([cap], d))) / np.concatenate(([cap], d[:-1])))
        growth *= d[-1] / cap
        oos_row = next(r for r in res.results if r["window"] == wr["window"]
                       and r["phase"] == "oos" and r["combo_id"] == wr["best_combo_id"])
        assert d[-1] / cap == pytest.approx(1.0 + oos_row["total_return"], rel=1e-12)
    r = np.concatenate(rets)
    assert eq.size == r.size + 1 == res.report["oos_days"] + 1
    np.testing.assert_allclose(eq, cap * np.concatenate(([1.0], np.cumprod(1 + r))), rtol=1e-12)
    prod = np.prod([1 + w["oos_net_pnl"] / cap for w in res.windows])
    assert res.report["oos_total_return"] == pytest.approx(prod - 1.0, rel=1e-9, abs=1e-12)
    assert res.report["oos_total_return"] == pytest.approx(growth - 1.0, rel=1e-9, abs=1e-12)
    assert res.report["oos_sharpe"] == pytest.approx(annualised_sharpe(r, 365))
    assert res.report["oos_max_drawdown"] == pytest.approx(max_drawdown(eq))


def test_report_aggregates(res, data, cfg):
    rep, ws = res.report, res.windows
    n = len(ws)
    assert rep["consistency"] == sum(w["oos_net_pnl"] > 0 for w in ws) / n
    assert rep["oos_trades"] == sum(w["oos_trades"] for w in ws)
    assert rep["oos_net_pnl_windows"] == pytest.approx(sum(w["oos_net_pnl"] for w in ws))
    assert rep["oos_net_pnl"] == pytest.approx(res.stitched[1][-1] - ACCOUNT.capital_quote)
    assert rep["oos_net_pnl"] == pytest.approx(rep["oos_total_return"] * ACCOUNT.capital_quote)
    ratios = [(w["oos_sharpe"] if math.isfinite(w["oos_sharpe"]) else 0.0) / w["is_sharpe"]
              for w in ws if w["is_sharpe"] > 0]
    if ratios:
        assert rep["oos_is_ratio"] == pytest.approx(np.mean(ratios))
    else:
        assert math.isnan(rep["oos_is_ratio"])
    assert set(rep["regimes"]) == set(REGIMES) and sum(rep["regimes"].values()) == n
    for w in ws:
        lo, hi = data.index(w["oos_start_ms"], 0), data.index(w["oos_end_ms"], len(data))
        assert w["regime"] == regime_label(data.close[lo:hi], data.tf_ms)
    eq = res.stitched[1]
    r = eq[1:] / eq[:-1] - 1.0
    trials = [row["sharpe"] / math.sqrt(365) for row in res.results if row["phase"] == "is"]
    d = deflated_sharpe_ratio(r, trials)
    assert rep["dsr"] == pytest.approx(d.dsr) and rep["dsr_trials"] == d.n_trials == n * 6
    assert rep["mc_pvalue"] == block_bootstrap_pvalue(r, n_boot=cfg.n_boot, seed=cfg.seed)
    assert rep["steps"] > 0 and rep["seconds"] >= 0


def test_stability(res, data):
    stabs = [w["stability"] for w in res.windows]
    assert all(0.0 <= s <= 1.0 for s in stabs)
    assert res.report["stability"] == pytest.approx(np.mean(stabs))
    w = res.windows[0]
    a0, s0 = float(w["params"]["atr_start"]), w["params"]["sl_pct"]
    nbs = [GridAtrParams(**BASE, atr_start=a0 * (1 + p), sl_pct=s0) for p in (-.2, -.1, .1, .2)]
    nbs += [GridAtrParams(**BASE, atr_start=a0, sl_pct=s0 * (1 + p)) for p in (-.2, -.1, .1, .2)]
    assert w["neighbours"] == len(nbs) == 8
    m = run_sweep(data, ACCOUNT, nbs, start_ms=w["is_start_ms"], end_ms=w["is_end_ms"]).metrics
    sc = window_score(m["total_return"], m["max_drawdown"], m["trades"], m["sharpe"], 10)
    bar = 0.5 * w["score"] if w["score"] > 0 else w["score"]
    assert w["stability"] == pytest.approx(np.mean(sc >= bar))


def test_grade_and_json(res):
    rep = res.report
    assert rep["grade"] in {"A", "B", "C", "D", "F"}
    assert grade(rep) == (rep["grade"], rep["grade_reasons"])
    assert rep["grade_score"] == grade_score(rep).score
    assert sum(rep["grade_points"].values()) >= rep["grade_score"]  # caps only lower it
    back = json.loads(json.dumps(rep))
    assert set(back) == set(rep) and back["config"]["start_ms"] == 1640995200000
    json.dumps(res.windows)


def test_progress(run):
    res, calls = run
    done = [c[0] for c in calls]
    assert len(calls) == 5 * res.report["n_windows"]  # IS, OOS, OOS daily, nbs, IS daily
    assert done == sorted(done) and calls[-1] == (res.report["steps"], res.report["steps"])


def test_no_neighbours_and_other_metric(data):
    """``levels`` 1 can't move by ±20 %: no neighbour, stability NaN, planned total shrinks;
    ``metric="net_pnl"`` picks the best net PnL."""
    calls: list[tuple[int, int]] = []
    cfg = WfoConfig(is_days=30, oos_days=15, start_ms="2023-01-01", end_ms="2023-04-01",
                    metric="net_pnl", n_boot=50)
    res = run_walkforward(data, ACCOUNT, "grid_atr", {"levels": [1], "side": ["long", "short"]},
                          cfg, progress=lambda d, t: calls.append((d, t)))
    assert res.report["n_combos"] == 2 and res.report["n_windows"] == 4
    assert all(w["neighbours"] == 0 and math.isnan(w["stability"]) for w in res.windows)
    assert math.isnan(res.report["stability"])
    assert calls[0][1] > calls[-1][1] == calls[-1][0] == res.report["steps"]
    for w in res.windows:
        pnl = [r["net_pnl"] for r in res.results if r["window"] == w["window"]
               and r["phase"] == "is"]
        assert w["best_combo_id"] == int(np.argmax(pnl))
    assert grade(res.report)[0] == res.report["grade"]


def test_all_invalid_combos(data):
    with pytest.raises(ValueError, match="all 1 parameter combinations are invalid"):
        run_walkforward(data, ACCOUNT, "grid_trend", {"ema_fast": [50], "ema_slow": [20]},
                        WfoConfig(is_days=30, oos_days=15, start_ms="2023-01-01"))
