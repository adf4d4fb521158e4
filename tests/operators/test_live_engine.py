"""Live account engine on hand-built candles and exchange updates: the intents it sends,
how fills move the position and its stop, the risk gate, reconciliation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_engine import NOFEES, chunk

from gridflow.chunks import ExchangeUpdate, IndicatorChunk
from gridflow.config.live import LiveConfig
from gridflow.config.models import AccountConfig, GridAtrParams, MarketSpec, RiskConfig
from gridflow.events import Command, ExecutionReport, OrderOutcome
from gridflow.operators import kernel_layout as kl
from gridflow.operators.live_engine import LiveAccountEngine

H = 3_600_000
SYM = "BTC/USDT"
MKT = {SYM: MarketSpec(amount_step=0.001, price_tick=0.1, min_notional=5.0)}


def live_engine(risk=None, levels=3, capital=3000.0):
    acct = AccountConfig(
        name="t", capital_quote=capital, symbols=(SYM,),
        strategy=GridAtrParams(sma_period=2, atr_period=1, levels=levels, atr_start=1.0,
                               atr_step=1.0, sl_pct=0.5),
        risk=RiskConfig(**(risk or {})),
    )
    return LiveAccountEngine(acct, [SYM], {SYM: "1h"}, NOFEES, MKT, live=LiveConfig())


def warm(c: IndicatorChunk) -> IndicatorChunk:
    from dataclasses import replace

    return IndicatorChunk(replace(c.candles, warmup=True), c.values)


def upd(ts, reports=(), open_orders=(), positions=None):
    return ExchangeUpdate("t", ts, list(reports), list(open_orders), positions)


def fill(coid, side, price, amount, ts, rid, fee=0.0):
    return ExecutionReport(report_id=rid, client_order_id=coid, account="t", symbol=SYM,
                           ts_ms=ts, side=side, price=price, amount=amount, fee=fee)


def opened(intents):
    return [i for i in intents if i.action == "place"]


def started():
    """Warm-up candle 0, live candle 1; watermark past candle 1's close."""
    eng = live_engine()
    out = eng.on_chunk(warm(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0)))
    out.extend(eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=1)))
    assert not out.intents  # nothing before the watermark passes the candle's close
    out = eng.on_exchange(upd(2 * H, positions={}))  # the first state: nothing to adopt
    return eng, out


def two_levels_filled(tag: str, second_price: float = 80.0):
    """The started engine after level 0 then level 1 filled (two polls): the engine, the
    level intents, and the ``tag`` order placed after each fill."""
    eng, out = started()
    l0, l1 = opened(out.intents)[:2]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount,
                                                      2 * H + 1, "t1")]))
    first = next(i for i in out.intents if i.tag == tag)
    out = eng.on_exchange(upd(2 * H + 120_000, [fill(l1.client_order_id, "buy", second_price,
                                                       l1.amount, 2 * H + 2, "t2")]))
    second = next(i for i in out.intents if i.tag == tag and i.action == "place")
    return eng, (l0, l1), first, second


def test_warmup_is_never_traded_and_candles_wait_for_the_watermark():
    eng, out = started()
    places = opened(out.intents)
    # one decision, at candle 1's close: levels SMA - ATR * (1, 2, 3) = 90, 80, 70
    assert [(i.tag, i.side, i.type, i.price) for i in places] == [
        ("L0", "buy", "limit", 90.0), ("L1", "buy", "limit", 80.0)]
    assert all(i.ts_ms == 2 * H and not i.reduce_only for i in places)
    assert [o.client_order_id for o in out.orders] == [i.client_order_id for i in places]
    # amounts: 3000 capital / 3 levels = 1000 quote per level, floored to the step
    assert [i.amount for i in places] == [11.111, 12.5]
    # the margin cap counts every resting entry: the third would reach 100 % > 80 %
    denied = [e for e in out.events if e.kind == "order_denied"]
    assert [(e.reason, e.detail["level"]) for e in denied] == [("MAX_MARGIN_RATIO", 2)]
    assert eng.summary().candles == 2


