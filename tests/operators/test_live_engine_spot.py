"""The live engine's spot protection scheme on hand-built candles and exchange updates:
a stop-limit rests (its limit 0.5 % beyond the trigger, on the tick), the take profit is
watched and sold at market after the stop is cancelled, a moved stop is a replace, a
price through the stop-limit's limit closes at market (journaled, alerted), a fee in
base shrinks the position, and base the owner holds is never taken for ours."""

from __future__ import annotations

from test_engine import NOFEES, chunk
from test_live_engine import SYM, H, fill, opened, upd, warm

from gridflow.chunks import ExchangeUpdate
from gridflow.config.live import LiveConfig
from gridflow.config.models import AccountConfig, GridAtrParams, MarketSpec, RiskConfig
from gridflow.events import ExecutionReport
from gridflow.operators.alerts import alerts_from_batch
from gridflow.operators import kernel_layout as kl
from gridflow.operators.live_engine import LiveAccountEngine
from gridflow.operators.live_protect import stop_limit_price

MKT = {SYM: MarketSpec(amount_step=0.001, price_tick=0.1, min_notional=5.0)}
SPOT = LiveConfig(exchange={"id": "binance", "market_type": "spot"})


def spot_engine() -> tuple[LiveAccountEngine, list]:
    acct = AccountConfig(
        name="t", capital_quote=3000.0, symbols=(SYM,),
        strategy=GridAtrParams(sma_period=2, atr_period=1, levels=3, atr_start=1.0,
                               atr_step=1.0, sl_pct=0.5), risk=RiskConfig())
    eng = LiveAccountEngine(acct, [SYM], {SYM: "1h"}, NOFEES, MKT, live=SPOT)
    eng.on_chunk(warm(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0)))
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 100)], 100.0, 10.0, start=1))
    out = eng.on_exchange(upd(2 * H, positions={}))
    return eng, opened(out.intents)


def spot_fill(coid, price, amount, ts, rid, fee_base=0.0):
    return ExecutionReport(report_id=rid, client_order_id=coid, account="t", symbol=SYM,
                           ts_ms=ts, side="buy", price=price, amount=amount,
                           fee=fee_base * price, fee_base=fee_base)


def entered(eng, levels, fee_base=0.0):
    l0 = levels[0]
    out = eng.on_exchange(upd(2 * H + 60_000, [spot_fill(l0.client_order_id, 90.0, l0.amount,
                                                         2 * H + 30_000, "trade-1", fee_base)]))
    return l0, out


def test_stop_limit_price_is_beyond_the_trigger_on_the_tick():
    assert stop_limit_price(45.0, "sell", 0.1, 0.005) == 44.7  # 44.775 down to the tick
    assert stop_limit_price(45.0, "buy", 0.1, 0.005) == 45.3  # 45.225 up to the tick
    for stop in (45.0, 1234.56, 0.4321):
        for tick in (0.1, 0.01, 0.0001):
            px = stop_limit_price(stop, "sell", tick, 0.005)
            assert px <= stop * 0.995 + 1e-12 and stop * 0.995 - px < tick + 1e-12
            assert abs(px / tick - round(px / tick)) < 1e-6


def test_a_spot_position_rests_a_stop_limit_and_no_take_profit():
    eng, levels = spot_engine()
    l0, out = entered(eng, levels)
    places = [i for i in out.intents if i.action == "place"]
    assert [(i.tag, i.type, i.side, i.stop_price, i.price, i.amount) for i in places] == [
        ("SL", "stop_limit", "sell", 45.0, 44.7, l0.amount)]
    assert not [i for i in out.intents if i.tag == "TP"]


def test_a_fee_in_base_shrinks_the_position_to_what_can_be_sold():
    eng, levels = spot_engine()
    l0 = levels[0]
    fee_base = l0.amount * 0.001  # Binance spot: 0.1 % of the base bought
    _, out = entered(eng, levels, fee_base)
    held = eng.positions()[SYM]["amount"]
    step = 0.001
    assert held == round(int((l0.amount - fee_base) / step) * step, 9) and held < l0.amount
    sl = next(i for i in out.intents if i.tag == "SL")
    assert sl.amount == held
    # the money: the fee and the base below a step (unsellable dust) are written off
    assert abs(eng.state.af[kl.AF_FEES] - (l0.amount - held) * 90.0) < 1e-9
    assert abs(eng.state.af[kl.AF_CASH] - (3000.0 - (l0.amount - held) * 90.0)) < 1e-9


