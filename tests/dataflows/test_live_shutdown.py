"""Graceful shutdown of the live flow (``python -m bytewax.run dataflows.live:build(...)``
against the local exchange, websocket streams, a real SQLite journal, Bytewax
recovery, notifications to a real ``json://`` endpoint on 127.0.0.1): SIGTERM cancels
(or keeps) the resting entries, keeps the stops, journals and notifies ``shutdown`` and
exits 0 within the bound; the next start reports a clean previous stop, a start after
SIGKILL an unclean one. Plus the pure parts (the engine's stop, the journal's view)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest
from live_harness import (
    H,
    LiveProcess,
    settle,
    start_exchange,
    unprotected,
    wait_until,
    write_live_config,
)
from test_alert_sink import http_server

from gridflow.event_kinds import EventKind, Reason
from gridflow.journal.broker_rows import read_broker
from gridflow.journal.store import read_events, read_summaries
from gridflow.operators.live_shutdown import ShutdownRequest, previous_stop, start_event

START = int(datetime(2024, 3, 5, 3, tzinfo=timezone.utc).timestamp() * 1000)
"""A few candles before the grid's first BTC fill of the bundled data (short tests)."""
RUN = "live-test"
BOUND_S = 10.0
"""The acceptance bound: SIGTERM to exit, wall seconds (``shutdown_timeout_s`` too)."""


def _entries(fx, status=("NEW", "PARTIALLY_FILLED")) -> dict[str, dict]:
    """The exchange's resting grid entries (regular non-reduce-only limits) by client id."""
    return {o["clientOrderId"]: o for o in fx.orders()
            if not o["algo"] and not o["reduceOnly"] and o["type"] == "LIMIT"
            and o["status"] in status}


def _stops(fx) -> set[str]:
    return {o["clientOrderId"] for o in fx.orders() if o["algo"] and o["status"] == "NEW"}


def _shutdowns(db) -> list[dict]:
    return [e for e in read_events(f"sqlite:///{db}", RUN) if e["kind"] == EventKind.SHUTDOWN]


def _detail(e: dict) -> dict:
    d = e["detail"]
    return json.loads(d) if isinstance(d, str) else d


def _wait(cond, timeout: float, proc: LiveProcess, what: str):
    """:func:`live_harness.wait_until` with the flow's logs."""
    return wait_until(cond, timeout, what, proc.logs)


def _trade_until_resting(fx, db, proc, need_position: bool, steps: int = 40) -> None:
    """Close candles one at a time until the exchange holds resting entries (and, with
    ``need_position``, a position covered by a stop)."""
    for _ in range(steps):
        settle(db, RUN, fx.now_ms() - H, proc, fx=fx)
        assert proc.alive(), proc.logs()[-3000:]
        if _entries(fx) and (not need_position or (fx.positions() and _stops(fx))):
            return
        fx.step()
    raise AssertionError("no resting entries (and position) after the steps")


def _flow(tmp_path, fx, port: int, on_shutdown: str) -> tuple[LiveProcess, object]:
    db = tmp_path / "journal.db"
    extra = (f'apprise_urls = "json://127.0.0.1:{port}/"\n[live.ops]\n'
             f'on_shutdown = "{on_shutdown}"\nshutdown_timeout_s = {BOUND_S}\n'
             'daily_at = "23:59"\n')
    cfg = write_live_config(tmp_path / "live.toml", db, fx, end_ms=START + 400 * H,
                            extra=extra)
    return LiveProcess(cfg, db, tmp_path), db


@contextmanager
def _trading(tmp_path, on_shutdown: str, need_position: bool) -> Iterator[tuple]:
    """A local exchange, a ``json://`` endpoint and a live flow (``on_shutdown``) that
    traded until entries rest on the exchange (and a position with its stop, with
    ``need_position``): yields ``(fx, srv, proc, db)``."""
    fx = start_exchange(START)
    try:
        with http_server() as srv:
            proc, db = _flow(tmp_path, fx, srv.server_port, on_shutdown)
            proc.start()
            _trade_until_resting(fx, db, proc, need_position=need_position)
            yield fx, srv, proc, db
    finally:
        fx.stop()


def _sigterm(proc: LiveProcess) -> int:
    proc.proc.send_signal(signal.SIGTERM)
    return proc.wait(BOUND_S)  # TimeoutExpired past the bound


def _posted(srv, reason: str) -> list[dict]:
    return [p["json"] for p in srv.posts
            if "shutdown" in p["json"].get("title", "") and reason in p["json"]["title"]]


