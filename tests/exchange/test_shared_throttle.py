"""The broker's shared request pacing (:class:`gridflow.exchange.client.SharedThrottle`):
ccxt's pace across every lane's client, a burst ahead of it within the venue's order
limits (its wiring in the broker's gateways: ``tests/dataflows/test_broker_lanes.py``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.exchange.client import SharedThrottle


def test_shared_throttle_spaces_requests_of_all_clients() -> None:
    slept: list[float] = []
    throttle = SharedThrottle(100.0, sleep=slept.append)
    for cost in (1, 1, 2, 1):
        throttle(cost)
    # each request reserves rateLimit × its cost after the previous one's slot
    assert len(slept) == 3
    assert slept[0] == pytest.approx(0.1, abs=0.02)
    assert slept[1] == pytest.approx(0.2, abs=0.02)
    assert slept[2] == pytest.approx(0.4, abs=0.02)
    free = SharedThrottle(0.0, sleep=slept.append)
    free(5)
    assert len(slept) == 3


def test_shared_throttle_lets_a_burst_go_at_once_then_keeps_ccxt_pace() -> None:
    now, slept = [0.0], []
    throttle = SharedThrottle(100.0, burst=3.0, sleep=slept.append, clock=lambda: now[0])
    for _ in range(4):  # three units ahead of the even pacing: four go at once
        throttle(1)
    assert slept == []
    throttle(1)
    assert slept == [pytest.approx(0.1)]
    now[0] = 10.0  # a quiet while: the burst is back, and no more
    for _ in range(4):
        throttle(1)
    throttle(2)
    assert slept[1:] == [pytest.approx(0.1)]


@settings(max_examples=200, deadline=None)
@given(reqs=st.lists(st.tuples(st.floats(0.0, 0.5), st.sampled_from([0.2, 1.0, 4.0, 5.0])),
                     min_size=1, max_size=80),
       burst=st.sampled_from([0.0, 3.0, 200.0]), window=st.floats(0.05, 3.0))
def test_shared_throttle_never_sends_more_than_its_pace_and_burst_allow(reqs, burst,
                                                                        window) -> None:
    """Whatever the arrivals, the cost started in any window of ``window`` s is at most
    ``burst`` units plus the window's worth at ccxt's pace plus one request (the venue
    budget the defaults are chosen against: ``VenueInfo.rate_limit_burst``)."""
    unit = 0.05  # ccxt's binanceusdm rateLimit
    now, starts = [0.0], []
    throttle = SharedThrottle(unit * 1000, burst=burst, sleep=lambda s: starts.append(
        now[0] + s), clock=lambda: now[0])
    for gap, cost in reqs:
        now[0] += gap
        n = len(starts)
        throttle(cost)
        if len(starts) == n:
            starts.append(now[0])
        starts[-1] = (starts[-1], cost)
    for t0, _ in starts:
        sent = sum(c for t, c in starts if t0 <= t < t0 + window)
        assert sent <= burst + window / unit + 5.0 + 1e-9


def test_the_burst_defaults_to_the_venues_and_can_be_set() -> None:
    from gridflow.config.live import ExchangeConfig

    assert ExchangeConfig(id="binanceusdm").burst() == 60.0
    assert ExchangeConfig(id="binanceusdm", rate_limit_ms=200).burst() == 0.0
    assert ExchangeConfig(id="bitget").burst() == 0.0
    assert ExchangeConfig(id="kraken", market_type="spot").burst() == 0.0
    assert ExchangeConfig(id="binanceusdm", rate_limit_burst=0).burst() == 0.0
    # Binance USDⓈ-M counts orders (300 per 10 s); gridflow's order requests cost at
    # least one ccxt unit per order (batchOrders 5 for up to 5, algoOrder 1, order 4),
    # so the bound of the property test above, in units, bounds the orders
    import ccxt

    ex = ccxt.binanceusdm()
    api = ex.api["fapiPrivate"]["post"]
    assert min(api["batchOrders"]["cost"] / 5, api["algoOrder"]["cost"],
               api["order"]["cost"]) >= 1
    assert ExchangeConfig(id="binanceusdm").burst() + 10_000 / ex.rateLimit + 5 <= 300
