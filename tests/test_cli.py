"""The ``gridflow`` console script and the README's commands."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from helpers import REPO, write_config

from gridflow.control.report import journal_lines

REQUIRED = {"candles", "orders", "fills", "trades", "net_pnl", "return_pct",
            "max_drawdown_pct", "sharpe", "win_rate", "fees_paid"}


def _gridflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("gridflow")
    assert exe, "the gridflow console script is installed"
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_replay_report_and_journal_commands(tmp_path: Path, three_symbol_files: list[Path]) -> None:
    btc, eth, sol = three_symbol_files
    renamed = tmp_path / "eth_candles.csv.gz"  # a name that says nothing: symbol/tf given
    shutil.copy(eth, renamed)
    cfg = write_config(tmp_path / "c.toml", [btc])
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    res = _gridflow("replay", "--config", str(cfg), "--db", db, "--workers", "2", "--no-progress",
                    "--json", "--data", str(btc), f"{renamed}@ETH/USDT@1h", str(sol), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    rep = json.loads(res.stdout)
    assert REQUIRED <= set(rep)
    assert rep["candles"] == 3 * 3000 and rep["trades"] > 0

    rep2 = _gridflow("report", "--db", db, "--json", cwd=tmp_path)
    assert json.loads(rep2.stdout) == rep
    again = _gridflow("report", "--db", db, "--run", rep["run_id"], "--json", cwd=tmp_path)
    assert json.loads(again.stdout) == rep

    j = _gridflow("journal", "--db", db, cwd=tmp_path)
    assert j.returncode == 0
    lines = j.stdout.splitlines()
    assert lines == journal_lines(db) and len(lines) == rep["orders"] + rep["fills"]
    first = json.loads(lines[0])
    assert first["record"] == "order" and "created_at_ms" not in first


def test_bad_config_is_refused_with_the_field_name(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[accounts]]\nname = "x"\nleverage = 0.5\n')
    res = _gridflow("replay", "--config", str(cfg), "--db", f"sqlite:///{tmp_path}/x.db",
                    "--no-progress", cwd=tmp_path)
    assert res.returncode == 2
    assert "leverage" in res.stderr and "Traceback" not in res.stderr


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    ci = (REPO / ".ci/run").read_text().splitlines()
    assert test_cmd.strip() in [ln.strip() for ln in ci]


import pytest  # noqa: E402


@pytest.mark.parametrize("preset", ["grid_atr_short", "envelope_dca", "grid_multi_tf",
                                    "grid_trend"])
def test_each_strategy_preset_replays_the_bundled_data(tmp_path: Path, preset: str) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    res = _gridflow("replay", "--preset", preset, "--db", db, "--start", "2023-01-01",
                    "--end", "2024-01-01", "--no-progress", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    rep = json.loads(res.stdout)
    assert REQUIRED <= set(rep)
    # 2023 has 8760 hours; Binance lost the 2023-03-24 13:00 candle of every spot pair
    assert rep["candles"] == 5 * (8760 - 1) and rep["trades"] > 0, rep
    shown = _gridflow("report", "--db", db, cwd=tmp_path)
    assert "max_drawdown_pct" in shown.stdout and "win_rate" in shown.stdout


def test_demo_preset_runs_two_strategies_on_five_symbols_in_one_account() -> None:
    from gridflow.config import load_config

    cfg = load_config()
    (acct,) = cfg.accounts
    assert len({s.name for s in acct.strategies}) >= 2
    assigned = acct.assignment(acct.symbols)
    assert len(assigned) >= 5
    assert len({p.name for p in assigned.values()}) >= 2