def test_new_entries_say_whether_the_account_holds_their_margin_beside_every_resting_order():
    """Each level costs a third of the capital: the first two fit within 95 % of equity
    beside what rests, the third does not and must wait for the cancels before it."""
    eng = live_engine(risk={"max_margin_ratio": 1.0})
    eng.on_chunk(warm(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0)))
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=1))
    out = eng.on_exchange(upd(2 * H, positions={}))
    assert [(i.tag, i.margin_held) for i in opened(out.intents)] == [
        ("L0", True), ("L1", True), ("L2", False)]


def test_entry_fill_places_the_stop_at_once_and_it_follows_the_average():
    eng, out = started()
    l0, l1 = opened(out.intents)[:2]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount,
                                                      2 * H + 30_000, "trade-1")]))
    sl = [i for i in out.intents if i.tag == "SL"]
    tp = [i for i in out.intents if i.tag == "TP"]
    assert [(i.type, i.side, i.stop_price, i.amount, i.reduce_only) for i in sl] == [
        ("stop_market", "sell", 45.0, l0.amount, True)]
    assert [(i.price, i.amount) for i in tp] == [(100.0, l0.amount)]
    assert eng.positions()[SYM]["amount"] == l0.amount
    # a second level fills: the stop moves to the new average; the old one is cancelled
    # by the broker only once the new one is accepted (cancel after); the take profit
    # too (both reduce-only: one round trip after the fill, never two)
    out = eng.on_exchange(upd(2 * H + 120_000, [fill(l1.client_order_id, "buy", 80.0, l1.amount,
                                                      2 * H + 90_000, "trade-2")]))
    assert ("cancel", "SL") not in [(i.action, i.tag) for i in out.intents]
    new_sl = next(i for i in out.intents if i.action == "place" and i.tag == "SL")
    assert (new_sl.cancel_after, new_sl.cancel_first) == (sl[0].client_order_id, None)
    avg = (90.0 * l0.amount + 80.0 * l1.amount) / (l0.amount + l1.amount)
    assert new_sl.amount == l0.amount + l1.amount
    assert abs(new_sl.stop_price - avg * 0.5) <= 0.1
    new_tp = next(i for i in out.intents if i.action == "place" and i.tag == "TP")
    assert (new_tp.cancel_after, new_tp.cancel_first) == (tp[0].client_order_id, None)
    # the same report again (at-least-once delivery) changes nothing
    before = eng.positions()[SYM]["amount"]
    again = eng.on_exchange(upd(2 * H + 130_000, [fill(l1.client_order_id, "buy", 80.0,
                                                        l1.amount, 2 * H + 90_000, "trade-2")]))
    assert eng.positions()[SYM]["amount"] == before and not again.fills


def test_take_profit_fill_closes_the_cycle_and_cancels_what_is_left():
    eng, out = started()
    l0 = opened(out.intents)[0]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount,
                                                      2 * H + 1, "trade-1")]))
    tp = next(i for i in out.intents if i.tag == "TP")
    out = eng.on_exchange(upd(2 * H + 120_000, [fill(tp.client_order_id, "sell", 100.0,
                                                      l0.amount, 2 * H + 100_000, "trade-2")]))
    assert len(out.trades) == 1
    t = out.trades[0]
    assert t.exit_reason == "TP" and abs(t.pnl - 10.0 * l0.amount) < 1e-9
    cancels = {i.tag for i in out.intents if i.action == "cancel"}
    assert {"L1", "SL"} <= cancels
    assert eng.positions()[SYM]["amount"] == 0.0
    assert abs(eng.summary().cash - (3000.0 + 10.0 * l0.amount)) < 1e-9


def test_kill_switch_cancels_every_entry_and_places_none():
    eng, out = started()
    eng.state.ai[kl.AI_KILL] = 4  # the daily loss switch on
    out = eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=2))
    out.extend(eng.on_exchange(upd(3 * H)))
    assert not [i for i in out.intents if i.action == "place" and i.tag.startswith("L")]
    assert {i.tag for i in out.intents if i.action == "cancel"} == {"L0", "L1"}
    assert {e.reason for e in out.events if e.kind == "order_denied"} == {"KILL_SWITCH"}


