"""Sweep and walk-forward storage (real SQLite files): round trips, idempotent
rewrites, non-finite metrics, parameter columns, filters."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from pg_helpers import pg_schema
from sqlalchemy import func, select, text

from gridflow.journal.schema import open_store
from gridflow.journal.sweep_store import (
    METRICS,
    SweepResultRow,
    WfoWindowRow,
    create_sweep,
    finish_sweep,
    list_sweeps,
    param_names,
    read_results,
    read_wfo,
    write_results,
    write_wfo,
)

GRID = {"sma_period": [12, 24], "atr_start": [1.0, 1.5, 2.5], "side": ["long", "short"]}
COMBOS = [dict(zip(GRID, v)) for v in itertools.product(*GRID.values())]
SYMBOLS = ["ETH/USDT", "BTC/USDT"]
DAY = 86_400_000
T0 = 1_704_067_200_000


def metrics(p: dict, symbol: str = "BTC/USDT", window: int = -1, phase: str = "full",
            bump: float = 0.0) -> dict:
    """Metrics as a pure function of the parameters and the row key."""
    s = SYMBOLS.index(symbol) + 1
    base = p["atr_start"] * p["sma_period"] / 10 * (1 if p["side"] == "long" else -0.5)
    base += 0.1 * s + 0.01 * window + (0.3 if phase == "oos" else 0.0) + bump
    return {"net_pnl": 100 * base, "total_return": base / 100, "max_drawdown": 0.01 * s,
            "sharpe": base, "sortino": 1.5 * base, "calmar": 2 * base, "profit_factor": 1 + s,
            "win_rate": 0.5, "trades": p["sma_period"] + s, "max_consecutive_losses": s,
            "exposure": 0.25, "fees": 1.5 * s, "funding": -0.5, "score": base - 1}


def rows(sweep_id: str, symbol: str, window: int = -1, phase: str = "full",
         bump: float = 0.0) -> list[dict]:
    return [{"sweep_id": sweep_id, "symbol": symbol, "window": window, "phase": phase,
             "combo_id": i, "params": p, **metrics(p, symbol, window, phase, bump)}
            for i, p in enumerate(COMBOS)]


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'sweeps.db'}"


def _count(url: str, table) -> int:
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()
    finally:
        engine.dispose()


def test_open_store_creates_the_sweep_tables_without_importing_them(db: str) -> None:
    code = ("import sys; from gridflow.journal.schema import open_store; "
            "assert 'gridflow.journal.sweep_store' not in sys.modules; "
            f"open_store({db!r}).dispose()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    engine = open_store(db)
    with engine.connect() as conn:
        names = set(conn.execute(text("SELECT name FROM sqlite_master")).scalars())
    engine.dispose()
    assert {"sweeps", "sweep_results", "wfo_windows", "wfo_summaries", "runs"} <= names


def test_sweeps_round_trip_newest_first_and_idempotent(db: str) -> None:
    spec = {"grid": GRID, "window": {"start_ms": T0, "end_ms": T0 + 90 * DAY},
            "account": {"capital_quote": 10_000.0, "leverage": np.int64(2)}}
    create_sweep(db, "old", "sweep", "grid_atr", SYMBOLS, spec, len(COMBOS), created_at_ms=T0)
    create_sweep(db, "new", "wfo", "envelope_dca", ["BTC/USDT"], {}, 3, created_at_ms=T0 + 1)
    create_sweep(db, "old", "sweep", "grid_atr", SYMBOLS, spec, len(COMBOS), created_at_ms=T0 + 5)
    sweeps = list_sweeps(db)
    assert [s["sweep_id"] for s in sweeps] == ["new", "old"]
    old = sweeps[1]
    assert (old["kind"], old["strategy"], old["symbols"], old["n_combos"]) == (
        "sweep", "grid_atr", SYMBOLS, len(COMBOS))
    assert (old["status"], old["created_at_ms"], old["elapsed_s"]) == ("running", T0, 0.0)
    assert json.loads(old["spec_json"])["account"]["leverage"] == 2
    assert json.loads(old["spec_json"])["grid"] == GRID
    with pytest.raises(ValueError, match="SWEEP_SPEC_MISMATCH"):
        create_sweep(db, "old", "sweep", "grid_atr", SYMBOLS, {**spec, "x": 1}, len(COMBOS))
    with pytest.raises(ValueError, match="kind"):
        create_sweep(db, "bad", "grid", "grid_atr", SYMBOLS, spec, 1)
    finish_sweep(db, "old", 12.5)
    finish_sweep(db, "old", 13.0)
    done = {s["sweep_id"]: s for s in list_sweeps(db)}
    assert len(done) == 2
    assert (done["old"]["status"], done["old"]["elapsed_s"]) == ("done", 13.0)
    assert done["new"]["status"] == "running"
    with pytest.raises(KeyError):
        finish_sweep(db, "missing", 1.0)


def test_results_round_trip_with_parameter_columns(db: str) -> None:
    written = rows("s", "ETH/USDT") + rows("s", "BTC/USDT") + rows("other", "BTC/USDT")
    assert write_results(db, written) == 3 * len(COMBOS)
    df = read_results(db, "s")
    assert len(df) == 2 * len(COMBOS)
    assert param_names(df) == sorted(GRID) == df.attrs["params"]
    assert list(df.columns) == ["sweep_id", "symbol", "window", "phase", "combo_id",
                                *sorted(GRID), *METRICS]
    assert df["sma_period"].dtype == np.int64 and df["atr_start"].dtype == np.float64
    assert pd.api.types.is_string_dtype(df["side"])
    assert df["trades"].dtype == np.int64 and df["sharpe"].dtype == np.float64
    # sorted by (symbol, window, phase, combo_id)
    assert list(df["symbol"]) == ["BTC/USDT"] * len(COMBOS) + ["ETH/USDT"] * len(COMBOS)
    assert list(df["combo_id"]) == list(range(len(COMBOS))) * 2
    for r in df.to_dict("records"):
        p = {k: r[k] for k in GRID}
        assert p == COMBOS[r["combo_id"]]
        assert {m: r[m] for m in METRICS} == pytest.approx(metrics(p, r["symbol"]))
    assert read_results(db, "missing").empty


def test_results_rewrite_updates_without_duplicates(tmp_path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'idem.db'}")
    try:
        write_results(engine, rows("s", "BTC/USDT"))
        assert write_results(engine, rows("s", "BTC/USDT")) == len(COMBOS)
        # a batch with a key twice keeps its last row
        batch = rows("s", "BTC/USDT", bump=5.0) + rows("s", "BTC/USDT", bump=7.0)
        assert write_results(engine, batch) == len(COMBOS)
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(SweepResultRow.__table__))
            assert n.scalar_one() == len(COMBOS)
        df = read_results(engine, "s")
        for r in df.to_dict("records"):
            want = metrics(COMBOS[r["combo_id"]], bump=7.0)
            assert r["sharpe"] == pytest.approx(want["sharpe"])
    finally:
        engine.dispose()


def test_nonfinite_metrics_round_trip(db: str) -> None:
    rs = rows("s", "BTC/USDT")[:4]
    rs[0].update(score=math.nan, sharpe=math.inf)
    rs[1].update(score=-math.inf, profit_factor=math.inf)
    rs[2].update(score=np.float64("nan"), calmar=np.float64("-inf"))
    del rs[3]["funding"]  # missing float metric: stored as NaN
    rs[3]["trades"] = np.float64(rs[3]["trades"])  # a count computed in a float array
    write_results(db, rs)
    df = read_results(db, "s").set_index("combo_id")
    assert math.isnan(df.loc[0, "score"]) and df.loc[0, "sharpe"] == math.inf
    assert df.loc[1, "score"] == -math.inf and df.loc[1, "profit_factor"] == math.inf
    assert math.isnan(df.loc[2, "score"]) and df.loc[2, "calmar"] == -math.inf
    assert math.isnan(df.loc[3, "funding"])
    assert df.loc[3, "trades"] == metrics(COMBOS[3])["trades"] and df["trades"].dtype == np.int64
    assert df.loc[3, "score"] == pytest.approx(metrics(COMBOS[3])["score"])


def test_filters(db: str) -> None:
    for w in range(3):
        for phase in ("is", "oos"):
            for sym in SYMBOLS:
                write_results(db, rows("w", sym, w, phase))
    assert len(read_results(db, "w")) == 3 * 2 * 2 * len(COMBOS)
    one = read_results(db, "w", symbol="ETH/USDT", window=1, phase="oos")
    assert len(one) == len(COMBOS)
    assert set(one["symbol"]) == {"ETH/USDT"} and set(one["window"]) == {1}
    assert set(one["phase"]) == {"oos"}
    assert one["sharpe"].tolist() == pytest.approx(
        [metrics(p, "ETH/USDT", 1, "oos")["sharpe"] for p in COMBOS])
    is_rows = read_results(db, "w", phase="is")
    assert len(is_rows) == 3 * 2 * len(COMBOS) and set(is_rows["phase"]) == {"is"}
    assert list(read_results(db, "w", window=2)["window"].unique()) == [2]


def windows(n: int, bump: float = 0.0) -> list[dict]:
    """Walk-forward windows of 30 days in-sample, 10 out-of-sample; the best in-sample
    combination is the one with the largest in-sample Sharpe."""
    out = []
    for w in range(n):
        start = T0 + w * 10 * DAY
        best = max(range(len(COMBOS)), key=lambda i: metrics(COMBOS[i], window=w)["sharpe"])
        m_is = metrics(COMBOS[best], window=w, phase="is", bump=bump)
        m_oos = metrics(COMBOS[best], window=w, phase="oos", bump=bump)
        out.append({"window": w, "is_start_ms": start, "is_end_ms": start + 30 * DAY,
                    "oos_start_ms": start + 30 * DAY, "oos_end_ms": start + 40 * DAY,
                    "best_combo_id": best, "params": COMBOS[best],
                    "regime": ("bull", "bear", "range", "crash")[w % 4],
                    "is_sharpe": m_is["sharpe"], "oos_sharpe": m_oos["sharpe"],
                    "is_net_pnl": m_is["net_pnl"], "oos_net_pnl": m_oos["net_pnl"],
                    "is_trades": m_is["trades"], "oos_trades": m_oos["trades"],
                    "oos_max_drawdown": m_oos["max_drawdown"]})
    return out


def test_wfo_round_trip_and_rewrite(db: str) -> None:
    report = {"dsr": 0.93, "mc_p_value": 0.04, "consistency": 0.75, "oos_is_ratio": 0.6,
              "stability": math.nan, "worst": -math.inf, "regimes": ["bull", "bear"],
              "note": "ok"}
    write_wfo(db, "w", "BTC/USDT", windows(5), report, "B")
    write_wfo(db, "w", "ETH/USDT", windows(2), {"dsr": 0.1}, "D")
    frame, summaries = read_wfo(db, "w")
    assert len(frame) == 7 and param_names(frame) == sorted(GRID)
    assert list(frame["symbol"]) == ["BTC/USDT"] * 5 + ["ETH/USDT"] * 2
    btc = frame[frame["symbol"] == "BTC/USDT"].to_dict("records")
    for got, want in zip(btc, windows(5)):
        assert {k: got[k] for k in GRID} == want["params"]
        want = {k: v for k, v in want.items() if k != "params"}
        assert {k: got[k] for k in want} == pytest.approx(want)
    assert frame["is_start_ms"].dtype == np.int64 and frame["oos_sharpe"].dtype == np.float64
    assert summaries["ETH/USDT"] == {"grade": "D", "dsr": 0.1}
    got = summaries["BTC/USDT"]
    assert math.isnan(got.pop("stability")) and got.pop("worst") == -math.inf
    assert got == {"grade": "B", **{k: v for k, v in report.items()
                                     if k not in ("stability", "worst")}}
    # rewrite BTC with fewer windows and other numbers: stale windows go, values change
    write_wfo(db, "w", "BTC/USDT", windows(3, bump=1.0), {"dsr": 0.5}, "C")
    write_wfo(db, "w", "BTC/USDT", windows(3, bump=1.0), {"dsr": 0.5}, "C")
    frame, summaries = read_wfo(db, "w")
    assert _count(db, WfoWindowRow.__table__) == len(frame) == 5
    btc = frame[frame["symbol"] == "BTC/USDT"]
    assert btc["window"].tolist() == [0, 1, 2]
    assert btc["oos_sharpe"].tolist() == pytest.approx(
        [w["oos_sharpe"] for w in windows(3, bump=1.0)])
    assert summaries["BTC/USDT"] == {"grade": "C", "dsr": 0.5}
    assert read_wfo(db, "missing")[0].empty and read_wfo(db, "missing")[1] == {}


def test_bad_rows_are_refused(db: str) -> None:
    good = rows("s", "BTC/USDT")[0]
    with pytest.raises(ValueError, match="unknown columns"):
        write_results(db, [{**good, "sharp": 1.0}])
    with pytest.raises(ValueError, match="missing column 'combo_id'"):
        write_results(db, [{k: v for k, v in good.items() if k != "combo_id"}])
    with pytest.raises(ValueError, match="clash"):
        write_results(db, [{**good, "params": {"window": 3}}])
    assert read_results(db, "s").empty


def test_postgresql_round_trip() -> None:
    with pg_schema() as url:
        sid = f"pg-{time.time_ns()}"
        create_sweep(url, sid, "wfo", "grid_atr", SYMBOLS, {"grid": GRID}, len(COMBOS))
        create_sweep(url, sid, "wfo", "grid_atr", SYMBOLS, {"grid": GRID}, len(COMBOS))
        rs = rows(sid, "BTC/USDT", 0, "is") + rows(sid, "BTC/USDT", 0, "is", bump=1.0)
        rs[-1].update(score=math.nan, sharpe=-math.inf)
        assert write_results(url, rs) == len(COMBOS)  # one statement, each key once
        write_results(url, rs)
        df = read_results(url, sid)
        assert len(df) == len(COMBOS) and df["sma_period"].dtype == np.int64
        assert math.isnan(df["score"].iloc[-1]) and df["sharpe"].iloc[-1] == -math.inf
        assert df["net_pnl"].iloc[0] == pytest.approx(metrics(COMBOS[0], window=0, phase="is",
                                                              bump=1.0)["net_pnl"])
        write_wfo(url, sid, "BTC/USDT", windows(3), {"dsr": math.nan, "x": [math.inf]}, "B")
        write_wfo(url, sid, "BTC/USDT", windows(2), {"dsr": math.nan, "x": [math.inf]}, "B")
        frame, summaries = read_wfo(url, sid)
        assert frame["window"].tolist() == [0, 1]
        assert math.isnan(summaries["BTC/USDT"]["dsr"]) and summaries["BTC/USDT"]["x"] == [math.inf]
        finish_sweep(url, sid, 1.0)
        assert next(s for s in list_sweeps(url) if s["sweep_id"] == sid)["status"] == "done"
