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
