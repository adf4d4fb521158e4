"""Cross-venue transfer in the walk-forward: parameters chosen on Binance spot history
replayed on Binance USDⓈ-M perpetual candles (real, ../shared), through the store."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import SHARED

from gridflow.cli import main
from gridflow.data.store import CandleStore
from gridflow.dataflows.sweep_spec import SweepSpec
from gridflow.ops.market_data import import_candle_file
from gridflow.sweep import SweepData, expand_grid, run_sweep
from gridflow.wfo.grade import grade

PERP = SHARED / "data" / "candles" / "binanceusdm_BTC_USDT_1h.csv.gz"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDFLOW_STORE", str(tmp_path / "store"))
    st = CandleStore()
    out = import_candle_file(st, PERP, "binanceusdm")
    assert out["series"] == "binanceusdm:BTC/USDT:USDT@1h" and out["refused"] == {}
    return st


def test_wfo_reports_the_transfer_and_grades_it(store, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'w.db'}"
    argv = ["wfo", "--strategy", "grid_atr", "--param", "atr_start=1,2", "--set", "levels=3",
            "--start", "2024-01-01", "--end", "2024-07-01", "--is-days", "60",
            "--oos-days", "30", "--transfer", "BTC/USDT=binanceusdm:BTC/USDT:USDT@1h",
            "--transfer-days", "60", "--db", db, "--no-progress", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    rep = out["reports"]["BTC/USDT"]
    assert rep["transfer_venue"] == "binanceusdm:BTC/USDT:USDT@1h"
    # the window: the live venue's last 60 days (its data ends 2026-05-17)
    assert rep["transfer_end_ms"] - rep["transfer_start_ms"] == 60 * 86_400_000
    # figures as an independent replay of the last window's parameters gives them
    last = {"atr_start": out["windows"]["BTC/USDT"][-1]["atr_start"]}
    combos, _, _ = expand_grid("grid_atr", {k: [v] for k, v in last.items()}, {"levels": 3})
    spec = SweepSpec(kind="wfo", strategy="grid_atr", space={"atr_start": [1, 2]},
                     base={"levels": 3}, wfo={"is_days": 60, "oos_days": 30})
    fund = spec.funding_file("BTC/USDT")  # the bundled perpetual funding, both sides
    want = {}
    for name, path in (("live", PERP), ("research", spec.candle_file("BTC/USDT")[0])):
        data = SweepData.from_file(path, "BTC/USDT", "1h", fund)
        m = run_sweep(data, spec.account, combos, spec.fees, spec.market("BTC/USDT"),
                      start_ms=rep["transfer_start_ms"], end_ms=rep["transfer_end_ms"]).metrics
        want[name] = float(m["sharpe"][0])
    assert math.isclose(rep["transfer_sharpe_live"], want["live"], rel_tol=1e-9)
    assert math.isclose(rep["transfer_sharpe_research"], want["research"], rel_tol=1e-9)
    ratio = rep["transfer_ratio"]
    if want["research"] > 0:
        assert math.isclose(ratio, want["live"] / want["research"], rel_tol=1e-9)
    else:
        assert ratio is None or not np.isfinite(ratio)
    # the grade scores it (15 of 100 points): the stored letter is the scored one
    assert rep["grade"] == grade({**rep, "transfer_ratio": ratio if ratio is not None
                                  else math.nan})[0]
    # the text report says what the ratio is, or why there is none
    from gridflow.wfo.report_text import transfer_ratio_text

    assert main(argv[:-1]) == 0  # the same run (its results stored), as text
    line = next(ln for ln in capsys.readouterr().out.splitlines()
                if ln.startswith("transfer_ratio "))
    assert line.split(None, 1)[1] == transfer_ratio_text(rep)
    assert ("n/a (" in line) == (not want["research"] > 0)
