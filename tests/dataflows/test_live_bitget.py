"""Bitget USDT-M (v2 mix API) through ``python -m bytewax.run dataflows.live:build(...)``
against the local exchange's Bitget dialect (real ``ccxt.bitget`` over HTTP, real bundled
candles and funding, a real SQLite journal)."""

from __future__ import annotations

import random

import pytest
from live_harness import KEY, PASSPHRASE, SECRET
from test_live_flow import RUN, _fills_diff
from test_live_funding import BTC, FUNDING_FILE, GF
from venue_checks import (
    TRANSPORT,
    assert_faults_journaled,
    assert_one_to_one,
    assert_restarts_clean,
    every_fault,
    paper_and_replay,
    venue_run,
)

from gridflow.data.funding import bundled_funding_files, read_funding
from gridflow.fakex import FaultPlan
from gridflow.fakex.bitget_markets import bitget_filters
from gridflow.journal.store import read_events, read_summaries


def test_paper_on_bitget_sends_the_orders_of_the_replay(tmp_path):
    """Paper on Bitget USDT-M: candles and settled funding rates through the real
    ccxt.bitget from the local exchange's Bitget dialect (its real BTCUSDT filters, which
    the config's market repeats), the orders of the replay of the same candles."""
    fx, paper, replay = paper_and_replay(tmp_path, "bitget", None,
                                         funding={BTC: read_funding(FUNDING_FILE)},
                                         strategy=GF, leverage=2.0)
    assert any("/api/v2/mix/market/" in r["path"] for r in fx.request_log)  # Bitget's own
    assert len(paper) >= 5 and "EXIT" in {o[2] for o in paper}
    assert paper == replay


SYMS = ("BTC/USDT", "ETH/USDT", "XRP/USDT", "ADA/USDT")
BITGET = {s: bitget_filters(s) for s in SYMS}
"""The real Bitget filters of the traded contracts: the local exchange keeps them, the
config's [markets] repeat them for the engine."""
FUNDING = {s: read_funding(p) for s, p in bundled_funding_files().items() if s in SYMS}
"""The bundled settled funding rates of those symbols, which the local exchange pays."""


def bitget_run(tmp_path, steps: int, **kw):
    """A live flow on the local exchange's Bitget dialect (:func:`venue_checks.venue_run`)
    over 4 symbols with their funding."""
    return venue_run(tmp_path, "bitget", SYMS, BITGET, steps, funding=FUNDING, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted, fault-free live run on Bitget over 40 candles of 4 symbols."""
    return bitget_run(tmp_path_factory.mktemp("bitget_ref"), 40)


def test_live_on_bitget_the_journal_matches_the_exchange_and_books_its_funding(reference):
    """Every order the exchange accepted was sent once and journaled, fills equal its
    trades one to one, a stop (plan order) covered every position at every close, each
    funding settlement is booked once, and no credential (the passphrase included)
    reaches a log or the journal."""
    fx, db, bad, proc = reference
    assert_one_to_one(fx, db, bad, 60, 8)
    paid = fx.funding_payments()
    booked = [e for e in read_events(f"sqlite:///{db}", RUN) if e["kind"] == "funding"]
    assert paid and sorted((e["symbol"], e["ts_ms"]) for e in booked) == sorted(
        (p["symbol"], p["time"]) for p in paid)
    text = proc.logs() + db.read_bytes().decode("latin-1")
    for secret in (KEY, SECRET, PASSPHRASE):
        assert secret not in text


def test_bitget_faults_over_500_orders_short_grids_nothing_twice_every_fault_journaled(
        tmp_path):
    """Short grids (one-way mode: Bitget reports them holdSide "short") under timeouts,
    429s, 5xxs, dropped connections, rejections and partial fills: >= 500 places, nothing
    sent twice, every injected fault in the broker journal of its order, stops kept, and
    the engine's positions are the exchange's at the end."""
    fx, db, bad, _ = bitget_run(tmp_path, 70, faults=every_fault(12), recovery=False,
                                strategy={"side": "short"})
    assert_faults_journaled(fx, db, bad)
    summary = read_summaries(f"sqlite:///{db}", RUN)[-1]
    mine = {s: p["amount"] * (-1 if p["side"] == "short" else 1)
            for s, p in summary["positions"].items() if p["amount"]}
    theirs = {s: p["amount"] for s, p in fx.positions().items()}
    assert set(mine) == set(theirs) and all(
        abs(mine[s] - theirs[s]) <= 1e-9 for s in mine), (mine, theirs)
    assert any(a < 0 for a in theirs.values()) or any(
        t["side"] == "sell" for t in fx.trades())  # short positions were traded


def test_bitget_10_sigkills_under_transport_faults_end_as_the_uninterrupted_run(
        reference, tmp_path):
    """10 SIGKILLs (half within a second after a candle close) while a third of the order
    requests time out, are refused or dropped: nothing reaches the exchange twice, no
    position is without a plan stop at a close, and the positions and wallet end equal
    to the uninterrupted run's (to 1e-6 USDT)."""
    ref_fx = reference[0]
    rng = random.Random(21)
    kills = rng.sample(range(2, 40), 10)
    fx, db, bad, proc = bitget_run(tmp_path, 40, faults=FaultPlan(seed=21, **TRANSPORT),
                                   kills=(kills[:5], kills[5:]), rng=rng)
    assert_restarts_clean(fx, db, bad, proc)
    assert fx.positions() == ref_fx.positions(), _fills_diff(fx, ref_fx)
    assert abs(fx.balance() - ref_fx.balance()) <= 1e-6, (
        _fills_diff(fx, ref_fx), _funding_diff(fx, ref_fx))


def _funding_diff(fx, ref_fx) -> str:
    """The funding payments of two runs side by side (symbol, time, paid)."""
    a = [(p["symbol"], p["time"], round(p["paid"], 6)) for p in fx.funding_payments()]
    b = [(p["symbol"], p["time"], round(p["paid"], 6)) for p in ref_fx.funding_payments()]
    return f"funding this run only: {[r for r in a if r not in b]}, reference only: " \
           f"{[r for r in b if r not in a]}"
