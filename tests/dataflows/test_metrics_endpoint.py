"""Prometheus metrics and ``/health`` of a flow (gridflow.ops.flow_metrics, the metrics
sink): the pure fold on hand-built journal batches, the HTTP endpoint on 127.0.0.1, and
a scrape of a running live flow against the local exchange equal to its journal.

(Named ``test_metrics_endpoint.py``: ``tests/test_metrics.py`` tests the performance
metrics, and test modules share one namespace.)"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import datetime, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gridflow.chunks import JournalBatch
from gridflow.dataflows.metrics_sink import MetricsServer
from gridflow.events import (
    AccountSummary,
    ExecutionReport,
    JournalEvent,
    OrderIntent,
    OrderOutcome,
    OutcomesReplayed,
)
from gridflow.ops.flow_metrics import PROTECTIVE_TAGS, FlowMetrics

A = "acct"
T = 1_700_000_000_000  # a candle close, ms UTC


def samples(text: str) -> dict[tuple, float]:
    """A Prometheus text exposition as ``{(sample name, sorted labels): value}`` (parsed
    with prometheus_client's parser: it raises on anything malformed)."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(m: FlowMetrics) -> dict[tuple, float]:
    from prometheus_client import generate_latest

    return samples(generate_latest(m.registry).decode())


def summary(equity=1000.0, candles=10, kill="", positions=None, last=T - 3_600_000):
    return AccountSummary(account=A, candles=candles, last_ts_ms=last, initial_capital=1000.0,
                          equity=equity, cash=equity, fees_paid=0.0, realized_pnl=0.0,
                          kill_switch=kill, positions=positions or {})


def ev(kind, reason, seq, symbol="", ts=T, **detail):
    return JournalEvent(event_id=f"{kind}:{A}:{seq}", kind=kind, reason=reason, ts_ms=ts,
                        account=A, symbol=symbol, seq=seq, detail=detail)


def fill(rid, coid, ts, status="filled", symbol="BTC/USDT"):
    return ExecutionReport(report_id=rid, client_order_id=coid, account=A, symbol=symbol,
                           ts_ms=ts, side="buy", price=100.0, amount=1.0, status=status)


def place(coid, tag, ts, symbol="BTC/USDT"):
    return OrderIntent(intent_id=f"{coid}:place", action="place", account=A, symbol=symbol,
                       client_order_id=coid, tag=tag, ts_ms=ts, side="buy", type="limit",
                       price=100.0, amount=1.0)


def outcome(coid, status, ts, action="place"):
    return OrderOutcome(intent_id=f"{coid}:{action}", client_order_id=coid, action=action,
                        account=A, symbol="BTC/USDT", status=status, ts_ms=ts)


def test_summary_gauges_follow_the_summary_the_journal_keeps():
    m = FlowMetrics()
    pos = {"BTC/USDT": {"amount": 0.5}, "ETH/USDT": {"amount": 0.0}, "SOL/USDT": {"amount": 2}}
    m.apply(JournalBatch(summaries=[summary(1234.5, 10, "DAILY_LOSS,MAX_DRAWDOWN", pos)]))
    m.apply(JournalBatch(summaries=[summary(999.0, 9)]))  # fewer candles: not the journal's
    s = scrape(m)
    assert s[("gridflow_equity", (("account", A),))] == 1234.5
    assert s[("gridflow_open_positions", (("account", A),))] == 2
    assert s[("gridflow_last_candle_timestamp_seconds", (("account", A),))] == (T - 3_600_000) / 1e3
    switches = {dict(k[1])["reason"]: v for k, v in s.items() if k[0] == "gridflow_kill_switch"}
    assert switches == {"SESSION_LOSS_GRID": 0, "SESSION_LOSS_SINGLE": 0, "DAILY_LOSS": 1,
                        "ROLLING_DRAWDOWN": 0, "MAX_DRAWDOWN": 1}
    m.apply(JournalBatch(summaries=[summary(1200.0, 10, "")]))  # a tie: the last one wins
    s = scrape(m)
    assert s[("gridflow_equity", (("account", A),))] == 1200.0
    assert s[("gridflow_kill_switch", (("account", A), ("reason", "DAILY_LOSS")))] == 0
    assert s[("gridflow_resting_orders", (("account", A),))] == 0  # paper: none


def test_fills_denials_and_errors_count_once_per_record():
    m = FlowMetrics()
    b = JournalBatch(
        fills=[fill("t1", "c1", T + 5, "partially_filled"), fill("t2", "c1", T + 6),
               fill("t3", "c9", T + 7, symbol="ETH/USDT")],
        events=[ev("order_denied", "KILL_SWITCH", 1), ev("order_denied", "KILL_SWITCH", 2),
                ev("order_denied", "MIN_NOTIONAL", 3), ev("exchange_error", "POLL_FAILED", 4),
                ev("order_rejected", "InsufficientFunds", 5), ev("heartbeat", "ALIVE", 6)])
    m.apply(b)
    m.apply(b)  # a replay after a crash: the same records count once
    s = scrape(m)
    assert s[("gridflow_fills_total", (("account", A), ("symbol", "BTC/USDT")))] == 2
    assert s[("gridflow_fills_total", (("account", A), ("symbol", "ETH/USDT")))] == 1
    assert s[("gridflow_order_denials_total", (("account", A), ("reason", "KILL_SWITCH")))] == 2
    assert s[("gridflow_order_denials_total", (("account", A), ("reason", "MIN_NOTIONAL")))] == 1
    errs = {dict(k[1])["kind"]: v for k, v in s.items()
            if k[0] == "gridflow_exchange_errors_total"}
    assert errs == {"exchange_error": 1, "order_rejected": 1}


def test_resting_orders_and_the_two_latencies_from_intents_outcomes_and_fills():
    m = FlowMetrics()
    m.apply(JournalBatch(intents=[place("e1", "L0", T), place("e2", "L1", T)]))
    m.apply(outcome("e1", "sent", T + 1500))
    m.apply(outcome("e2", "rejected", T + 1600))  # never rested, no latency
    s = scrape(m)
    assert s[("gridflow_resting_orders", (("account", A),))] == 1
    assert s[("gridflow_candle_close_to_order_sent_seconds_count", ())] == 1
    assert s[("gridflow_candle_close_to_order_sent_seconds_sum", ())] == 1.5
    assert s[("gridflow_candle_close_to_order_sent_seconds_bucket", (("le", "1.0"),))] == 0
    assert s[("gridflow_candle_close_to_order_sent_seconds_bucket", (("le", "2.5"),))] == 1
    # e1 fills; its take profit and stop are decided at the fill's time
    f_ts = T + 1_234_567
    m.apply(JournalBatch(fills=[fill("t1", "e1", f_ts)],
                         intents=[place("tp", "TP", f_ts), place("sl", "SL", f_ts)]))
    m.apply(outcome("sl", "sent", f_ts + 250))
    m.apply(OutcomesReplayed(account=A))  # a marker: nothing to count
    m.apply(outcome("tp", "duplicate", f_ts + 750))
    s = scrape(m)
    assert s[("gridflow_resting_orders", (("account", A),))] == 2  # tp, sl; e1 filled
    assert s[("gridflow_fill_to_protection_sent_seconds_count", ())] == 2
    assert s[("gridflow_fill_to_protection_sent_seconds_sum", ())] == 1.0
    assert s[("gridflow_candle_close_to_order_sent_seconds_count", ())] == 1
    # an outcome the fold sees before its intent still counts; a cancel ends a rest
    m.apply(outcome("e3", "sent", T + 3_600_000 + 100))
    m.apply(JournalBatch(intents=[place("e3", "L0", T + 3_600_000)]))
    m.apply(outcome("tp", "canceled", f_ts + 9000, action="cancel"))
    m.apply(JournalBatch(events=[ev("order_vanished", "NOT_OPEN", 9, "BTC/USDT",
                                    client_order_id="sl")]))
    s = scrape(m)
    assert s[("gridflow_candle_close_to_order_sent_seconds_count", ())] == 2
    assert s[("gridflow_candle_close_to_order_sent_seconds_sum", ())] == pytest.approx(1.6)
    assert s[("gridflow_resting_orders", (("account", A),))] == 1  # e3


def test_health_names_stale_symbols_and_streams_until_they_are_back():
    m = FlowMetrics()
    assert m.health() == (True, {"status": "ok", "stale_data": [], "stale_streams": [],
                                 "updates": 0})
    m.apply(JournalBatch(events=[
        ev("data_stale", "NO_CLOSED_CANDLE", 1, "ETH/USDT", ts=T),
        ev("stream_stale", "SILENT", 2, ts=T + 1, stream="marks", detail="no marks")]))
    ok, body = m.health()
    assert not ok and body["status"] == "stale"
    assert body["stale_data"] == [{"account": A, "symbol": "ETH/USDT", "since_ms": T}]
    assert body["stale_streams"] == [{"account": A, "stream": "marks", "since_ms": T + 1}]
    s = scrape(m)
    assert s[("gridflow_data_stale", (("account", A), ("symbol", "ETH/USDT")))] == 1
    assert s[("gridflow_stream_stale", (("account", A), ("stream", "marks")))] == 1
    m.apply(JournalBatch(events=[ev("data_fresh", "CANDLES_BACK", 3, "ETH/USDT")]))
    assert not m.health()[0]
    m.apply(JournalBatch(events=[ev("stream_restored", "CAUGHT_UP", 4, stream="marks")]))
    assert m.health()[0]
    assert scrape(m)[("gridflow_data_stale", (("account", A), ("symbol", "ETH/USDT")))] == 0


def test_an_unknown_item_is_counted_not_raised():
    m = FlowMetrics()
    m.apply({"not": "a batch"})
    assert scrape(m)[("gridflow_metrics_bad_items_total", (("what", "unknown_item"),))] == 1


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except urllib.error.URLError as err:  # not listening (yet)
        return 0, str(err)


def test_the_endpoint_serves_metrics_health_and_404_and_refuses_a_taken_port():
    m = FlowMetrics()
    m.apply(JournalBatch(summaries=[summary(1500.25)]))
    srv = MetricsServer(m, "127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{srv.port}"
        code, text = get(base + "/metrics")
        assert code == 200 and samples(text)[("gridflow_equity", (("account", A),))] == 1500.25
        assert get(base + "/health") == (200, json.dumps(m.health()[1]))
        m.apply(JournalBatch(events=[ev("data_stale", "NO_CLOSED_CANDLE", 1, "ETH/USDT")]))
        code, body = get(base + "/health")
        assert code == 503 and json.loads(body)["stale_data"][0]["symbol"] == "ETH/USDT"
        assert get(base + "/nope")[0] == 404
        with pytest.raises(RuntimeError, match=f"127.0.0.1:{srv.port} cannot listen"):
            MetricsServer(FlowMetrics(), "127.0.0.1", srv.port)
    finally:
        srv.close()


def test_the_metrics_settings_are_validated_and_not_the_runs_identity(tmp_path):
    from pydantic import ValidationError

    from gridflow.config import config_hash, load_config
    from gridflow.config.loader import default_run_id
    from gridflow.config.ops import OpsConfig

    (tmp_path / "a.toml").write_text("[live.ops]\nmetrics_port = 9108\n"
                                     'metrics_host = "0.0.0.0"\n')
    (tmp_path / "b.toml").write_text("")
    with_metrics, plain = load_config(tmp_path / "a.toml"), load_config(tmp_path / "b.toml")
    assert with_metrics.live.ops.metrics_port == 9108 and plain.live.ops.metrics_port is None
    assert config_hash(with_metrics) == config_hash(plain)
    assert default_run_id(with_metrics) == default_run_id(plain)
    (tmp_path / "c.toml").write_text("[live.ops]\nheartbeat_s = 60\n")
    assert config_hash(load_config(tmp_path / "c.toml")) != config_hash(plain)
    for bad in (0, 70_000):
        with pytest.raises(ValidationError, match="metrics_port"):
            OpsConfig(metrics_port=bad)


# ---------------------------------------------------------------- a running live flow
START = int(datetime(2024, 3, 5, 8, tzinfo=timezone.utc).timestamp() * 1000)  # a crash follows
RUN = "live-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def journal_figures(db) -> dict:
    """What the journal says of the account, in the metrics' terms."""
    from gridflow.journal.broker_rows import read_broker
    from gridflow.journal.store import read_events, read_fills, read_orders, read_summaries
    from gridflow.operators.risk import KILL_SWITCH_REASONS

    url = f"sqlite:///{db}"
    (summ,) = read_summaries(url, RUN)
    fills, events = read_fills(url, RUN), read_events(url, RUN)
    orders = {o["client_order_id"]: o for o in read_orders(url, RUN)}
    broker = read_broker(url, RUN)
    fill_ts = {(f["symbol"], f["ts_ms"]) for f in fills}
    placed = [b for b in broker if b["action"] == "place" and b["status"] in ("sent", "duplicate")]
    gone = {b["client_order_id"] for b in broker
            if b["action"] == "cancel" and b["status"] in ("canceled", "not_found")}
    gone |= {f["client_order_id"] for f in fills if f["status"] == "filled"}
    gone |= {e["detail"].get("client_order_id") for e in events if e["kind"] == "order_vanished"}
    lat = {"candle": [], "protection": []}
    for b in placed:
        o = orders[b["client_order_id"]]
        at_fill = (o["symbol"], o["ts_ms"]) in fill_ts
        if not at_fill or o["tag"] in PROTECTIVE_TAGS:
            lat["protection" if at_fill else "candle"].append(max(0, b["ts_ms"] - o["ts_ms"]) / 1e3)
    on = set(filter(None, summ["kill_switch"].split(",")))
    return {
        "equity": summ["equity"],
        "open_positions": sum(1 for p in summ["positions"].values() if p.get("amount")),
        "last_candle_s": summ["last_ts_ms"] / 1e3,
        "kill_switch": {r: int(r in on) for r in KILL_SWITCH_REASONS.values()},
        "fills": dict(Counter(f["symbol"] for f in fills)),
        "denials": dict(Counter(e["reason"] for e in events if e["kind"] == "order_denied")),
        "errors": dict(Counter(e["kind"] for e in events
                               if e["kind"] in ("exchange_error", "order_rejected",
                                                "order_failed"))),
        "resting": len({b["client_order_id"] for b in placed} - gone),
        "latency_n": {k: len(v) for k, v in lat.items()},
        "latency_sum": {k: round(sum(v), 3) for k, v in lat.items()},
    }


def scraped_figures(text: str) -> dict:
    """The same figures from a scrape of ``/metrics``."""
    s = samples(text)

    def by(name, label):
        return {dict(k[1])[label]: int(v) for k, v in s.items() if k[0] == name and v}

    acct = (("account", "live"),)
    return {
        "equity": s[("gridflow_equity", acct)],
        "open_positions": int(s[("gridflow_open_positions", acct)]),
        "last_candle_s": s[("gridflow_last_candle_timestamp_seconds", acct)],
        "kill_switch": {dict(k[1])["reason"]: int(v) for k, v in s.items()
                        if k[0] == "gridflow_kill_switch"},
        "fills": by("gridflow_fills_total", "symbol"),
        "denials": by("gridflow_order_denials_total", "reason"),
        "errors": by("gridflow_exchange_errors_total", "kind"),
        "resting": int(s.get(("gridflow_resting_orders", acct), 0)),
        "latency_n": {k: int(s[(f"gridflow_{n}_seconds_count", ())]) for k, n in
                      (("candle", "candle_close_to_order_sent"),
                       ("protection", "fill_to_protection_sent"))},
        "latency_sum": {k: round(s[(f"gridflow_{n}_seconds_sum", ())], 3) for k, n in
                        (("candle", "candle_close_to_order_sent"),
                         ("protection", "fill_to_protection_sent"))},
    }


def wait_for(check, timeout: float, what: str):
    """:func:`live_harness.wait_until`."""
    from live_harness import wait_until

    return wait_until(check, timeout, what)


def test_a_scrape_of_a_running_live_flow_equals_its_journal_and_health_turns_stale(tmp_path):
    """A live flow with ``live.ops.metrics_port`` trades a grid on BTC and ETH at the local
    exchange for 12 candles (entries, fills, protective orders, daily-entry denials); a
    scrape of ``/metrics`` then parses and equals the journal's figures, and ``/health``
    is 200. ETH's candles then stop (one more) while BTC's go on: ``/health`` turns 503
    naming ETH/USDT once the engine journals ``data_stale`` (2 candles of exchange
    time)."""
    from live_harness import H, LiveProcess, candles, settle, start_exchange, write_live_config

    n = 12
    rows = {s: candles(s) for s in ("BTC/USDT", "ETH/USDT")}
    rows["ETH/USDT"] = rows["ETH/USDT"][rows["ETH/USDT"][:, 0] <= START + n * H]
    fx = start_exchange(START, rows=rows)
    port = free_port()
    db = tmp_path / "j.db"
    cfg = write_live_config(tmp_path / "live.toml", db, fx, START + 40 * H,
                            extra=f"[live.ops]\nmetrics_port = {port}\n",
                            strategy={"atr_start": 0.2, "atr_step": 0.3},
                            risk={"max_daily_entries": 1},
                            stream_opts={"stale_s": 120.0})  # the clock waits on the test
    proc = LiveProcess(cfg, db, tmp_path, recovery=False)
    base = f"http://127.0.0.1:{port}"
    try:
        proc.start()
        for _ in range(n):
            settle(db, RUN, fx.now_ms() - H, proc, fx=fx)
            fx.step()
        settle(db, RUN, fx.now_ms() - H, proc, fx=fx)
        assert proc.alive(), proc.logs()[-3000:]
        state: dict = {}

        def equal():  # the metrics sink and the journal sink see the same batches
            state["journal"] = journal_figures(db)
            try:
                state["scrape"] = scraped_figures(get(base + "/metrics")[1])
            except KeyError as missing:  # a metric not exported yet
                state["scrape"] = f"missing {missing}"
            return state["journal"] == state["scrape"]

        try:
            wait_for(equal, 20.0, "scrape vs journal")
        except AssertionError:
            pytest.fail(f"scrape {state.get('scrape')}\n!= journal {state.get('journal')}\n"
                        + proc.logs()[-2000:])
        fig = state["scrape"]
        assert sum(fig["fills"].values()) > 0 and fig["denials"].get("DAILY_ENTRIES", 0) > 0
        assert fig["latency_n"]["candle"] > 0 and fig["latency_n"]["protection"] > 0
        code, body = get(base + "/health")
        assert code == 200 and json.loads(body)["status"] == "ok", body
        for _ in range(4):  # BTC closes 4 more candles, ETH one
            fx.step()
            time.sleep(0.5)
        code, body = wait_for(lambda: (r := get(base + "/health"))[0] == 503 and r, 30.0,
                              "/health after ETH's candles stopped")
        names = {d["symbol"] for d in json.loads(body)["stale_data"]}
        assert names == {"ETH/USDT"}, body  # BTC's candles go on
        assert samples(get(base + "/metrics")[1])[
            ("gridflow_data_stale", (("account", "live"), ("symbol", "ETH/USDT")))] == 1, names
    finally:
        fx.stop()
