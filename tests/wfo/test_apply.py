"""``gridflow wfo --apply PRESET.toml``: the chosen parameters written as a preset with
their grade and windows, which ``gridflow replay --preset`` runs and whose journaled
config carries the grade (through the real CLI, on the bundled BTC/USDT 1h candles)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from gridflow.config.loader import load_config
from gridflow.config.strategies import GridAtrParams
from gridflow.config.validated import Validation
from gridflow.control.app.params_form import build_account, validation_label
from gridflow.journal.sweep_store import read_wfo



def gridflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gridflow.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)

WFO = ("wfo", "--strategy", "grid_atr", "--param", "atr_start=1,2", "--param", "sl_frac=0.1",
       "--set", "levels=3", "--start", "2022-01-01", "--end", "2023-07-01",
       "--is-days", "180", "--oos-days", "90", "--no-progress")


def day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("apply")
    db = f"sqlite:///{tmp / 'wfo.db'}"
    res = gridflow(*WFO, "--db", db, "--json", "--apply", str(tmp / "validated.toml"),
                    cwd=tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    return tmp, db, json.loads(res.stdout)


def test_the_preset_holds_the_last_windows_choice_and_its_grade(applied) -> None:
    tmp, db, out = applied
    rep, wins = out["reports"]["BTC/USDT"], out["windows"]["BTC/USDT"]
    cfg = load_config(tmp / "validated.toml")
    (acct,) = cfg.accounts
    (st,) = acct.strategies
    assert isinstance(st, GridAtrParams) and st.symbols == ("BTC/USDT",) and st.levels == 3
    assert (st.atr_start, st.sl_frac) == (wins[-1]["atr_start"], 0.1)
    v = st.validated
    assert (v.grade, v.score, v.sweep_id) == (rep["grade"], rep["grade_score"], out["sweep_id"])
    assert (v.symbol, v.timeframe, v.strategy, v.windows) == ("BTC/USDT", "1h", "grid_atr",
                                                              len(wins))
    assert (v.chosen_from, v.chosen_to) == (day(wins[-1]["is_start_ms"]),
                                            day(wins[-1]["is_end_ms"]))
    assert (v.oos_from, v.oos_to) == (day(wins[0]["oos_start_ms"]), day(wins[-1]["oos_end_ms"]))
    assert list(v.reasons) == rep["grade_reasons"]
    _, summaries = read_wfo(db, out["sweep_id"])
    assert summaries["BTC/USDT"]["grade"] == v.grade
    # the same window and account as the walk-forward
    assert (day(cfg.start_ms), day(cfg.end_ms)) == ("2022-01-01", "2023-07-01")


def test_replay_of_the_preset_journals_the_grade_and_window(applied) -> None:
    tmp, _, out = applied
    journal = tmp / "replay.db"
    res = gridflow("replay", "--preset", str(tmp / "validated.toml"), "--db",
                    f"sqlite:///{journal}", "--json", "--no-progress", cwd=tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    with sqlite3.connect(journal) as conn:
        (config_json,) = conn.execute("SELECT config_json FROM runs").fetchone()
    st = json.loads(config_json)["accounts"][0]["strategies"][0]
    rep = out["reports"]["BTC/USDT"]
    assert st["validated"]["grade"] == rep["grade"]
    assert st["validated"]["chosen_to"] == day(out["windows"]["BTC/USDT"][-1]["is_end_ms"])


def test_apply_never_overwrites_a_file(applied) -> None:
    tmp, db, _ = applied
    before = (tmp / "validated.toml").read_text()
    res = gridflow(*WFO, "--db", db, "--apply", str(tmp / "validated.toml"), cwd=tmp)
    assert res.returncode == 2 and "exists" in res.stderr and "Traceback" not in res.stderr
    assert (tmp / "validated.toml").read_text() == before


def test_editing_validated_parameters_in_the_app_drops_the_validation(applied) -> None:
    tmp, _, _ = applied
    (acct,) = load_config(tmp / "validated.toml").accounts
    same = build_account(acct, [{}], ["BTC/USDT"])
    assert isinstance(same.strategies[0].validated, Validation)
    v = same.strategies[0].validated
    assert validation_label(same.strategies[0]) == (
        f"validated: grade {v.grade} ({v.score:g}/100), chosen on {v.chosen_from}..{v.chosen_to}")
    edited = build_account(acct, [{"atr_start": 2.5}], ["BTC/USDT"])
    assert edited.strategies[0].atr_start == 2.5 and edited.strategies[0].validated is None
    assert validation_label(edited.strategies[0]) == "not validated"


def test_regime_filter_from_blocks_the_regimes_with_a_negative_mean_oos_sharpe() -> None:
    from gridflow.wfo.apply import regime_filter_from

    wins = [{"regime": "bear", "oos_sharpe": -1.0}, {"regime": "bear", "oos_sharpe": 0.4},
            {"regime": "bull", "oos_sharpe": 1.2}, {"regime": "crash", "oos_sharpe": -0.1},
            {"regime": "range", "oos_sharpe": float("nan")}]
    assert regime_filter_from(wins, 480) == {"window": 480, "bear": "block", "crash": "block"}
    assert regime_filter_from([{"regime": "bull", "oos_sharpe": 0.5}], 480) is None
    every = [{"regime": r, "oos_sharpe": -1.0} for r in ("crash", "bull", "bear", "range")]
    assert regime_filter_from(every, 480) is None  # a filter blocking all is no strategy


def test_the_suggested_label_window_is_the_walk_forwards_oos_span_capped_for_live():
    from gridflow.wfo.apply import label_window

    assert label_window(90, "1h") == 2160
    assert label_window(30, "4h") == 180
    assert label_window(365, "1h") == 5000  # a live start fetches at most 5000 candles
    assert label_window(90, "1d") == 90


def test_apply_regime_filter_writes_the_suggestion_marked_as_not_validated(applied) -> None:
    tmp, db, out = applied
    from gridflow.wfo.apply import regime_filter_from

    res = gridflow(*WFO, "--db", db, "--apply", str(tmp / "filtered.toml"),
                   "--apply-regime-filter", cwd=tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    (st,) = load_config(tmp / "filtered.toml").accounts[0].strategies
    want = regime_filter_from(out["windows"]["BTC/USDT"], 90 * 24)  # --oos-days 90, 1h
    if want is None:  # every regime had a non-negative mean OOS Sharpe: nothing to block
        assert st.regime_filter is None
    else:
        assert st.regime_filter.model_dump() == {**st.regime_filter.model_dump(), **want}
        assert any("regime_filter" in r and "validate it" in r for r in st.validated.reasons)
    bad = gridflow(*WFO, "--db", db, "--apply-regime-filter", cwd=tmp)
    assert bad.returncode == 2 and "needs --apply" in bad.stderr


def test_preset_doc_carries_the_suggested_regime_filter_with_its_reason() -> None:
    from types import SimpleNamespace

    from gridflow.config.models import AccountConfig
    from gridflow.wfo.apply import preset_doc

    spec = SimpleNamespace(
        wfo=SimpleNamespace(oos_days=90), sweep_id="s1", strategy="grid_atr", base={"levels": 3}, start_ms=0, end_ms=10 ** 12,
        account=AccountConfig(), fees=load_config(None).fees, markets={}, data=[],
        funding=None)
    rep = {"symbol": "BTC/USDT", "timeframe": "1h", "strategy": "grid_atr", "grade": "F",
           "grade_score": 12.0, "grade_reasons": ["few trades"]}
    rows = [{"is_start_ms": 0, "is_end_ms": 86_400_000, "oos_start_ms": 86_400_000,
             "oos_end_ms": 2 * 86_400_000, "regime": "bear", "oos_sharpe": -2.0,
             "atr_start": 1.5}]
    doc = preset_doc(spec, {"BTC/USDT": rep}, {"BTC/USDT": rows}, ["atr_start"],
                     regime_filter=True)
    (st,) = doc["accounts"][0]["strategies"]
    assert st["regime_filter"] == {"window": 2160, "bear": "block"}
    assert st["validated"]["reasons"][0] == "few trades"
    assert "blocks bear" in st["validated"]["reasons"][1]
    plain = preset_doc(spec, {"BTC/USDT": rep}, {"BTC/USDT": rows}, ["atr_start"])
    assert "regime_filter" not in plain["accounts"][0]["strategies"][0]
