"""``gridflow status``: the running accounts of a real SQLite journal."""

from __future__ import annotations

import json

from sqlalchemy import insert

from gridflow.cli import main
from gridflow.journal.schema import EventRow, RunRow, SummaryRow, open_store

T0 = 1_709_510_400_000  # 2024-03-04T00:00:00Z
H = 3_600_000


def _summary(run_id: str, account: str, complete: bool, **kw) -> dict:
    row = {"run_id": run_id, "account": account, "candles": 10, "last_ts_ms": T0 + 5 * H,
           "seq": 3, "initial_capital": 10_000.0, "equity": 10_250.0, "cash": 9_000.0,
           "fees_paid": 1.0, "realized_pnl": 0.0, "funding_paid": 0.0, "kill_switch": "",
           "counters": {}, "paused": False, "complete": complete, "positions": {}}
    return {**row, **kw}


def _journal(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    engine = open_store(url)
    runs = [("bt", "replay", 1), ("live-a", "live", 2), ("paper-b", "paper", 3)]
    beat = {"kind": "heartbeat", "reason": "ALIVE", "symbol": "", "detail": {}}
    with engine.begin() as conn:
        conn.execute(insert(RunRow.__table__), [
            {"run_id": r, "config_hash": "h", "config_json": "{}", "data_json": "[]",
             "mode": m, "created_at_ms": c} for r, m, c in runs])
        conn.execute(insert(SummaryRow.__table__), [
            _summary("bt", "demo", True),
            _summary("live-a", "main", False, kill_switch="MAX_DRAWDOWN,DAILY_LOSS",
                     paused=True, positions={
                         "BTC/USDT": {"side": "long", "amount": 0.016, "avg_entry": 61_234.5},
                         "ETH/USDT": {"side": "flat", "amount": 0.0, "avg_entry": None}}),
            _summary("paper-b", "side", False, equity=9_900.0, last_ts_ms=T0 + 7 * H),
        ])
        conn.execute(insert(EventRow.__table__), [
            {**beat, "run_id": "live-a", "event_id": f"hb{k}", "ts_ms": T0 + k * H,
             "account": "main", "seq": k} for k in (1, 4, 2)]
            + [{**beat, "kind": "kill_switch_tripped", "reason": "MAX_DRAWDOWN",
                "run_id": "live-a", "event_id": "ks", "ts_ms": T0 + 9 * H, "account": "main",
                "seq": 9}])
    engine.dispose()
    return url


def test_status_shows_the_running_accounts_with_their_last_heartbeat(tmp_path, capsys):
    url = _journal(tmp_path)
    assert main(["status", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "bt" not in out.split()  # complete: not running
    live, paper = out.split("\n\n")
    assert live.splitlines() == [
        "run live-a [live] account main",
        "  equity          10,250.00 (capital 10,000.00, +2.50 %)",
        "  positions       BTC/USDT long 0.016 @ 61,234.5",
        "  kill switches   MAX_DRAWDOWN, DAILY_LOSS",
        "  paused          yes",
        "  last candle     2024-03-04T05:00:00Z",
        "  last heartbeat  2024-03-04T04:00:00Z",  # the latest heartbeat, no other event
    ]
    assert "run paper-b [paper] account side" in paper
    assert "last heartbeat  n/a" in paper and "positions       none" in paper
    assert "(capital 10,000.00, -1.00 %)" in paper


def test_status_of_one_run_and_as_json(tmp_path, capsys):
    url = _journal(tmp_path)
    assert main(["status", "--db", url, "--run", "bt"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run bt [replay] account demo (complete)")
    assert main(["status", "--db", url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["account"]) for r in rows] == [("live-a", "main"),
                                                            ("paper-b", "side")]
    assert rows[0]["last_heartbeat_ms"] == T0 + 4 * H
    assert rows[0]["positions"] == {"BTC/USDT": {"side": "long", "amount": 0.016,
                                                 "avg_entry": 61_234.5}}
    assert rows[1]["last_heartbeat"] is None


def test_status_errors_name_the_fix(tmp_path, capsys):
    url = _journal(tmp_path)
    assert main(["status", "--db", url, "--run", "nope"]) == 2
    err = capsys.readouterr().err
    assert "UNKNOWN_RUN" in err and "live-a" in err and "Traceback" not in err
    assert main(["status", "--db", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no journal at" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    url2 = f"sqlite:///{tmp_path / 'done.db'}"
    open_store(url2).dispose()
    assert main(["status", "--db", url2]) == 0
    assert "no running account" in capsys.readouterr().out