def test_sigterm_cancels_entries_keeps_stops_then_clean_and_unclean_starts(tmp_path):
    with _trading(tmp_path, "cancel_entries", need_position=True) as (fx, srv, proc, db):
        entries, stops = set(_entries(fx)), _stops(fx)

        assert _sigterm(proc) == 0, proc.logs()[-3000:]
        after = fx.orders()
        status = {o["clientOrderId"]: o["status"] for o in after}
        assert {status[c] for c in entries} == {"CANCELED"}
        assert stops <= _stops(fx) and not unprotected(fx)
        assert fx.positions()
        (ev,) = _shutdowns(db)
        d = _detail(ev)
        assert ev["reason"] == Reason.SIGNAL and d["signal"] == "SIGTERM"
        assert set(d["entries_cancelled"]) == entries
        assert d["entries_kept"] == [] and set(d["positions"]) == set(fx.positions())
        assert set(d["protective_kept"]) >= stops
        assert _posted(srv, "SIGNAL"), srv.posts
        cancels = [r for r in read_broker(f"sqlite:///{db}", RUN)
                   if r["action"] == "cancel" and r["client_order_id"] in entries]
        assert {r["status"] for r in cancels} <= {"canceled", "not_found"}

        # restart with the recovery state of the graceful stop: a clean start that
        # trades on (new entries at the next close), nothing sent twice
        proc.start()
        clean = _wait(lambda: [e for e in _shutdowns(db) if e["reason"] == Reason.CLEAN],
                      30, proc, "a CLEAN shutdown event")
        assert _detail(clean[0])["previous"] == "clean"
        assert _detail(clean[0])["signal"] == "SIGTERM"
        _wait(lambda: _posted(srv, "CLEAN"), 10, proc, "the CLEAN notification")
        fx.step()
        _trade_until_resting(fx, db, proc, need_position=False)
        assert max(fx.accepted_client_ids().values()) == 1  # nothing sent twice
        assert not set(_entries(fx)) & entries  # new entries, not the cancelled ones
        kinds = {e["kind"] for e in read_events(f"sqlite:///{db}", RUN)}
        assert not kinds & {EventKind.ORPHAN_ORDER, EventKind.ORPHAN_FILL,
                            EventKind.ORDER_VANISHED, EventKind.POSITION_MISMATCH}
        assert "order_moves_refused" not in read_summaries(
            f"sqlite:///{db}", RUN)[0]["counters"]

        # SIGKILL: the next start says the previous stop was not clean
        proc.kill()
        proc.start()
        unclean = _wait(lambda: [e for e in _shutdowns(db)
                                 if e["reason"] == Reason.UNCLEAN], 30, proc,
                        "an UNCLEAN shutdown event")
        assert _detail(unclean[0])["previous"] == "unclean"
        assert _wait(lambda: _posted(srv, "UNCLEAN"), 10, proc, "the UNCLEAN notification")
        assert _sigterm(proc) == 0, proc.logs()[-3000:]


def test_sigterm_with_keep_leaves_the_entries_on_the_exchange(tmp_path):
    with _trading(tmp_path, "keep", need_position=False) as (fx, srv, proc, db):
        entries, stops = set(_entries(fx)), _stops(fx)
        assert _sigterm(proc) == 0, proc.logs()[-3000:]
        assert set(_entries(fx)) == entries and stops <= _stops(fx)
        (ev,) = _shutdowns(db)
        d = _detail(ev)
        assert d["on_shutdown"] == "keep" and d["entries_cancelled"] == []
        assert set(d["entries_kept"]) == entries
        assert not [r for r in read_broker(f"sqlite:///{db}", RUN)
                    if r["action"] == "cancel" and r["client_order_id"] in entries]


# ---- the pure parts ---------------------------------------------------------------
def _ev(kind, reason, account="a", ts=5, **detail) -> dict:
    return {"kind": kind, "reason": reason, "account": account, "ts_ms": ts,
            "detail": json.dumps(detail)}


def test_previous_stop_reads_the_journal_of_the_run():
    assert previous_stop([], [], ["a"]) == (1, {})
    trading = [_ev(EventKind.ENGINE_STARTED, Reason.LIVE, ts=7)]
    # first process killed: unclean
    n, prev = previous_stop(trading, [], ["a"])
    assert n == 2 and prev["a"][0] == Reason.UNCLEAN and prev["a"][1]["stopped_ms"] == 7
    # first process stopped by SIGTERM: clean; the start event names it
    stopped = trading + [_ev(EventKind.SHUTDOWN, Reason.SIGNAL, ts=9, signal="SIGINT",
                             start_no=1)]
    n, prev = previous_stop(stopped, [], ["a", "b"])
    assert n == 2 and prev["a"][0] == Reason.CLEAN and prev["a"][1]["signal"] == "SIGINT"
    assert prev["b"][0] == Reason.UNCLEAN  # b journaled no shutdown
    ev = start_event("a", *prev["a"])
    assert ev.event_id == "shutdown:a:start-2" and ev.ts_ms == 9 and ev.seq == 0
    # second process (start 2) killed: its own stop is missing, the first's does not count
    again = stopped + [_ev(EventKind.SHUTDOWN, Reason.CLEAN, start_no=2)]
    n, prev = previous_stop(again, [], ["a"])
    assert n == 3 and prev["a"][0] == Reason.UNCLEAN
    # a complete run ended cleanly
    assert previous_stop(again, [{"account": "a", "complete": True}], ["a"])[1]["a"][0] \
        == Reason.CLEAN


def test_shutdown_request_is_checked():
    with pytest.raises(ValueError, match="on_shutdown"):
        ShutdownRequest("a", "SIGTERM", 1, "cancel_all")
    with pytest.raises(ValueError, match="start_no"):
        ShutdownRequest("a", "SIGTERM", 0)


BOUND_CHILD = """
import os, signal, time
from gridflow.dataflows import shutdown
assert shutdown.install({bound})
os.kill(os.getpid(), signal.SIGTERM)
t = time.monotonic()
while shutdown.requested() is None and time.monotonic() - t < 5:
    time.sleep(0.01)
print(shutdown.requested(), flush=True)
{then}
time.sleep(30)  # never ends by itself: the bound (or the second signal) ends it
"""


@pytest.mark.parametrize("then", ["", "os.kill(os.getpid(), signal.SIGINT)"])
def test_a_signal_is_seen_and_the_process_exits_at_the_bound_or_at_a_second_signal(then):
    run = subprocess.run([sys.executable, "-c", BOUND_CHILD.format(bound=0.5, then=then)],
                         capture_output=True, text=True, timeout=20)
    assert run.stdout.split() == ["SIGTERM"], run.stderr
    assert run.returncode == 1  # FORCED_EXIT, long before the child's 30 s sleep
    assert ("did not stop within 0.5 s" if not then else "SIGINT received while stopping") \
        in run.stderr