def test_a_moved_stop_is_a_replace_on_spot():
    eng, levels = spot_engine()
    l0, out = entered(eng, levels)
    sl = next(i for i in out.intents if i.tag == "SL")
    l1 = levels[1]
    out = eng.on_exchange(upd(2 * H + 120_000, [spot_fill(l1.client_order_id, 80.0, l1.amount,
                                                          2 * H + 90_000, "trade-2")]))
    new = next(i for i in out.intents if i.action == "place" and i.tag == "SL")
    # the base is locked once: the old stop is cancelled first, the new one placed only
    # if that cancel succeeded (contracts: placed first, cancel after)
    assert (new.cancel_first, new.cancel_after) == (sl.client_order_id, None)
    assert new.amount == l0.amount + l1.amount and new.type == "stop_limit"


def test_the_take_profit_is_watched_and_sold_at_market_after_the_stop_is_cancelled():
    eng, levels = spot_engine()
    l0, out = entered(eng, levels)
    sl = next(i for i in out.intents if i.tag == "SL")
    # a polled mark above the take profit (the SMA, 100) decides nothing: it is not
    # replayed after a crash, and the same inputs must give the same client ids
    out = eng.on_exchange(ExchangeUpdate("t", 2 * H + 200_000, [], [], None,
                                         marks={SYM: 100.5}))
    assert not [i for i in out.intents if i.tag == "TP"]
    # candle 2 closes above it: sell at market once the stop holding the base is out
    eng.on_chunk(chunk(SYM, [(95, 101, 94, 100.5)], 100.0, 10.0, start=2))
    out = eng.on_exchange(upd(3 * H + 1_000))
    tp = [i for i in out.intents if i.tag == "TP"]
    assert [(i.action, i.type, i.side, i.amount, i.cancel_first, i.reduce_only)
            for i in tp] == [("place", "market", "sell", l0.amount, sl.client_order_id, True)]
    assert not [i for i in out.intents if i.tag == "SL"]  # the stop goes in the replace
    # while the sell is on its way nothing else is placed for the symbol
    again = eng.on_exchange(upd(3 * H + 2_000))
    assert not [i for i in again.intents if i.symbol == SYM and i.action == "place"]
    out = eng.on_exchange(upd(3 * H + 20_000, [fill(tp[0].client_order_id, "sell", 100.5,
                                                    l0.amount, 3 * H + 5_000, "trade-9")]))
    assert eng.positions().get(SYM, {}).get("amount", 0.0) == 0.0
    assert [t.exit_reason for t in out.trades] == ["TP"]


def test_a_close_through_the_stop_limit_closes_at_market_journaled_and_alerted():
    eng, levels = spot_engine()
    l0, out = entered(eng, levels)
    sl = next(i for i in out.intents if i.tag == "SL")
    # candle 2 gaps from 90 to 40: through the trigger (45) and the limit (44.7)
    eng.on_chunk(chunk(SYM, [(40, 41, 39, 40)], 95.0, 10.0, start=2))
    out = eng.on_exchange(upd(3 * H + 1_000))
    close = [i for i in out.intents if i.tag == "CLOSE"]
    assert [(i.type, i.side, i.amount, i.cancel_first) for i in close] == [
        ("market", "sell", l0.amount, sl.client_order_id)]
    ev = [e for e in out.events if e.kind == "stop_not_filled"]
    assert [(e.reason, e.detail["stop"], e.detail["close"]) for e in ev] == [
        ("PRICE_THROUGH_LIMIT", 45.0, 40.0)]
    alerts = [a for a in alerts_from_batch(out) if a.kind == "stop_not_filled"]
    assert [a.severity for a in alerts] == ["critical"]


