"""Binance spot through ``python -m bytewax.run dataflows.live:build(...)`` against the
local exchange's spot dialect (real ``ccxt.binance`` over HTTP, real bundled candles,
Binance spot's real filters and fees, a real SQLite journal): the stop rests as a
STOP_LOSS_LIMIT, the take profit is watched by the engine."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from live_harness import KEY, SECRET, H
from test_live_flow import RUN, _fills_diff, exchange_vs_journal
from test_live_funding import BTC, START
from venue_checks import (
    TRANSPORT,
    assert_faults_journaled,
    assert_one_to_one,
    assert_restarts_clean,
    every_fault,
    paper_and_replay,
    venue_run,
)

from gridflow.fakex import FaultPlan
from gridflow.fakex.spot_markets import binance_spot_filters
from gridflow.journal.store import read_events, read_fills, read_orders, read_summaries

SYMS = ("BTC/USDT", "ETH/USDT", "XRP/USDT", "ADA/USDT")
SPOT = {s: binance_spot_filters(s) for s in SYMS}
"""Binance spot's real filters of the traded pairs: the local exchange keeps them, the
config's [markets] repeat them for the engine."""


def spot_run(tmp_path, steps: int, symbols=SYMS, **kw):
    """A flow on the local exchange's Binance spot dialect
    (:func:`venue_checks.venue_run`)."""
    return venue_run(tmp_path, "binance", symbols, {s: SPOT.get(s) or binance_spot_filters(s)
                                                    for s in symbols}, steps, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted, fault-free live run on Binance spot over 40 candles."""
    return spot_run(tmp_path_factory.mktemp("spot_ref"), 40)


def test_live_on_binance_spot_the_journal_matches_the_exchange(reference):
    """Every order the exchange accepted was sent once and journaled, fills equal its
    trades one to one (a buy's commission withheld in base), a stop-limit covered
    every position at every close, and no credential reaches a log or the journal."""
    fx, db, bad, proc = reference
    assert_one_to_one(fx, db, bad, 40, 6)
    base_fees = [f for f in read_fills(f"sqlite:///{db}", RUN) if f["fee_base"] > 0]
    assert base_fees and all(f["side"] == "buy" for f in base_fees)
    types = {o["type"] for o in fx.orders()}
    assert "STOP_LOSS_LIMIT" in types and "TAKE_PROFIT_LIMIT" not in types
    text = proc.logs() + db.read_bytes().decode("latin-1")
    for secret in (KEY, SECRET):
        assert secret not in text
    assert not [e for e in read_events(f"sqlite:///{db}", RUN)
                if e["kind"] in ("orphan_fill", "position_mismatch", "fill_inconsistent")]


def test_spot_stops_are_stop_limits_on_the_tick_and_each_take_profit_follows_its_stops_cancel(
        reference):
    """What reached the exchange: every stop a STOP_LOSS_LIMIT whose limit is 0.5 % below
    its trigger, on the tick (rounded down); every take profit a market sell the engine
    sent once the price reached it, accepted only after the stop holding the base was
    cancelled (nothing else in between re-locked it)."""
    fx, db, _, _ = reference
    stops = [o for o in fx.orders() if o["type"] == "STOP_LOSS_LIMIT"]
    assert len(stops) >= 10
    for o in stops:
        tick = SPOT[o["symbol"]]["price_tick"]
        want = math.floor(o["stopPrice"] * 0.995 / tick + 1e-9) * tick
        assert abs(o["price"] - want) < tick * 1e-6, o
        assert o["price"] <= o["stopPrice"] * 0.995 + 1e-9 and o["side"] == "sell"
    mine = {o["client_order_id"]: o for o in read_orders(f"sqlite:///{db}", RUN)}
    tps = [c for c, o in mine.items() if o["tag"] == "TP"]
    assert tps and all(mine[c]["type"] == "market" for c in tps)
    log = [r for r in fx.request_log if r["path"] == "/api/v3/order" and r["status"] == 200
           and r["method"] in ("POST", "DELETE")]  # (a GET looks the cancelled stop up)
    for c in tps:
        at = next(i for i, r in enumerate(log) if r["method"] == "POST"
                  and r["client_order_id"] == c)
        sym = mine[c]["symbol"]
        before = [r for r in log[:at] if mine.get(r["client_order_id"], {}).get(
            "symbol") == sym and mine[r["client_order_id"]]["tag"] == "SL"]
        assert before[-1]["method"] == "DELETE", (c, before[-3:])  # the stop, cancelled
    sells = [t for t in fx.trades() if t["clientOrderId"] in tps]
    assert sells and all(t["side"] == "sell" for t in sells)


def test_paper_on_binance_spot_sends_the_orders_of_the_replay(tmp_path):
    """Paper on Binance spot: candles through the real ccxt.binance from the local
    exchange's spot dialect, the orders of the replay of the same candles (its fees and
    filters)."""
    fx, paper, replay = paper_and_replay(tmp_path, "binance", {BTC: SPOT[BTC]})
    assert any("/api/v3/klines" in r["path"] for r in fx.request_log)
    assert len(paper) >= 5 and {"TP", "SL"} & {o[2] for o in paper}
    assert paper == replay


def _gap_rows() -> np.ndarray:
    """BTC/USDT 1h candles: 61 quiet ones around 100 (ATR about 1), one that dips to fill
    the first level (99.5), a quiet one (its stop rests), then one that opens at 90:
    through the stop (4 % under the entry, 95.52) and its limit (0.5 % further, 95.04)."""
    t0 = START - 60 * H
    rows = [(t0 + k * H, 100.0, 100.5, 99.5, 100.0, 10.0) for k in range(60)]
    rows.append((START, 100.0, 100.5, 99.5, 100.0, 10.0))  # the first decision's
    rows.append((START + H, 100.0, 100.2, 99.0, 99.8, 10.0))  # fills L0 (99.5)
    rows.append((START + 2 * H, 99.8, 100.2, 99.6, 99.8, 10.0))  # the stop rests
    rows.append((START + 3 * H, 90.0, 91.0, 89.0, 90.5, 10.0))  # the gap
    rows += [(START + k * H, 90.5, 91.0, 90.0, 90.5, 10.0) for k in range(4, 10)]
    return np.array(rows, dtype=float)


def test_a_gap_through_the_stop_limit_is_closed_at_market_journaled_and_alerted(tmp_path):
    """The stop triggers at the gap's open but cannot fill (its limit is above the
    price): it rests, untouched. At that candle's close the engine finds the position
    through its stop, journals stop_not_filled (an alert), cancels the stop and sells the
    whole position at market; the exchange shows the stop cancelled unfilled."""
    fx, db, bad, proc = spot_run(tmp_path, 8, symbols=(BTC,), rows={BTC: _gap_rows()},
                                 strategy={"levels": 2, "atr_step": 20.0})
    stops = [o for o in fx.orders() if "STOP_LOSS_LIMIT" in (o["type"], o.get("origType"))]
    gapped = [o for o in stops if o["status"] == "CANCELED" and o["executedQty"] == 0.0
              and o["stopPrice"] > 91.0]
    assert gapped, stops
    ev = [e for e in read_events(f"sqlite:///{db}", RUN) if e["kind"] == "stop_not_filled"]
    assert [(e["symbol"], e["reason"]) for e in ev] == [(BTC, "PRICE_THROUGH_LIMIT")]
    closes = [o for o in read_orders(f"sqlite:///{db}", RUN) if o["tag"] == "CLOSE"]
    assert [(o["type"], o["side"]) for o in closes] == [("market", "sell")]
    sold = [t for t in fx.trades() if t["clientOrderId"] == closes[0]["client_order_id"]]
    assert sold and all(t["price"] < 91.0 for t in sold)
    assert abs(sum(t["qty"] for t in sold) - closes[0]["amount"]) < 1e-9  # all of it
    assert bad == []  # and at every close before the gap a stop-limit was resting
    orders_, sent, accepted, fills, trades, _ = exchange_vs_journal(fx, db)
    assert fills == trades and max(accepted.values()) == 1


def test_spot_faults_over_500_orders_nothing_twice_every_fault_journaled(tmp_path):
    """Long grids on 4 pairs under timeouts, 429s, 5xxs, dropped connections, refusals
    (insufficient balance) and partial fills: >= 500 places, nothing sent twice, every
    injected fault in the broker journal of its order, a stop-limit under every position
    at every close, and the engine's positions within the exchange's base."""
    fx, db, bad, _ = spot_run(tmp_path, 70, faults=every_fault(13), recovery=False)
    assert_faults_journaled(fx, db, bad)
    summary = read_summaries(f"sqlite:///{db}", RUN)[-1]
    mine = {s: p["amount"] for s, p in summary["positions"].items() if p["amount"]}
    theirs = {s: p["amount"] for s, p in fx.positions().items()}
    for s, amt in mine.items():  # the exchange holds ours plus what is below a step
        assert 0.0 <= theirs.get(s, 0.0) - amt < SPOT[s]["amount_step"] + 1e-9, (mine, theirs)



def test_spot_10_sigkills_under_transport_faults_end_as_the_uninterrupted_run(
        reference, tmp_path):
    """10 SIGKILLs (half within a second after a candle close) while a third of the order
    requests time out, are refused or dropped: nothing reaches the exchange twice, no
    position is without its stop-limit at a close, and the balances end equal to the
    uninterrupted run's (base and quote, to 1e-6)."""
    ref_fx = reference[0]
    rng = random.Random(22)
    kills = rng.sample(range(2, 40), 10)
    fx, db, bad, proc = spot_run(tmp_path, 40, faults=FaultPlan(seed=22, **TRANSPORT),
                                 kills=(kills[:5], kills[5:]), rng=rng)
    assert_restarts_clean(fx, db, bad, proc)
    ours, ref = fx.balances(), ref_fx.balances()
    assert set(ours) == set(ref) and all(
        abs(ours[a]["total"] - ref[a]["total"]) <= 1e-6 for a in ours), _fills_diff(fx, ref_fx)