def test_paused_account_places_no_entry():
    eng, _ = started()
    eng.apply_command(Command(command_id=1, account="t", kind="pause", payload={},
                              issued_at_ms=0, issued_by="test"))
    out = eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=2))
    out.extend(eng.on_exchange(upd(3 * H)))
    assert not [i for i in out.intents if i.action == "place"]
    assert {e.reason for e in out.events if e.kind == "order_denied"} == {"PAUSED"}


def test_rejected_stop_is_replaced_at_once_journaled_as_missing_then_closed_at_market():
    """A refused stop is decided again on the broker's answer, not at the next exchange
    message (a quiet stream could leave the position unprotected until then). Refusals
    count once per exchange update: the re-placed stop refused before the engine saw the
    exchange again is neither counted nor retried (the refusal may come from state not
    seen yet); refused again after an update, the position is closed at market."""
    eng, out = started()
    l0 = opened(out.intents)[0]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount,
                                                      2 * H + 1, "trade-1")]))
    sl = next(i for i in out.intents if i.tag == "SL")

    def refuse(i, tag="SL", error="InvalidOrder: -2021"):
        return eng.on_outcome(OrderOutcome(intent_id=i.intent_id,
                                           client_order_id=i.client_order_id,
                                           action="place", account="t", symbol=SYM, tag=tag,
                                           status="rejected", error=error))

    out = refuse(sl)
    assert [e.kind for e in out.events] == ["order_rejected", "stop_missing"]
    sl = next(i for i in out.intents if i.tag == "SL" and i.action == "place")
    assert (sl.type, sl.reduce_only, sl.amount) == ("stop_market", True, l0.amount)
    out = refuse(sl)  # before any exchange update: not counted, not retried
    assert [e.kind for e in out.events] == ["order_rejected"] and not out.intents
    assert eng.stop_rejects[eng.index[SYM]] == 1
    out = eng.on_exchange(upd(2 * H + 120_000))  # the update decides: a stop again
    sl = next(i for i in out.intents if i.tag == "SL" and i.action == "place")
    out = refuse(sl)  # the second counted refusal: closed at market at once
    assert [(i.tag, i.type, i.reduce_only) for i in opened(out.intents)] == [
        ("CLOSE", "market", True)]
    # a refused close is not retried on the broker's answer (no request loop against an
    # exchange that keeps refusing): the next exchange message decides again
    close = opened(out.intents)[0]
    out = refuse(close, tag="CLOSE", error="InvalidOrder: -4131")
    assert not out.intents
    out = eng.on_exchange(upd(2 * H + 180_000))
    assert [(i.tag, i.type) for i in opened(out.intents)] == [("CLOSE", "market")]


def outcome(i, action: str, status: str, error: str = "") -> OrderOutcome:
    coid = i.client_order_id if action == "place" else i.cancel_after
    iid = f"{coid}:place" if action == "place" else f"{coid}:cancel-after:{i.client_order_id}"
    return OrderOutcome(intent_id=iid, client_order_id=coid, action=action,
                        account="t", symbol=SYM, tag=i.tag, status=status, error=error)


def stop_resting():
    """Level 0 filled, its stop placed, accepted and seen resting; the engine, the
    second level and that stop."""
    eng, out = started()
    l0, l1 = opened(out.intents)[:2]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount,
                                                      2 * H + 30_000, "trade-1")]))
    sl1 = next(i for i in out.intents if i.tag == "SL")
    eng.on_outcome(outcome(sl1, "place", "sent"))
    eng.on_exchange(upd(2 * H + 61_000, open_orders=[{"client_order_id": sl1.client_order_id}]))
    return eng, l1, sl1


