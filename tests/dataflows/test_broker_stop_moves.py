"""Broker sink, a moved stop (``cancel_after``): the old stop is cancelled only once
its successor rests, also after a crash; against the local exchange over HTTP (real
ccxt, real Bytewax)."""

from __future__ import annotations

import test_broker_sink
from test_broker_sink import (
    assert_once,
    begun_before_a_crash,
    cfg,
    gateway,
    intent,
    live_cfg,
    order_statuses,
    run_sink,
    statuses,
    writes,
)

from gridflow.dataflows.broker_sink import BrokerSink
from gridflow.fakex import FaultPlan


fx = test_broker_sink.fx  # the broker tests' local exchange, a fixture


STOP = {"type": "stop_market", "side": "sell", "price": None, "amount": 0.01,
        "reduce_only": True, "tag": "SL"}


def test_a_refused_stop_move_leaves_the_old_stop_resting(fx, tmp_path) -> None:
    gw = gateway(fx)
    c = cfg(tmp_path, live_cfg(fx))
    assert gw.place(intent("pos", type="market", price=None)).status == "sent"
    run_sink(BrokerSink(c, gateway=gw), [intent("s1", stop_price=15_000.0, **STOP)])
    fx.set_faults(FaultPlan(seed=1, script=[("reject", "/algoOrder")]))
    before = len(writes(fx))
    run_sink(BrokerSink(c, gateway=gw), [intent("s2", stop_price=16_000.0, cancel_after="s1",
                                                **STOP)])
    assert statuses(c.db_url) == {"s1:place": "sent", "s2:place": "rejected",
                                  "s1:cancel-after:s2": "skipped"}
    assert [m for m, _ in writes(fx)[before:]] == ["POST"]  # the refused place, no DELETE
    assert order_statuses(fx)["s1"] == "NEW"
    # accepted the next time: then, and only then, the old stop is cancelled
    run_sink(BrokerSink(c, gateway=gw), [intent("s3", stop_price=16_000.0, cancel_after="s1",
                                                **STOP)])
    orders = order_statuses(fx)
    assert (orders["s1"], orders["s3"]) == ("CANCELED", "NEW")
    assert [m for m, _ in writes(fx)[before + 1:]] == ["POST", "DELETE"]
    assert_once(fx)


def test_a_stop_move_sent_before_a_crash_still_cancels_the_old_stop(fx, tmp_path) -> None:
    """The crash came after the new stop was placed, before its old one was cancelled
    and before any outcome was journaled: both rows ``sending``. The lookup finds the
    new stop, and the old one is cancelled now."""
    gw = gateway(fx)
    c = cfg(tmp_path, live_cfg(fx))
    assert gw.place(intent("pos", type="market", price=None)).status == "sent"
    assert gw.place(intent("m1", stop_price=15_000.0, **STOP)).status == "sent"
    move = intent("m2", stop_price=16_000.0, cancel_after="m1", **STOP)
    assert gw.place(move).status == "sent"
    begun_before_a_crash(c.db_url, [move, gw.replaced_cancel(move)])
    before = len(writes(fx))
    run_sink(BrokerSink(c, gateway=gw), [move])
    assert statuses(c.db_url) == {"m2:place": "sent", "m1:cancel-after:m2": "canceled"}
    assert [m for m, _ in writes(fx)[before:]] == ["DELETE"]
    orders = order_statuses(fx)
    assert (orders["m1"], orders["m2"]) == ("CANCELED", "NEW")
    assert_once(fx)
