"""Running unattended, end to end on the local exchange's manual clock: the daily
heartbeat and the daily report reach a real ``json://`` endpoint on 127.0.0.1 with the
figures of ``gridflow report --daily``, the first day (no rows) gets a short notice, the
plain heartbeat is journaled but never notified, and a stalled candle feed raises one
``data_stale`` alert within 2 timeframes of exchange time. Plus the alert sink's report
trigger on its own (one report a day whatever the number of accounts, bad input
counted)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from live_harness import H, LiveProcess, caught_up, candles, start_exchange, write_live_config

from gridflow.cli import main
from gridflow.control.daily_report import DailyReport, daily_report
from gridflow.control.daily_report_text import daily_title, render_daily_text
from gridflow.dataflows.alert_sink import AlertSink
from gridflow.journal.store import read_events
from gridflow.operators.alerts import Alert

START = int(datetime(2024, 3, 4, 22, tzinfo=UTC).timestamp() * 1000)  # day D, 22:00 UTC
#: Warm-up candles (its equity snapshots are journaled): all on day D, so D-1 has no rows.
WARMUP = 20
RUN = "live-test"
M10 = 600_000


class _Recorder(BaseHTTPRequestHandler):
    """The Apprise ``json://`` target: records each POSTed JSON body."""

    posts: ClassVar[list[dict]] = []

    def do_POST(self) -> None:  # the http.server API's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).posts.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch):
    """A json:// endpoint on 127.0.0.1 as the flow's only Apprise URL; yields its posts."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.posts = []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"json://127.0.0.1:{server.server_port}/hook"
    monkeypatch.setenv("GRIDFLOW_APPRISE_URLS", url)
    yield url, _Recorder.posts
    server.shutdown()


def _wait(pred, what: str, proc: LiveProcess | None = None, timeout: float = 30.0):
    """Poll ``pred`` until truthy (its value) or fail naming ``what`` (bounded wait)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        if proc is not None and not proc.alive():
            break
        time.sleep(0.05)
    raise AssertionError(f"no {what}" + ("" if proc is None else "\n" + proc.logs()[-3000:]))


def _titled(posts: list[dict], text: str) -> list[dict]:
    return [p for p in list(posts) if text in p["title"]]


def test_daily_heartbeat_report_and_stale_feed_on_the_exchange_clock(tmp_path, endpoint,
                                                                     capsys):
    url, posts = endpoint
    btc = candles("BTC/USDT")
    last_btc = START + 24 * H  # BTC's feed stops after the candle of D+1 22:00
    rows = {"BTC/USDT": btc[btc[:, 0] <= last_btc], "ETH/USDT": candles("ETH/USDT")}
    # ETH only keeps the exchange clock going once BTC's candles end; the flow trades BTC
    fx = start_exchange(START, rows=rows)
    db = tmp_path / "j.db"
    jurl = f"sqlite:///{db}"
    proc = None
    try:
        cfg = write_live_config(tmp_path / "live.toml", db, fx, START + 48 * H,
                                warmup=WARMUP, symbols=("BTC/USDT",),
                                strategy={"sma_period": 10, "atr_period": 5}, extra=(
                                    '[live.ops]\nheartbeat_s = 600.0\ndaily_at = "22:30"\n'
                                    "stale_candles = 2.0\n"))
        proc = LiveProcess(cfg, db, tmp_path, recovery=False)
        proc.start()
        _wait(lambda: caught_up(db, RUN, START - H), "warm-up journaled", proc, 90)

        # day D 22:30: the first daily heartbeat; D-1 has no rows -> the short notice
        fx.advance_ms(30 * 60_000)
        _wait(lambda: _titled(posts, "gridflow daily 2024-03-03"), "no-data notice", proc)
        (notice,) = _titled(posts, "gridflow daily 2024-03-03")
        assert notice["title"] == "gridflow daily 2024-03-03: no data"
        assert notice["message"].startswith("No data for 2024-03-03 (UTC) in run live-test")

        # through D+1 22:30: the second daily heartbeat sends the report of day D
        for i in range(24):
            fx.step()
            _wait(lambda i=i: caught_up(db, RUN, START + i * H), f"candle {i}", proc)
        fx.advance_ms(30 * 60_000)
        _wait(lambda: _titled(posts, "gridflow daily 2024-03-04"), "daily report", proc)
        rep = daily_report(jurl, RUN, date(2024, 3, 4))
        assert main(["report", "--db", jurl, "--run", RUN, "--daily", "--date",
                     "2024-03-04", "--json"]) == 0
        cli = DailyReport.model_validate(json.loads(capsys.readouterr().out))
        assert cli == rep  # `gridflow report --daily --json` of the same journal
        (sent,) = _titled(posts, "gridflow daily 2024-03-04")
        assert sent["title"] == daily_title(cli)
        assert sent["message"] == render_daily_text(cli)  # every figure, as delivered
        assert rep.accounts[0].equity_end > 0 and rep.accounts[0].account == "live"
        beats = _titled(posts, "daily_heartbeat")
        assert len(beats) == 2 and all(b["type"] == "info" for b in beats)
        daily = [e for e in read_events(jurl, RUN) if e["kind"] == "daily_heartbeat"]
        assert [e["ts_ms"] for e in daily] == [START + 1_800_000, START + 24 * H + 1_800_000]
        assert all(k in beats[1]["message"] for k in ("uptime_s=", "equity=", "day_pnl=",
                                                       "open_positions=", "kill_switches="))

        # the feed stalls: BTC's last candle closes at D+1 23:00, then only the clock moves
        fx.step()
        _wait(lambda: caught_up(db, RUN, last_btc), "BTC's last candle", proc)
        last_close = last_btc + H
        while fx.now_ms() < last_close + 3 * H:
            fx.advance_ms(M10)
            now = fx.now_ms()
            _wait(lambda now=now: [e for e in read_events(jurl, RUN)
                                   if e["kind"] == "heartbeat" and e["ts_ms"] >= now],
                  f"heartbeat at {now}", proc)
        _wait(lambda: _titled(posts, "data_stale"), "data_stale alert", proc, 10)
        events = read_events(jurl, RUN)
    finally:
        if proc is not None:
            proc.kill()
        fx.stop()
    (stale,) = [e for e in events if e["kind"] == "data_stale"]
    assert stale["symbol"] == "BTC/USDT"
    # raised at the first update past 2 timeframes of silence (10-min clock steps), once
    assert last_close + 2 * H < stale["ts_ms"] <= last_close + 2 * H + M10
    assert len(_titled(posts, "data_stale")) == 1 and not _titled(posts, "data_fresh")
    # the heartbeat every 10 minutes of exchange time is journaled, never notified
    assert sum(e["kind"] == "heartbeat" for e in events) >= 18
    assert not [p for p in posts if "heartbeat: ALIVE" in p["title"]]
    assert len(_titled(posts, "daily_heartbeat")) == 2