@pytest.mark.parametrize("cancel_first", [False, True])
def test_a_refused_stop_move_keeps_the_old_stop_whatever_order_the_outcomes_come_in(
        cancel_first):
    eng, l1, sl1 = stop_resting()
    out = eng.on_exchange(upd(2 * H + 120_000, [fill(l1.client_order_id, "buy", 80.0, l1.amount,
                                                      2 * H + 90_000, "trade-2")]))
    sl2 = next(i for i in out.intents if i.tag == "SL" and i.action == "place")
    refused = [outcome(sl2, "place", "rejected", "InsufficientFunds: -2019"),
               outcome(sl2, "cancel", "skipped")]
    for o in (refused[::-1] if cancel_first else refused):
        # the old stop still rests (or is being cancelled): nothing placed at once
        assert not [i for i in eng.on_outcome(o).intents if i.action == "place"]
    assert eng.book.slot(SYM, "SL").coid == sl1.client_order_id
    # the next update sees the old stop resting (no stop_missing) and moves it again
    out = eng.on_exchange(upd(2 * H + 121_000, open_orders=[
        {"client_order_id": sl1.client_order_id}]))
    assert "stop_missing" not in [e.kind for e in out.events]
    again = [i for i in out.intents if i.tag == "SL"]
    assert [(i.action, i.cancel_after, i.amount) for i in again] == [
        ("place", sl1.client_order_id, sl2.amount)]


def test_a_stop_kept_while_a_newer_successor_is_on_its_way_is_cancelled_once_that_rests():
    eng, l1, sl1 = stop_resting()
    seen = [{"client_order_id": sl1.client_order_id}]
    half = round(l1.amount / 2, 3)  # the second level fills in two parts
    out = eng.on_exchange(upd(2 * H + 120_000, [fill(l1.client_order_id, "buy", 80.0, half,
                                                      2 * H + 90_000, "trade-2")]))
    sl2 = next(i for i in out.intents if i.tag == "SL" and i.action == "place")
    out = eng.on_exchange(upd(2 * H + 130_000, [fill(l1.client_order_id, "buy", 80.0,
                                                      round(l1.amount - half, 3),
                                                      2 * H + 125_000, "trade-3")],
                              open_orders=seen))
    sl3 = next(i for i in out.intents if i.tag == "SL" and i.action == "place")
    assert sl3.cancel_after == sl2.client_order_id
    # sl2 refused, so sl1's cancel is skipped while sl3 is on its way: sl1 rests aside
    eng.on_outcome(outcome(sl2, "place", "rejected", "InsufficientFunds: -2019"))
    eng.on_outcome(outcome(sl2, "cancel", "skipped"))
    assert eng.book.slot(SYM, "SL").coid == sl3.client_order_id
    out = eng.on_exchange(upd(2 * H + 131_000, open_orders=seen))
    assert not [i for i in out.intents if i.tag == "SL"]  # sl3 not yet resting: sl1 stays
    eng.on_outcome(outcome(sl3, "place", "sent"))
    eng.on_outcome(outcome(sl3, "cancel", "not_found"))  # sl2 never rested
    out = eng.on_exchange(upd(2 * H + 132_000, open_orders=[
        *seen, {"client_order_id": sl3.client_order_id}]))
    assert [(i.action, i.client_order_id) for i in out.intents if i.tag == "SL"] == [
        ("cancel", sl1.client_order_id)]


def test_reconciliation_orphans_and_position_mismatch():
    eng, out = started()
    foreign = {"client_order_id": "manual-1", "symbol": SYM, "side": "buy", "type": "limit",
               "price": 50.0, "amount": 1.0}
    ours = {"client_order_id": "gf" + "0" * 30, "symbol": SYM, "side": "buy", "type": "limit",
            "price": 60.0, "amount": 1.0}
    mine = [{"client_order_id": i.client_order_id, "symbol": SYM} for i in opened(out.intents)]
    pos = {SYM: {"amount": 0.5, "entry_price": 90.0}, "DOGE/USDT": {"amount": 10.0}}
    out = eng.on_exchange(upd(2 * H + 1, open_orders=mine + [foreign, ours], positions=pos))
    assert [e.kind for e in out.events] == ["orphan_position"]
    for k in range(2):  # unknown orders get a grace of three snapshots (crash recovery)
        out = eng.on_exchange(upd(2 * H + 1, open_orders=mine + [foreign, ours],
                                  positions=None))
    kinds = sorted(e.kind for e in out.events)
    assert kinds == ["orphan_order", "orphan_order"]
    assert [(i.action, i.client_order_id) for i in out.intents] == [("cancel", ours["client_order_id"])]
    out = eng.on_exchange(upd(2 * H + 2, open_orders=mine + [foreign], positions=pos))
    # two polls in a row: journaled, and the position the engine holds flat gets a
    # reduce-only protective stop for the exchange's amount at once
    assert [e.kind for e in out.events] == ["position_mismatch"]
    assert out.events[0].detail == {"exchange_amount": 0.5, "engine_amount": 0.0}
    assert [(i.tag, i.type, i.side, i.amount, i.stop_price, i.reduce_only)
            for i in opened(out.intents) if i.tag == "PROTECT"] == [
        ("PROTECT", "stop_market", "sell", 0.5, 45.0, True)]
    out = eng.on_exchange(upd(2 * H + 3, open_orders=mine + [foreign], positions=pos))
    assert not out.events and not out.intents  # journaled once, protected once
    out = eng.on_exchange(upd(2 * H + 4, open_orders=mine + [foreign], positions={}))
    assert [(i.action, i.tag) for i in out.intents] == [("cancel", "PROTECT")]  # gone


