"""The broker lanes' requests carried in child processes (``live.broker_processes``,
:mod:`gridflow.dataflows.broker_procs`): the same journal rows and exchange orders as
lanes in the flow's process, the account's one pacing kept across the children, a dead
child failing its lane, and no child outliving a SIGKILLed flow (real ccxt against the
local exchange, real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import test_broker_sink
from test_broker_sink import (
    RUN,
    begun_before_a_crash,
    intent,
    live_cfg,
    statuses,
    writes,
)

from gridflow.dataflows.broker_procs import BrokerProcessError, BrokerProcesses
from gridflow.dataflows.broker_sink import BrokerWriter, build_gateway


fx = test_broker_sink.fx  # the broker tests' local exchange, a fixture


def proc_writer(live, url: str, n: int, lanes: int) -> BrokerWriter:
    """A writer whose ``lanes`` lanes send from ``n`` broker processes."""
    def procs(first):
        ex = first.exchange
        return BrokerProcesses(live, url, RUN, n, lanes, throttle=ex.throttle,
                               markets=(ex.markets, ex.currencies))

    return BrokerWriter(url, RUN, lanes=lanes, procs_factory=procs,
                        gateway_factory=lambda src: build_gateway(live, markets_from=src))


def grid(k: int) -> list:
    """An entry and a take-profit-tagged sell of three symbols (five lanes' worth),
    round ``k`` of ids."""
    out = []
    for sym, px in (("BTC/USDT", 20_000.0), ("ETH/USDT", 1_500.0), ("SOL/USDT", 40.0)):
        s = sym.split("/")[0]
        out += [intent(f"{s}e{k}", symbol=sym, price=px, amount=1.0 if s == "SOL" else 0.01),
                intent(f"{s}t{k}", symbol=sym, tag="TP", side="sell", price=px * 1.8,
                       amount=1.0 if s == "SOL" else 0.01)]  # its own lane, not resting
        # against a position (a reduce-only order without one is refused)
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:  # a zombie is gone too
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_lanes_in_broker_processes_send_once_and_journal_as_in_process_lanes(fx, tmp_path):
    live = live_cfg(fx).model_copy(update={"broker_processes": 2, "broker_lanes": 6})
    url = f"sqlite:///{tmp_path / 'j.db'}"
    w = proc_writer(live, url, 2, 6)
    try:
        places = grid(0)
        outs = w.handle_batch(places)
        pids, children = w._procs.pids, list(w._procs._procs)
        assert len(pids) == 2 and os.getpid() not in pids and all(map(alive, pids))
        # the flow's own client loaded the markets and sent nothing: the children did
        assert "exchangeInfo" in (w.gateway.exchange.last_request_url or "")
        cancels = [intent(it.client_order_id, "cancel", symbol=it.symbol, tag=it.tag)
                   for it in places]
        outs += w.handle_batch(cancels)
    finally:
        w.close()
    assert [o.status for o in outs] == ["sent"] * 6 + ["canceled"] * 6
    assert statuses(url) == {o.intent_id: o.status for o in outs}
    posts = [p for m, p in writes(fx) if m == "POST"]
    assert len(posts) == 6  # each place once
    assert {o["clientOrderId"] for o in fx.orders()} >= {it.client_order_id for it in places}
    assert not any(map(alive, pids))  # closed with the writer: each ended by itself
    assert [c.returncode for c in children] == [0, 0]  # (not killed after a wait)


def test_paced_children_keep_the_accounts_one_pacing(fx, tmp_path):
    """40 ms per cost unit and no burst: three symbols' entries, one batch request of
    cost 5 each (ccxt's table), on three lanes in two children (lanes 0 and 2 in the
    first) reach the exchange 200 ms apart: 400 ms first to last. Each child pacing
    itself would let them come within 200 ms."""
    live = live_cfg(fx)
    live = live.model_copy(update={"broker_processes": 2, "broker_lanes": 3, "exchange":
                                   live.exchange.model_copy(update={"rate_limit_ms": 40,
                                                                    "rate_limit_burst": 0})})
    url = f"sqlite:///{tmp_path / 'j.db'}"
    w = proc_writer(live, url, 2, 3)
    try:
        outs = w.handle_batch([it for k in range(3) for it in grid(k) if it.tag != "TP"])
    finally:
        w.close()
    assert [o.status for o in outs] == ["sent"] * 9
    walls = sorted(r["wall"] for r in fx.request_log if r["method"] == "POST")
    assert len(walls) == 3  # a batch request per symbol
    assert walls[-1] - walls[0] >= 2 * 5 * 0.040 * 0.9


def test_rows_left_sending_are_looked_up_by_the_children_and_sent_only_if_missing(
        fx, tmp_path):
    """A crash left two rows ``sending``: one order reached the exchange, one did not.
    The children look both up by client id: the first is resolved without a send, the
    second sent once."""
    live = live_cfg(fx)
    url = f"sqlite:///{tmp_path / 'j.db'}"
    there, lost = grid(0)[0], grid(0)[2]
    begun_before_a_crash(url, [there, lost])
    first = build_gateway(live)
    assert first.place(there).status == "sent"  # reached the exchange before the crash
    w = proc_writer(live, url, 2, 4)
    try:
        outs = w.handle_batch([there, lost])
    finally:
        w.close()
    assert {o.client_order_id: o.status for o in outs} == {"BTCe0": "sent", "ETHe0": "sent"}
    posts = [p for m, p in writes(fx) if m == "POST"]
    assert len(posts) == 2  # BTC's before the crash, ETH's now: nothing twice
    assert statuses(url) == {"BTCe0:place": "sent", "ETHe0:place": "sent"}


def test_an_exception_in_a_child_fails_the_call_and_the_lane_serves_on(fx, tmp_path):
    live = live_cfg(fx)
    first = build_gateway(live)
    ex = first.exchange
    procs = BrokerProcesses(live, f"sqlite:///{tmp_path / 'j.db'}", RUN, 1, 1,
                            markets=(ex.markets, ex.currencies))
    try:
        with pytest.raises(BrokerProcessError, match="AttributeError"):
            procs.carry(0, None, None, None)  # not an intent: the carrier raises
        out = procs.carry(0, grid(0)[0], None, None)
    finally:
        procs.close()
    assert [o.status for o in out] == ["sent"]


def test_a_dead_broker_process_fails_its_lane_and_the_rows_stay_sending(fx, tmp_path):
    live = live_cfg(fx)
    url = f"sqlite:///{tmp_path / 'j.db'}"
    w = proc_writer(live, url, 1, 2)
    try:
        w.handle_batch(grid(0)[:1])
        os.kill(w._procs.pids[0], signal.SIGKILL)
        time.sleep(0.2)
        with pytest.raises(BrokerProcessError, match="gone"):
            w.handle_batch(grid(1)[:1])
        assert statuses(url)["BTCe1:place"] == "sending"  # the flow recovers from here
    finally:
        w.close()


def test_no_broker_process_outlives_a_sigkilled_flow(fx, tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.path.join(os.path.dirname(__file__))!r})
        from test_broker_sink import live_cfg
        from gridflow.dataflows.broker_procs import BrokerProcesses
        from gridflow.dataflows.broker_sink import build_gateway
        class FX:
            def ccxt_urls(self):
                return {fx.ccxt_urls()!r}
        live = live_cfg(FX())
        ex = build_gateway(live).exchange
        p = BrokerProcesses(live, {f"sqlite:///{tmp_path / 'j.db'}"!r}, "r", 2, 4,
                            markets=(ex.markets, ex.currencies))
        print(*p.pids, flush=True)
        time.sleep(600)
    """)
    flow = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(x) for x in flow.stdout.readline().split()]
        assert len(pids) == 2 and all(map(alive, pids))
        flow.send_signal(signal.SIGKILL)
        flow.wait()
        deadline = time.monotonic() + 10
        while any(map(alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(alive, pids))
    finally:
        flow.kill()
