"""End to end: ``gridflow replay`` over hand-made bad candle files, as a subprocess with a
timeout (a hang fails the test). Each run exits 0 or 2 without a traceback, journals
every refused candle as ``candle_rejected`` with its reason, and completes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gridflow.control.report import compute_report
from gridflow.journal.store import read_events

T0, H = 1_704_067_200_000, 3_600_000  # 2024-01-01 00:00 UTC, one hour (ms)
HEADER = "timestamp,open,high,low,close,volume\n"


def _good(i: int, p: float | None = None) -> str:
    p = p if p is not None else 100.0 * (1.01 if (i // 5) % 2 else 0.99) ** (i % 5)
    return f"{T0 + i * H},{p!r},{p * 1.01!r},{p * 0.99!r},{p!r},1"


def _file(tmp: Path, rows: list[str], name: str = "binance_BTC_USDT_1h.csv") -> Path:
    p = tmp / name
    p.write_text(HEADER + "".join(r + "\n" for r in rows))
    return p


def replay(tmp: Path, *args: str) -> tuple[int, str, str]:
    """Run ``gridflow replay``; returns (exit code, stderr, journal URL)."""
    url = f"sqlite:///{tmp / 'j.db'}"
    res = subprocess.run([sys.executable, "-m", "gridflow.cli", "replay", "--db", url,
                          "--no-progress", *args], check=False, capture_output=True,
                         text=True, timeout=180, cwd=tmp)
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert res.returncode in (0, 2), res.stderr[-3000:]
    return res.returncode, res.stderr, url


def refusals(url: str) -> tuple[dict, list[dict]]:
    rep = compute_report(url)
    events = read_events(url, rep["run_id"])
    return rep, events


ABSURD = {  # hour -> a row that must be refused, with its reason and words of its message
    10: (f"{T0 + 10 * H},1e308,1e308,1e308,1e308,1", "IMPLAUSIBLE_PRICE", "max_price_quote"),
    20: (f"{T0 + 20 * H},5e-324,5e-324,5e-324,5e-324,1", "IMPLAUSIBLE_PRICE", "normal float"),
    30: (f"{(T0 + 30 * H) * 1000},100,101,99,100,1", "TS_OUT_OF_RANGE", "microseconds"),
    40: (f"{(T0 + 40 * H) // 1000},100,101,99,100,1", "TS_OUT_OF_RANGE", "seconds"),
    50: (f"{T0 + 50 * H},nan,101,99,100,1", "NON_POSITIVE_PRICE", "open=nan"),
    60: (f"{T0 + 60 * H},5000,5050,4950,5000,1", "PRICE_JUMP", "max_jump_factor=10.0"),
}


def _absurd_file(tmp: Path) -> Path:
    return _file(tmp, [ABSURD[i][0] if i in ABSURD else _good(i) for i in range(100)])


def test_absurd_values_are_refused_with_their_reason_and_the_run_completes(tmp_path) -> None:
    code, _, url = replay(tmp_path, "--data", str(_absurd_file(tmp_path)))
    assert code == 0
    rep, events = refusals(url)
    rejected = {e["seq"]: e for e in events if e["kind"] == "candle_rejected"}
    assert sorted(rejected) == sorted(ABSURD)  # file rows = hours here
    for i, (_, reason, words) in ABSURD.items():
        assert rejected[i]["reason"] == reason and words in rejected[i]["detail"]["message"]
    assert rep["candles"] == 100 - len(ABSURD) and rep["candles_rejected"] == len(ABSURD)


def test_the_candle_settings_of_a_preset_reach_the_replay(tmp_path) -> None:
    f = _absurd_file(tmp_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[candles]\nmax_jump_factor = 100.0\n[[data]]\npath = "{f}"\n')
    code, _, url = replay(tmp_path, "--config", str(cfg))
    assert code == 0
    reasons = [e["reason"] for e in refusals(url)[1] if e["kind"] == "candle_rejected"]
    assert "PRICE_JUMP" not in reasons and len(reasons) == len(ABSURD) - 1
    cfg.write_text(f'[candles]\nmax_jump_factor = 1.0\n[[data]]\npath = "{f}"\n')
    code, err, _ = replay(tmp_path, "--config", str(cfg))
    assert code == 2 and "candles.max_jump_factor" in err and len(err.strip().splitlines()) == 1


def test_a_malformed_row_before_the_start_is_journaled(tmp_path) -> None:
    rows = [_good(i) for i in range(80)]
    rows[10] = "not,a,candle"
    rows[20] = f"{T0 + 20 * H},-1,101,99,100,1"
    f = _file(tmp_path, rows)
    code, _, url = replay(tmp_path, "--data", str(f), "--start", str(T0 + 50 * H))
    assert code == 0
    rep, events = refusals(url)
    rejected = [(e["seq"], e["reason"], e["ts_ms"]) for e in events
                if e["kind"] == "candle_rejected"]
    assert rejected == [(10, "MALFORMED_ROW", -1), (20, "NON_POSITIVE_PRICE", T0 + 20 * H)]
    assert rep["candles"] == 30 and rep["first_ts_ms"] >= T0 + 50 * H


def test_a_microsecond_row_neither_opens_the_window_nor_passes(tmp_path) -> None:
    rows = [f"{(T0 + 70 * H) * 1000},100,101,99,100,1"] + [_good(i) for i in range(60)]
    f = _file(tmp_path, rows)
    code, _, url = replay(tmp_path, "--data", str(f), "--start", str(T0 + 30 * H))
    assert code == 0
    rep, events = refusals(url)
    (e,) = [e for e in events if e["kind"] == "candle_rejected"]
    assert (e["seq"], e["reason"]) == (0, "TS_OUT_OF_RANGE")
    assert "looks like microseconds" in e["detail"]["message"]
    assert rep["candles"] == 30  # hours 30..59, not the 2018 rows behind the bad one


@pytest.mark.parametrize("unit", ["seconds", "microseconds"])
def test_a_file_with_no_valid_candle_journals_each_row_and_no_candles(tmp_path, unit) -> None:
    scale = (lambda t: t // 1000) if unit == "seconds" else (lambda t: t * 1000)
    f = _file(tmp_path, [f"{scale(T0 + i * H)},100,101,99,100,1" for i in range(24)])
    cfg = tmp_path / "c.toml"  # no window: every row goes to the flow
    cfg.write_text(f'[[data]]\npath = "{f}"\n')
    code, _, url = replay(tmp_path, "--config", str(cfg))
    assert code == 0
    rep, events = refusals(url)
    rejected = [e for e in events if e["kind"] == "candle_rejected"]
    assert len(rejected) == 24 and {e["reason"] for e in rejected} == {"TS_OUT_OF_RANGE"}
    assert all(f"looks like {unit}" in e["detail"]["message"] for e in rejected)
    assert [e["reason"] for e in events if e["kind"] == "no_candles"] == ["NO_VALID_CANDLES"]
    assert rep["candles"] == 0