def test_same_inputs_same_intents_after_a_restore():
    """Bytewax recovery replays inputs into the snapshot: the intents repeat exactly."""
    eng, out = started()
    snap = copy.deepcopy(eng)
    l0 = opened(out.intents)[0]
    inputs = [upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, 5.0, 2 * H + 1, "t1")]),
              upd(2 * H + 90_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount - 5.0,
                                        2 * H + 2, "t2")])]
    first = [i for u in inputs for i in eng.on_exchange(u).intents]
    again = [i for u in inputs for i in snap.on_exchange(u).intents]
    assert first == again and first
    # a partly filled level keeps its order (never re-placed at a new price)
    assert not [i for i in first if i.tag == "L0"]
    assert np.isclose(eng.positions()[SYM]["amount"], l0.amount)


def test_a_fall_between_closes_trips_the_switch_and_cancels_every_resting_entry_at_once():
    """Session loss 5 % of 3000: the first level fills at 90, then the exchange's mark
    falls to 70 (unrealized -20 x 11.111 = -222 < -150) with no candle close in
    between: the switch trips at that update's exchange time and the other resting level
    is cancelled in the same update, before anything else; the stop stays."""
    eng = live_engine(risk={"session_loss_grid": 0.05, "max_margin_ratio": 1.0})
    eng.on_chunk(warm(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0)))
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=1))
    out = eng.on_exchange(upd(2 * H))
    levels = opened(out.intents)
    assert [i.tag for i in levels] == ["L0", "L1", "L2"]
    l0 = levels[0]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0,
                                                     l0.amount, 2 * H + 30_000, "trade-1")]))
    assert not [e for e in out.events if e.kind == "kill_switch_tripped"]
    assert eng.state.ai[kl.AI_KILL] == 0
    marked = ExchangeUpdate("t", 2 * H + 600_000, [], None, None, marks={SYM: 80.0})
    out = eng.on_exchange(marked)  # -111 of -150: not yet
    assert eng.state.ai[kl.AI_KILL] == 0 and not [i for i in out.intents if i.action == "cancel"]
    crash = ExchangeUpdate("t", 2 * H + 900_000, [], None, None, marks={SYM: 70.0})
    out = eng.on_exchange(crash)
    (trip,) = [e for e in out.events if e.kind == "kill_switch_tripped"]
    assert trip.reason == "SESSION_LOSS_GRID" and trip.ts_ms == 2 * H + 900_000
    assert trip.detail["value"] <= -0.05 and trip.detail["threshold"] == -0.05
    cancels = [i for i in out.intents if i.action == "cancel"]
    assert {i.tag for i in cancels} == {"L1", "L2"}
    assert out.intents[: len(cancels)] == cancels  # before anything else is sent
    assert eng.book.slot(SYM, "SL") is not None  # the stop stays
    # a second update changes nothing: the switch is journaled once
    again = eng.on_exchange(ExchangeUpdate("t", 2 * H + 950_000, [], None, None,
                                           marks={SYM: 69.0}))
    assert not [e for e in again.events if e.kind == "kill_switch_tripped"]
    assert not [i for i in again.intents if i.action == "cancel"]


