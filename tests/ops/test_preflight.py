"""``gridflow live``: the preflight against the local exchange (real ccxt over HTTP on
127.0.0.1), each failing check an exit code 2 with a message naming the fix, a passing
one reporting positions and orders, and a start that runs the flow."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from live_harness import KEY, SECRET, H, live_env, start_exchange, write_live_config
from sqlalchemy.exc import OperationalError

from gridflow.cli import main
from gridflow.config.live import ExchangeConfig
from gridflow.exchange.client import make_exchange

START = int(datetime(2024, 3, 4, tzinfo=UTC).timestamp() * 1000)
END = START + 10 * H
BTC = "BTC/USDT:USDT"


@pytest.fixture
def fx():
    fx = start_exchange(START)
    yield fx
    fx.stop()


@pytest.fixture(autouse=True)
def _keys(monkeypatch, tmp_path):
    """The test's keys in the environment (as ``live_env``), run from ``tmp_path``."""
    monkeypatch.setenv("GRIDFLOW_LIVE__EXCHANGE__API_KEY", KEY)
    monkeypatch.setenv("GRIDFLOW_LIVE__EXCHANGE__SECRET", SECRET)
    monkeypatch.delenv("GRIDFLOW_DB_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def _client(fx):
    return make_exchange(ExchangeConfig(urls=fx.ccxt_urls(), api_key=KEY, secret=SECRET,
                                        rate_limit_ms=0))


def _config(tmp_path: Path, fx, preflight: dict | None = None, replace: dict | None = None,
            leverage: float = 1.0) -> Path:
    """The harness's live config at ``fx``, with ``[live.preflight]`` settings (the clock
    check off unless given: the local exchange's clock runs on 2024 candles) and text
    replacements."""
    path = write_live_config(tmp_path / "live.toml", tmp_path / "j.db", fx, END,
                             leverage=leverage)
    text = path.read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    settings = {"max_clock_skew_ms": 0, **(preflight or {})}
    text += "\n[live.preflight]\n" + "".join(
        f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}\n".replace("'", '"')
        for k, v in settings.items() if v is not None)
    path.write_text(text)
    return path


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _open_position(fx) -> None:
    ex = _client(fx)
    ex.create_order(BTC, "market", "buy", 0.01)