def test_base_the_owner_holds_is_not_ours_but_less_than_ours_is_a_mismatch():
    eng, levels = spot_engine()
    l0, _ = entered(eng, levels)
    mine = eng.positions()[SYM]["amount"]
    for k in range(3):  # the owner's 2 BTC beside ours: not a mismatch, not protected
        out = eng.on_exchange(upd(2 * H + 100_000 + k, positions={
            SYM: {"amount": mine + 2.0, "entry_price": 0.0}}))
        assert not [e for e in out.events if e.kind in ("position_mismatch",
                                                        "position_adopted")]
        assert not [i for i in out.intents if i.tag == "PROTECT"]
    for k in range(2):  # less than ours: somebody sold it
        out = eng.on_exchange(upd(2 * H + 200_000 + k, positions={
            SYM: {"amount": mine / 2, "entry_price": 0.0}}))
    assert [e.kind for e in out.events if e.kind == "position_mismatch"] == [
        "position_mismatch"]


def test_a_spot_position_worth_less_than_the_minimum_notional_is_dust_said_once():
    """Spot checks the minimum notional on sells too: a position below it cannot be
    sold, so no stop is sent for it (it would be refused again and again); it is
    journaled once as dust."""
    eng, levels = spot_engine()
    l0 = levels[0]
    out = eng.on_exchange(upd(2 * H + 60_000, [spot_fill(l0.client_order_id, 90.0, 0.05,
                                                         2 * H + 30_000, "trade-1")]))
    assert eng.positions()[SYM]["amount"] == 0.05  # 4.5 USDT < 5 USDT minimum
    assert not [i for i in out.intents if i.tag in ("SL", "TP", "CLOSE")]
    more = eng.on_exchange(upd(2 * H + 90_000))
    dust = [e for b in (out, more) for e in b.events if e.kind == "dust_position"]
    assert [(e.reason, e.detail["amount"]) for e in dust] == [("BELOW_MIN_AMOUNT", 0.05)]


def test_base_left_below_a_step_by_one_fill_is_taken_back_by_the_next():
    """Two buys each leave base below a step on the exchange (their commission in base):
    together they make a sellable step, which the position takes back (the exchange
    holds it; a stop for less would leave it unprotected)."""
    eng, levels = spot_engine()
    l0, l1 = levels[:2]
    f0, f1 = l0.amount * 0.001, l1.amount * 0.001
    eng.on_exchange(upd(2 * H + 60_000, [spot_fill(l0.client_order_id, 90.0, l0.amount,
                                                   2 * H + 30_000, "trade-1", f0)]))
    out = eng.on_exchange(upd(2 * H + 120_000, [spot_fill(l1.client_order_id, 80.0,
                                                          l1.amount, 2 * H + 90_000,
                                                          "trade-2", f1)]))
    held = eng.positions()[SYM]["amount"]
    both = (l0.amount - f0) + (l1.amount - f1)
    assert held == round(int(both / 0.001 + 1e-9) * 0.001, 9)
    assert held > round(int((l0.amount - f0) / 0.001) * 0.001 + int(
        (l1.amount - f1) / 0.001) * 0.001, 9)  # each floored alone: one step less
    sl = next(i for i in out.intents if i.action == "place" and i.tag == "SL")
    assert sl.amount == held