def test_an_entry_fill_that_crosses_the_limit_trips_at_the_fill():
    """Marked at its own fill price, the second level's fill already breaches the limit:
    the trip carries the fill's exchange time, the third level is cancelled."""
    eng = live_engine(risk={"session_loss_grid": 0.05, "max_margin_ratio": 1.0})
    eng.on_chunk(warm(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0)))
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=1))
    l0, l1, l2 = opened(eng.on_exchange(upd(2 * H)).intents)
    out = eng.on_exchange(upd(2 * H + 600_000, [
        fill(l0.client_order_id, "buy", 90.0, l0.amount, 2 * H + 30_000, "trade-1"),
        fill(l1.client_order_id, "buy", 62.0, l1.amount, 2 * H + 500_000, "trade-2")]))
    trips = [e for e in out.events if e.kind == "kill_switch_tripped"]
    assert "SESSION_LOSS_GRID" in {e.reason for e in trips}
    assert {e.ts_ms for e in trips} == {2 * H + 500_000}
    assert [i.tag for i in out.intents if i.action == "cancel"][:1] == ["L2"]


def _places(batches):
    return sorted((i.client_order_id, i.tag, i.side, i.price, i.stop_price, i.amount)
                  for b in batches for i in b.intents if i.action == "place")


def test_a_restore_replays_the_original_decisions_whatever_the_order_of_inputs():
    """The engine restored from a snapshot gets the same exchange facts grouped and
    ordered differently (both fills in one poll, delivered before the candle that
    precedes the second): it applies each fill after the candles closing before it, so
    its fills are never orphans and every order it sends is one the original sent."""
    eng, _ = started()
    snap = copy.deepcopy(eng)
    l0 = eng.book.slot(SYM, "L0")
    candle2 = chunk(SYM, [(100, 101, 85, 95)], 98.0, 10.0, start=2)  # re-prices L1
    a = [eng.on_exchange(upd(2 * H + 60_000, [fill(l0.coid, "buy", 90.0, l0.amount,
                                                    2 * H + 30_000, "trade-1")])),
         eng.on_chunk(candle2), eng.on_exchange(upd(3 * H + 60_000))]
    l1 = eng.book.slot(SYM, "L1")
    assert l1.decision_ts == 3 * H and l1.coid not in snap.book.orders
    f1 = fill(l1.coid, "buy", l1.price, l1.amount, 3 * H + 90_000, "trade-2")
    a.append(eng.on_exchange(upd(3 * H + 120_000, [f1])))
    restored = copy.deepcopy(snap)
    b = [restored.on_exchange(upd(2 * H + 1_000))]  # an early poll with nothing new
    b.append(restored.on_exchange(upd(3 * H + 120_000, [
        f1, fill(l0.coid, "buy", 90.0, l0.amount, 2 * H + 30_000, "trade-1")])))
    assert restored.deferred  # the second fill waits for the candle before it
    assert not [e for x in b for e in x.events if e.kind == "orphan_fill"]
    b.append(restored.on_chunk(candle2))
    b.append(restored.on_exchange(upd(3 * H + 180_000)))
    assert not restored.deferred
    assert not [e for x in b for e in x.events if e.kind == "orphan_fill"]
    assert _places(b) == _places(a) and len(_places(a)) >= 5
    assert restored.positions() == eng.positions()
    assert set(restored.seen) == set(eng.seen) == {"trade-1", "trade-2"}