# case -> (config arguments, setup(fx, monkeypatch), words the error must hold)
CASES = {
    "missing key": ({}, lambda fx, mp: mp.delenv("GRIDFLOW_LIVE__EXCHANGE__API_KEY"),
                    ["GRIDFLOW_LIVE__EXCHANGE__API_KEY", "live.exchange.api_key"]),
    "refused key": ({}, lambda fx, mp: mp.setenv("GRIDFLOW_LIVE__EXCHANGE__API_KEY",
                                                 "AKIA-NOT-THE-KEY-0000"),
                    ["keys: the venue refused the API key", "GRIDFLOW_LIVE__EXCHANGE__API_KEY",
                     "IP allow-list"]),
    "unknown symbol": ({"replace": {'symbols = ["BTC/USDT", "ETH/USDT"]':
                                    'symbols = ["BTC/USDT", "ETC/USDT"]'}}, None,
                       ["ETC/USDT is not listed on binanceusdm", "close: ETH/USDT",
                        "fix or remove it in accounts[name=live]"]),
    "too little capital": ({"replace": {"capital_quote = 10000.0": "capital_quote = 100.0"}},
                           None, ["capital: live BTC/USDT: a level is 16.67 USDT",
                                  "raise accounts[name=live].capital_quote to at least"]),
    "wrong margin mode": ({"preflight": {"margin_mode": "isolated"}}, None,
                          [("BTC/USDT is in cross margin on the venue, the config wants "
                            "isolated"), "live.preflight.apply_settings = true",
                           'live.preflight.margin_mode = "cross"']),
    "wrong leverage": ({"leverage": 3.0}, None,
                       ["BTC/USDT has leverage 1x on the venue, the config trades it at 3x",
                        "live.preflight.apply_settings = true"]),
    "unreachable venue": ({"replace": {}}, None,
                          ["venue: binanceusdm did not answer fetch_time", "NetworkError",
                           "check live.exchange.urls"]),
    "clock skew": ({"preflight": {"max_clock_skew_ms": None}}, None,
                   ["clock: the venue's clock is", "behind this machine's",
                    "live.preflight.max_clock_skew_ms = 1000",
                    "synchronise this machine's clock"]),
    "margin mode refused": ({"preflight": {"margin_mode": "isolated", "apply_settings": True}},
                            lambda fx, mp: _open_position(fx),
                            ["the venue refused to change BTC/USDT's margin mode",
                             "close BTC/USDT's position and open orders first"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_failing_check_exits_2_and_names_the_fix(case, fx, tmp_path, capsys,
                                                      monkeypatch):
    kwargs, setup, words = CASES[case]
    kwargs = dict(kwargs)
    if case == "unreachable venue":
        kwargs["replace"] = {fx.url: f"http://127.0.0.1:{_closed_port()}"}
    cfg = _config(tmp_path, fx, **kwargs)
    if setup is not None:
        setup(fx, monkeypatch)
    orders_before = len(fx.orders())
    assert main(["live", "--config", str(cfg)]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    errors = [ln for ln in err.splitlines() if ln.startswith("gridflow live: error: ")]
    assert errors, err
    text = "\n".join(errors)
    for w in words:
        assert w in text, (w, text)
    assert KEY not in out + err and SECRET not in out + err
    assert len(fx.orders()) == orders_before  # the preflight placed nothing
    assert not (tmp_path / "live-state").exists()  # nor did anything start
    if case != "missing key":  # the report names each failure beside the passing checks
        assert out.count("  FAIL ") == len(errors), out
        assert out.rstrip().endswith("failed; fix it and start again") or "fix them" in out


def test_apply_settings_sets_margin_mode_and_leverage_then_passes(fx, tmp_path, capsys):
    cfg = _config(tmp_path, fx, preflight={"margin_mode": "isolated", "apply_settings": True},
                  leverage=2.5)
    assert main(["live", "--config", str(cfg), "--dry-run"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "BTC/USDT set (cross -> isolated)" in out and "BTC/USDT set (1x -> 3x)" in out
    seen = _client(fx).fetch_leverages([BTC, "ETH/USDT:USDT"])
    assert {s: (v["marginMode"], v["longLeverage"]) for s, v in seen.items()} == {
        BTC: ("isolated", 3), "ETH/USDT:USDT": ("isolated", 3)}
    # a second preflight finds them as configured and changes nothing
    assert main(["live", "--config", str(cfg), "--dry-run"]) == 0
    again = capsys.readouterr().out
    assert "margin mode  BTC/USDT isolated" in again and "leverage     BTC/USDT 3x" in again
    assert " set (" not in again


def test_a_passing_dry_run_reports_positions_and_open_orders_and_starts_nothing(
        fx, tmp_path, capsys):
    ex = _client(fx)
    ex.create_order(BTC, "market", "buy", 0.01)
    ex.create_order("ETH/USDT:USDT", "limit", "buy", 0.5, 1000.0, {"clientOrderId": "manual-1"})
    cfg = _config(tmp_path, fx)
    assert main(["live", "--config", str(cfg), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "error" not in err and out.rstrip().endswith("preflight: passed")
    assert "warn  positions    1 on the venue" in out
    # the fee of that buy took the wallet below the capital: reported, not blocking
    assert "warn  balance      the venue holds 9,999." in out
    assert "positions on the venue: 1\n  BTC/USDT long 0.01 @ " in out
    assert "open orders on the venue: 1\n  ETH/USDT buy limit 0.5 @ 1000 manual-1 " \
           "(not gridflow's)" in out
    assert "capital      live BTC/USDT: a level is 1,666.67 USDT" in out
    assert not (tmp_path / "live-state").exists() and not (tmp_path / "j.db").exists()


def test_paper_mode_needs_no_keys_and_checks_the_market_side(fx, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.delenv("GRIDFLOW_LIVE__EXCHANGE__API_KEY")
    monkeypatch.delenv("GRIDFLOW_LIVE__EXCHANGE__SECRET")
    cfg = _config(tmp_path, fx, replace={'mode = "live"': 'mode = "paper"',
                                         "capital_quote = 10000.0": "capital_quote = 100.0"})
    assert main(["live", "--config", str(cfg), "--dry-run"]) == 2
    out = capsys.readouterr().out
    assert "preflight: binanceusdm (paper)" in out
    assert "skip  account      paper mode without API keys" in out
    assert "margin mode" not in out  # the venue's settings do not matter to paper fills
    assert "FAIL  capital      live BTC/USDT: a level is 16.67 USDT" in out


def test_gridflow_live_starts_the_flow_in_its_own_process_with_a_recovery_folder(
        fx, tmp_path, capsys):
    """Not a dry run: the flow replaces the command (same process id), the default
    recovery folder is created, the journal shows ``engine_started``; ``gridflow status``
    shows the running account."""
    from gridflow.journal.store import read_events

    cfg = _config(tmp_path, fx)
    db = tmp_path / "j.db"
    log = tmp_path / "live.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "gridflow.cli", "live", "--config",
                                 str(cfg)], cwd=tmp_path, env=live_env(db), stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t_end = time.monotonic() + 90
        started = []
        while not started and time.monotonic() < t_end and proc.poll() is None:
            time.sleep(0.2)
            try:
                started = [e for e in read_events(f"sqlite:///{db}", "live-test")
                           if e["kind"] == "engine_started"]
            except OperationalError:  # the flow is creating the journal
                started = []
        assert started, log.read_text()[-3000:]
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"bytewax.run" in cmdline and b"live-state/live-test" in cmdline
        assert (tmp_path / "live-state" / "live-test" / "part-0.sqlite3").exists()
        assert started[0]["detail"]["venue"] == "binanceusdm"
        assert main(["status", "--db", f"sqlite:///{db}"]) == 0
        status = capsys.readouterr().out
        assert "run live-test [live] account live" in status
        assert "equity          10,000.00 (capital 10,000.00, +0.00 %)" in status
        assert "last candle     2024-03-03T23:00:00Z" in status
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert "preflight: passed" in log.read_text()
    assert "recovery live-state/live-test (new)" in log.read_text()