def test_a_take_profit_sell_that_expires_part_filled_gives_the_rest_a_stop_again():
    """A market sell the exchange accepted, filled in part and expired (it never rests,
    so no snapshot lists it): after two snapshots without it the slot is free and the
    rest of the position, the price back under the take profit, gets its stop-limit."""
    from gridflow.events import OrderOutcome

    eng, levels = spot_engine()
    l0, out = entered(eng, levels)
    eng.on_chunk(chunk(SYM, [(95, 101, 94, 100.5)], 100.0, 10.0, start=2))
    out = eng.on_exchange(upd(3 * H + 1_000))
    tp = next(i for i in out.intents if i.tag == "TP")
    sl = tp.cancel_first
    eng.on_outcome(OrderOutcome(intent_id=f"{sl}:cancel", client_order_id=sl,
                                action="cancel", account="t", symbol=SYM, tag="TP",
                                status="canceled"))
    eng.on_outcome(OrderOutcome(intent_id=f"{tp.client_order_id}:place",
                                client_order_id=tp.client_order_id, action="place",
                                account="t", symbol=SYM, tag="TP", status="sent"))
    half = round(l0.amount / 2, 3)
    eng.on_exchange(upd(3 * H + 20_000, [fill(tp.client_order_id, "sell", 100.5, half,
                                              3 * H + 5_000, "trade-9")]))
    # the next candle closes back under the take profit (99)
    eng.on_chunk(chunk(SYM, [(100, 100.5, 98, 99.0)], 100.0, 10.0, start=3))
    # a snapshot whose trades failed does not count: the fill may be in them
    failed = eng.on_exchange(ExchangeUpdate("t", 4 * H + 1_000, [], [], None,
                                            errors=["trades: 429"]))
    assert not [e for e in failed.events if e.kind == "order_vanished"]
    later = [eng.on_exchange(upd(4 * H + 2_000 + k, open_orders=[])) for k in range(3)]
    rest = round(l0.amount - half, 9)
    assert abs(eng.positions()[SYM]["amount"] - rest) < 1e-9
    assert [e.kind for b in later for e in b.events if e.kind == "order_vanished"] == [
        "order_vanished"]
    sls = [i for b in later for i in b.intents if i.tag == "SL" and i.action == "place"]
    assert [(i.type, round(i.amount, 9)) for i in sls] == [("stop_limit", rest)]


def test_a_refused_cancel_of_the_stop_puts_it_back_and_the_sell_is_not_sent():
    """The replace's cancel fails: the broker skips the sell, the stop still rests and
    goes back into its slot (no second stop, no stuck symbol); the next close above the
    take profit tries the replace again."""
    from gridflow.events import OrderOutcome

    eng, levels = spot_engine()
    l0, out = entered(eng, levels)
    sl = next(i for i in out.intents if i.tag == "SL")
    eng.on_chunk(chunk(SYM, [(95, 101, 94, 100.5)], 100.0, 10.0, start=2))
    tp = next(i for i in eng.on_exchange(upd(3 * H + 1_000)).intents if i.tag == "TP")
    eng.on_outcome(OrderOutcome(intent_id=f"{sl.client_order_id}:cancel",
                                client_order_id=sl.client_order_id, action="cancel",
                                account="t", symbol=SYM, tag="TP", status="failed"))
    eng.on_outcome(OrderOutcome(intent_id=f"{tp.client_order_id}:place",
                                client_order_id=tp.client_order_id, action="place",
                                account="t", symbol=SYM, tag="TP", status="skipped"))
    assert eng.book.slot(SYM, "SL").coid == sl.client_order_id
    resting = [{"client_order_id": sl.client_order_id, "symbol": SYM, "side": "sell",
                "type": "stop_limit", "price": 44.7, "stop_price": 45.0,
                "amount": l0.amount, "filled": 0.0, "reduce_only": False,
                "exchange_order_id": "1", "ts": 2 * H + 60_000}]
    eng.on_chunk(chunk(SYM, [(100, 101, 99, 100.6)], 100.0, 10.0, start=3))
    out = eng.on_exchange(upd(4 * H + 1_000, open_orders=resting))
    again = [i for i in out.intents if i.action == "place"]
    assert [(i.tag, i.cancel_first) for i in again] == [("TP", sl.client_order_id)]


def test_a_spot_stop_whose_limit_is_below_the_minimum_notional_is_dust_not_refused():
    """Binance checks a stop-limit's notional at its limit: a position worth just above
    the minimum at the price but not at its stop's limit gets no stop (refused twice,
    then sold at market) but a dust event."""
    eng, levels = spot_engine()
    l0 = levels[0]
    out = eng.on_exchange(upd(2 * H + 60_000, [spot_fill(l0.client_order_id, 90.0, 0.06,
                                                         2 * H + 30_000, "trade-1")]))
    assert 0.06 * 90.0 > 5.0 > 0.06 * 44.7  # 5.40 at the fill, 2.68 at the stop's limit
    assert not [i for i in out.intents if i.tag in ("SL", "CLOSE")]
    assert [e.kind for e in out.events if e.kind == "dust_position"] == ["dust_position"]