def test_a_cold_start_adopts_the_exchange_position_protects_it_and_announces_switches():
    """No recovery state: the first exchange state shows a long 0.5 at 95 the engine does
    not hold. It is adopted (event, amount and average entry from the exchange), a stop
    and a take profit cover it in that same update, the margin cap counts it at the next
    decision, and a kill switch restored from the journal is announced."""
    eng = live_engine(risk={"max_margin_ratio": 0.1})
    eng.restore({"kill_switch": "ROLLING_DRAWDOWN", "candles": 0, "seq": 0})
    eng.on_chunk(warm(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0)))
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=1))
    out = eng.on_exchange(upd(2 * H, positions={SYM: {"amount": 0.5, "entry_price": 95.0}}))
    kinds = {e.kind: e for e in out.events}
    adopted = kinds["position_adopted"]
    assert (adopted.detail["amount"], adopted.detail["avg_entry"]) == (0.5, 95.0)
    assert kinds["kill_switch_restored"].reason == "ROLLING_DRAWDOWN"
    started = kinds["engine_started"]
    assert started.detail["kill_switches"] == ["ROLLING_DRAWDOWN"]
    assert started.detail["positions"] == {SYM: 0.5} and started.detail["venue"] == "binanceusdm"
    sl = [i for i in out.intents if i.action == "place" and i.tag == "SL"]
    assert [(i.side, i.amount, i.stop_price) for i in sl] == [("sell", 0.5, 47.5)]
    assert eng.positions()[SYM]["amount"] == 0.5
    assert not [e for e in out.events if e.kind == "position_mismatch"]
    # a second state changes nothing: adoption happens once
    again = eng.on_exchange(upd(2 * H + 1000, positions={SYM: {"amount": 0.5,
                                                              "entry_price": 95.0}}))
    assert not [e for e in again.events if e.kind in ("position_adopted", "engine_started")]
    assert eng.positions()[SYM]["amount"] == 0.5


def test_funding_is_booked_and_an_equity_drift_is_journaled_once():
    """An exchange funding settlement moves cash, session PnL and the cycle's funding as
    in replay; the exchange's equity differing from the engine's by more than 1 % for
    two polls in a row is journaled once (the first comparison sets the reference)."""
    eng, out = started()
    l0 = opened(out.intents)[0]
    eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0, l0.amount,
                                               2 * H + 1, "trade-1")]))
    cash = eng.state.af[kl.AF_CASH]
    u = ExchangeUpdate("t", 2 * H + 120_000, [], None, None, equity=5000.0,
                       funding=[{"id": "f1", "symbol": SYM, "ts_ms": 2 * H + 100_000,
                                 "paid": 1.25}])
    out = eng.on_exchange(u)
    (f,) = [e for e in out.events if e.kind == "funding"]
    assert f.detail["payment"] == 1.25 and f.ts_ms == 2 * H + 100_000
    assert eng.state.af[kl.AF_CASH] == cash - 1.25
    assert eng.state.sf[0, kl.SF_CYCLE_FUNDING] == 1.25
    again = eng.on_exchange(u)  # the same settlement again: booked once
    assert not [e for e in again.events if e.kind == "funding"]
    mine = eng.equity()
    drifted = [ExchangeUpdate("t", 2 * H + 130_000 + k, [], None, None, equity=5000.0 + 0.02 * mine)
               for k in range(3)]
    events = [e for d in drifted for e in eng.on_exchange(d).events if e.kind == "equity_drift"]
    assert len(events) == 1 and abs(events[0].detail["drift"] - 0.02 * mine) < 1e-6
    # reconciled: the engine's equity is the exchange's (less the start's reference) now
    assert abs(eng.equity() - 1.02 * mine) < 1e-6


def test_a_late_fill_of_a_replaced_take_profit_is_booked_not_orphaned():
    """The take profit of the first level is replaced after the second fills, but it
    fills on the exchange before the cancel: the order stream says it left the book
    (three snapshots without it: forgotten) before the trade stream reports the fill
    (streams apart, a REST catch-up after an outage). The fill is still the engine's:
    booked to the position, no ``orphan_fill``."""
    eng, (l0, l1), first, second = two_levels_filled("TP")
    assert second.cancel_after == first.client_order_id
    rest = [{"client_order_id": i.client_order_id, "symbol": SYM}
            for i in (l0, l1, second)]
    for k in range(4):  # the replaced TP is missing from every snapshot: forgotten
        eng.on_exchange(upd(2 * H + 130_000 + k, open_orders=rest))
    assert first.client_order_id not in eng.book.orders
    amount = eng.positions()[SYM]["amount"]
    out = eng.on_exchange(upd(2 * H + 140_000, [fill(first.client_order_id, "sell", 100.0,
                                                      first.amount, 2 * H + 100_000, "t3")]))
    assert not [e for e in out.events if e.kind == "orphan_fill"]
    assert abs(eng.positions()[SYM]["amount"] - (amount - first.amount)) < 1e-9