def _beat(account: str, day_ms) -> Alert:
    return Alert(alert_id=f"daily_heartbeat:{account}:1", kind="daily_heartbeat",
                 account=account, ts_ms=START + 1_800_000, title=f"[{account}] daily",
                 body="alive", severity="info", detail={"report_day_ms": day_ms})


def test_sink_starts_one_report_per_day_and_counts_what_fails(tmp_path, endpoint):
    """Two accounts' daily heartbeats of one day start one report; an unknown run is a
    failed report (exit 2 of the child, nothing sent but the heartbeats); a heartbeat
    without ``report_day_ms`` is counted failed without a process."""
    url, posts = endpoint
    sink = AlertSink([url], timeout_s=5.0,
                     journal=(f"sqlite:///{tmp_path / 'empty.db'}", "no-such-run"))
    assert "journal=<hidden>" in repr(sink) and "empty.db" not in repr(sink)
    part = sink.build("notify", 0, 1)
    try:
        part.write_batch([_beat("a", START - 86_400_000), _beat("b", START - 86_400_000),
                          _beat("c", "yesterday")])
        _wait(lambda: sum(sink.report_stats().values()) >= 2, "2 report outcomes",
              timeout=60)
        assert sink.report_stats(wait_s=5) == {"sent": 0, "no_data": 0, "failed": 2}
        assert sink.stats() == {"sent": 3, "failed": 0, "dropped": 0}
    finally:
        part.close()
    assert len(posts) == 3 and not _titled(posts, "gridflow daily")
    with pytest.raises(ValueError, match="journal must be"):
        AlertSink([url], journal=("", "run"))


def test_daily_heartbeat_is_never_suppressed_by_other_kinds_and_heartbeat_never_alerts():
    """With the configured cooldowns, a flood of other alerts of the same account (each
    kind has its own cooldown key) never suppresses a daily heartbeat, one a day; the
    plain heartbeat gives no alert at all."""
    from gridflow.chunks import JournalBatch
    from gridflow.config.models import AlertsConfig
    from gridflow.event_kinds import EventKind, Reason
    from gridflow.operators.alerts import AlertThrottle, alerts_from_batch
    from gridflow.operators.live_orders import event

    conf = AlertsConfig()
    throttle = AlertThrottle(dict(conf.cooldown_ms), conf.default_cooldown_ms)
    day, seq, admitted = 86_400_000, 0, []
    for t in range(START, START + 3 * day, 120_000):  # every 2 minutes for 3 days
        batch = JournalBatch()
        for kind, reason in ((EventKind.HEARTBEAT, Reason.ALIVE),
                             (EventKind.DATA_STALE, Reason.NO_CLOSED_CANDLE),
                             (EventKind.EXCHANGE_ERROR_RATE, Reason.ERRORS_OVER_RATE)):
            seq += 1
            batch.events.append(event("live", kind, reason, t, seq))
        if (t - START) % day == 1_800_000:  # 22:30 UTC
            seq += 1
            batch.events.append(event("live", EventKind.DAILY_HEARTBEAT, Reason.SCHEDULED, t,
                                      seq, report_day_ms=t // day * day - day))
        admitted += throttle.admit(alerts_from_batch(batch))[0]
    kinds = [a.kind for a in admitted]
    assert kinds.count("daily_heartbeat") == 3  # every day at 22:30, each sent
    assert "heartbeat" not in kinds
    assert throttle.suppressed.get("data_stale", 0) > 0  # the others were throttled
    assert "daily_heartbeat" not in throttle.suppressed
