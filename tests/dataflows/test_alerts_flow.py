"""Alerts from a whole replay reach a real HTTP endpoint through Apprise (json://)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bytewax.testing import run_main
from helpers import crash_candles, write_config

from gridflow.config import load_config
from gridflow.dataflows import alert_sink
from gridflow.dataflows.replay import build


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_replay_crash_sends_kill_switch_and_cycle_alerts(tmp_path: Path, monkeypatch) -> None:
    f = crash_candles(tmp_path / "binance_BTC_USDT_1h.csv.gz")
    acct = (
        '[[accounts]]\nname = "t"\ncapital_quote = 10000.0\nleverage = 3.0\n'
        "[accounts.strategy]\nsma_period = 10\natr_period = 5\nlevels = 5\n"
        "atr_start = 1.0\natr_step = 1.0\nsl_pct = 0.5\n"
        "[accounts.risk]\nsession_loss_grid = 0.05\nmax_margin_ratio = 1.0\n"
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"json://127.0.0.1:{server.server_address[1]}/"
        monkeypatch.setenv("GRIDFLOW_APPRISE_URLS", url)
        cfg = load_config(write_config(tmp_path / "c.toml", [f], account=acct),
                          db_url=f"sqlite:///{tmp_path / 'a.db'}")
        assert url not in cfg.model_dump_json()  # the secret never reaches the journal
        run_main(build(cfg))
    finally:
        server.shutdown()
    kinds = [m["title"] for m in _Recorder.received]
    assert any("kill switch" in t.lower() for t in kinds), kinds
    assert any(m["type"] == "failure" for m in _Recorder.received)  # critical -> failure
    assert alert_sink.stats()["sent"] >= len(_Recorder.received) > 0
