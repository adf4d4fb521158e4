"""A live run against the local exchange logging everything it can (ccxt's signed
requests, Apprise and its HTTP stack at DEBUG) into a small JSON-lines file that rotates
into gzip archives: no log file, archive or console line holds a secret."""

from __future__ import annotations

import base64
import gzip
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from live_harness import KEY, SECRET, H, LiveProcess, settle, start_exchange, write_live_config

START = int(datetime(2024, 3, 4, tzinfo=UTC).timestamp() * 1000)
STEPS = 6


class _Recorder(BaseHTTPRequestHandler):
    """The Apprise ``json://`` target: records each POST's path and body."""

    posts: ClassVar[list[tuple[str, dict]]] = []

    def do_POST(self) -> None:  # the http.server API's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).posts.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_no_log_file_of_a_live_run_holds_a_secret(tmp_path, monkeypatch):
    user, pw, token = "alice-ops", "Wonderland-pw-4242", "TOKEN-abc-123456"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.posts = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("GRIDFLOW_APPRISE_URLS",
                       f"json://{user}:{pw}@127.0.0.1:{server.server_port}/hook/{token}")
    logs = tmp_path / "logs"
    fx = start_exchange(START)
    try:
        db = tmp_path / "j.db"
        cfg = write_live_config(tmp_path / "live.toml", db, fx, START + (STEPS - 1) * H,
                                warmup=30, extra=(
                                    f'[logging]\nlevel = "INFO"\njson = true\n'
                                    f'file = "{logs / "live.log"}"\nmax_bytes = 60000\n'
                                    'backups = 1000\n[logging.levels]\nccxt = "DEBUG"\n'
                                    'apprise = "DEBUG"\nurllib3 = "DEBUG"\n'))
        proc = LiveProcess(cfg, db, tmp_path, recovery=False)
        proc.start()
        for _ in range(STEPS):
            settle(db, "live-test", fx.now_ms() - H, proc, fx=fx)
            fx.step()
        assert proc.wait(120) == 0, proc.logs()[-3000:]
        listen_key = fx._hub.listen_key
    finally:
        fx.stop()
        server.shutdown()
    assert _Recorder.posts and all(path == f"/hook/{token}" for path, _ in _Recorder.posts)

    files = sorted(p for p in tmp_path.rglob("*.log*") if p.is_file())
    archives = [p for p in files if p.suffix == ".gz"]
    assert archives and (logs / "live.log").exists()  # it rotated, into gzip archives
    texts = {p: (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else
                 p.read_bytes()).decode() for p in files}
    rows = [json.loads(ln) for p, t in texts.items() if logs in p.parents
            for ln in t.splitlines()]  # every line of the file and its archives is JSON
    signed = [r for r in rows if r["logger"].startswith("ccxt") and "signature=***" in
              r["message"]]
    assert signed and any("X-MBX-APIKEY': '***'" in r["message"] for r in signed)
    assert any(r["logger"] == "apprise" and "JSON POST URL" in r["message"] for r in rows)
    assert any(r["logger"] == "urllib3.connectionpool" for r in rows)

    basic = base64.b64encode(f"{user}:{pw}".encode()).decode()
    secrets = [KEY, SECRET, pw, token, basic, f"{user}:", listen_key]
    assert all(s for s in secrets)  # the listen key was issued
    for path, text in texts.items():
        for secret in secrets:
            assert secret not in text, (path.name, secret)
