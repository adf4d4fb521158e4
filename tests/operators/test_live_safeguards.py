"""The remaining live safeguards on hand-built inputs: the slippage alert, ``flatten`` in
live, the trailing stop following the best price on the exchange, the refusal of
``mode = "live"`` without its flag or keys, commands at the exchange time, and the
engine's Bytewax snapshot."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from pydantic import SecretStr, ValidationError
from test_engine import NOFEES
from test_live_engine import MKT, SYM, fill, opened, started, upd

from gridflow.chunks import CandleChunk, IndicatorChunk
from gridflow.config.live import ExchangeConfig, LiveConfig
from gridflow.config.models import AccountConfig, GridTrendParams, RiskConfig
from gridflow.events import Command
from gridflow.operators.live_engine import LiveAccountEngine
from gridflow.operators.strategies import strategy_indicators

H = 3_600_000


def _long(eng, out):
    l0 = opened(out.intents)[0]
    out = eng.on_exchange(upd(2 * H + 60_000, [fill(l0.client_order_id, "buy", 90.0,
                                                     l0.amount, 2 * H + 1, "trade-1")]))
    return l0, out


def test_a_stop_filled_worse_than_its_trigger_beyond_the_threshold_is_alerted():
    eng, out = started()
    l0, out = _long(eng, out)
    sl = next(i for i in out.intents if i.tag == "SL")  # stop-market at 45.0
    out = eng.on_exchange(upd(2 * H + 120_000, [fill(sl.client_order_id, "sell", 44.0,
                                                      l0.amount, 2 * H + 100_000, "trade-2")]))
    (slip,) = [e for e in out.events if e.kind == "slippage"]
    assert slip.detail["order_price"] == 45.0 and slip.detail["fill_price"] == 44.0
    assert slip.detail["slippage"] == pytest.approx(1 / 45) and slip.detail["threshold"] == 0.005
    # within the threshold: no alert
    eng, out = started()
    l0, out = _long(eng, out)
    sl = next(i for i in out.intents if i.tag == "SL")
    out = eng.on_exchange(upd(2 * H + 120_000, [fill(sl.client_order_id, "sell", 44.99,
                                                      l0.amount, 2 * H + 100_000, "trade-2")]))
    assert not [e for e in out.events if e.kind == "slippage"]


def test_flatten_in_live_closes_at_market_reduce_only_and_books_a_flatten_trade():
    eng, out = started()
    l0, out = _long(eng, out)
    out = eng.apply_command(Command(command_id=1, account="t", kind="flatten", payload={},
                                    issued_at_ms=0, issued_by="ops"), 2 * H + 200_000)
    assert [e.kind for e in out.events] == ["command_applied"]
    out = eng.on_exchange(upd(2 * H + 240_000))
    close = [i for i in out.intents if i.action == "place" and i.tag == "FLATTEN"]
    assert [(i.type, i.side, i.amount, i.reduce_only) for i in close] == [
        ("market", "sell", l0.amount, True)]
    assert {i.tag for i in out.intents if i.action == "cancel"} >= {"L1", "TP"}
    out = eng.on_exchange(upd(2 * H + 300_000, [fill(close[0].client_order_id, "sell", 95.0,
                                                      l0.amount, 2 * H + 250_000, "trade-2")]))
    (trade,) = out.trades
    assert trade.exit_reason == "FLATTEN" and trade.pnl == pytest.approx(5.0 * l0.amount)
    assert eng.positions()[SYM]["amount"] == 0.0


def _trend_chunk(eng, closes, start, fast, slow, adx, atr):
    n = len(closes)
    ts = (np.arange(n, dtype=np.int64) + start) * H
    c = np.asarray(closes, float)
    names = strategy_indicators(eng.account, eng.params[SYM])
    vals = {names[0]: np.full(n, fast), names[1]: np.full(n, slow),
            names[2] + ".adx": np.full(n, adx), names[3]: np.full(n, atr)}
    candles = CandleChunk(SYM, "1h", ts, c, c + 1.0, c - 1.0, c, np.ones(n), 0, False)
    return IndicatorChunk(candles, vals)


def test_the_trailing_stop_follows_the_best_price_on_the_exchange():
    """A trend grid long (EMA fast > slow, ADX above threshold), trailing 2 ATR = 4: as
    new highs print, each candle close re-places the exchange stop higher (placed before
    the old one is cancelled); it never moves down."""
    p = GridTrendParams(ema_fast=2, ema_slow=3, adx_period=2, adx_threshold=10.0,
                        atr_period=1, levels=1, atr_start=1.0, atr_step=0.0, trail_atr=2.0,
                        sl_pct=0.5)
    acct = AccountConfig(name="t", capital_quote=3000.0, symbols=(SYM,), strategies=(p,),
                         risk=RiskConfig(max_margin_ratio=1.0))
    eng = LiveAccountEngine(acct, [SYM], {SYM: "1h"}, NOFEES, MKT, live=LiveConfig())
    eng.on_chunk(_trend_chunk(eng, [100.0], 0, 100.0, 99.0, 30.0, 2.0))
    out = eng.on_exchange(upd(H, positions={}))
    (l0,) = opened(out.intents)  # level at EMA fast - 1 ATR = 98
    assert l0.price == 98.0
    out = eng.on_exchange(upd(H + 60_000, [fill(l0.client_order_id, "buy", 98.0, l0.amount,
                                                 H + 1, "trade-1")]))
    stops = [next(i.stop_price for i in out.intents if i.action == "place" and i.tag == "SL")]
    last = eng.book.slot(SYM, "SL").coid
    for k, close in enumerate((104.0, 110.0, 109.0, 115.0)):
        eng.on_chunk(_trend_chunk(eng, [close], 1 + k, close, 99.0, 30.0, 2.0))
        out = eng.on_exchange(upd((2 + k) * H + 60_000))
        moved = [i for i in out.intents if i.tag == "SL"]
        if moved:  # the old stop is cancelled by the broker once the new one is accepted
            assert [(i.action, i.cancel_after) for i in moved] == [("place", last)]
            stops += [i.stop_price for i in moved]
        last = eng.book.slot(SYM, "SL").coid
    # best highs 105, 111, (111), 116 -> stops 101, 107, 112 (trail 4); never lower
    assert stops[1:] == [101.0, 107.0, 112.0]
    assert stops == sorted(stops)


def test_live_mode_is_refused_without_its_flag_or_keys():
    keys = ExchangeConfig(api_key=SecretStr("k"), secret=SecretStr("s"))
    LiveConfig(mode="live", allow_live=True, exchange=keys)  # armed: accepted
    with pytest.raises(ValidationError, match="allow_live"):
        LiveConfig(mode="live", exchange=keys)
    for ex in (ExchangeConfig(), ExchangeConfig(api_key=SecretStr("k")),
               ExchangeConfig(api_key=SecretStr(""), secret=SecretStr("s"))):
        with pytest.raises(ValidationError, match="api_key"):
            LiveConfig(mode="live", allow_live=True, exchange=ex)
    assert LiveConfig().mode == "paper"


def test_a_command_between_candle_closes_is_journaled_at_the_exchange_time():
    """A live command is applied at the engine's newest exchange time (the watermark of
    the last exchange update), not at the last candle close: a kill-switch reset comes
    after the trip it resets in the journal's times too."""
    eng, out = started()
    _, out = _long(eng, out)
    out = eng.apply_command(Command(command_id=1, account="t", kind="reset_kill_switch",
                                    payload={}, issued_at_ms=0, issued_by="ops"))
    (ack,) = out.events
    assert ack.ts_ms == 2 * H + 60_000 == eng.live_time() > eng.event_time()


def test_the_engine_snapshot_is_its_pickle_and_resumes_where_it_stood():
    """Bytewax snapshots the account step at every epoch: pickled bytes (immutable, and
    cheaper than a deep copy); the builder resumes from them, or from an engine object
    of a snapshot taken before, and the resumed engine answers the next update
    exactly as the running one."""
    from gridflow.dataflows.steps import AccountStep, make_account_builder

    eng, out = started()
    _, out = _long(eng, out)
    snap = AccountStep(None, eng).snapshot()
    assert isinstance(snap, bytes)
    builder = make_account_builder(None)
    for resume in (snap, pickle.loads(snap)):
        back = builder(resume).engine
        assert back is not eng and back.summary() == eng.summary()
    nxt = upd(2 * H + 300_000, [fill(opened(out.intents)[0].client_order_id, "sell", 95.0,
                                     0.01, 2 * H + 250_000, "trade-9")])
    a, b = eng.on_exchange(nxt), builder(snap).engine.on_exchange(nxt)
    assert a.intents == b.intents and a.events == b.events
    assert AccountStep(None, None).snapshot() is None
