"""Alerts from journal batches (text and numbers) and the event-time throttle."""

from __future__ import annotations

import pickle
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.chunks import CandleChunk, IndicatorChunk, JournalBatch
from gridflow.config.models import AccountConfig, FeesConfig, GridAtrParams
from gridflow.events import (
    EquitySnapshot,
    ExecutionReport,
    JournalEvent,
    OrderRequest,
    TradeRecord,
)
from gridflow.operators.alerts import (
    Alert,
    AlertThrottle,
    alerts_from_batch,
    fmt_money,
    fmt_num,
    iso_utc,
)
from gridflow.operators.engine import AccountEngine

T0 = 1_704_164_400_000  # 2024-01-02T03:00:00Z
H = 3_600_000
MIN = 60_000


def order(tag: str, coid: str, ts: int, price: float, amount: float, side="buy") -> OrderRequest:
    return OrderRequest(client_order_id=coid, account="demo", strategy="grid_atr",
                        symbol="BTC/USDT", tag=tag, ts_ms=ts, seq=1, side=side,
                        type="limit", price=price, amount=amount, reduce_only=tag[0] != "L")


def fill(coid: str, ts: int, price: float, amount: float, fee=0.0, side="buy", rid=""):
    return ExecutionReport(report_id=rid or f"fill-{coid}", client_order_id=coid,
                           account="demo", symbol="BTC/USDT", ts_ms=ts, side=side,
                           price=price, amount=amount, fee=fee)


def trade(pnl: float, reason: str, open_ts=T0, close_ts=T0 + 5 * H + 30 * MIN) -> TradeRecord:
    return TradeRecord(trade_id=f"demo:BTC/USDT:{open_ts}", account="demo", symbol="BTC/USDT",
                       seq=9, position_side="long", open_ts_ms=open_ts, close_ts_ms=close_ts,
                       entries=3, amount=0.0369, avg_entry=40_000.0, exit_price=40_500.0,
                       pnl=pnl, fees=0.56, exit_reason=reason)


def event(kind: str, reason: str, ts: int, detail: dict, account="demo", symbol="BTC/USDT"):
    return JournalEvent(event_id=f"{kind}:{account or symbol}:{ts}", kind=kind, reason=reason,
                        ts_ms=ts, account=account, symbol=symbol, detail=detail)


KILL = event("kill_switch_tripped", "SESSION_LOSS", T0 + 7 * H,
             {"equity": 7_460.0, "session_start_equity": 10_000.0,
              "session_return": -0.254, "threshold": -0.25})
DENIED = event("order_denied", "MAX_MARGIN_RATIO", T0 + 2 * H,
               {"level": 3, "side": "buy", "price": 40_100.0, "amount": 0.0123,
                "margin_ratio_after": 0.725, "max_margin_ratio": 0.70, "decision_ts_ms": T0})
GAP = event("data_gap", "MISSING_CANDLES", T0 + 4 * H,
            {"from_ts_ms": T0, "to_ts_ms": T0 + 4 * H, "missing": 3}, account="")


def full_batch() -> JournalBatch:
    return JournalBatch(
        orders=[order("L0", "c-l0", T0 + H, 41_300.0, 0.0123),
                order("L1", "c-l1", T0 + H, 40_000.0, 0.0123),  # resting, no fill: no alert
                order("TP", "c-tp", T0 + 5 * H, 40_500.0, 0.0369, side="sell")],
        fills=[fill("c-l0", T0 + H + 15 * MIN, 41_250.5, 0.0123, fee=0.1),
               fill("c-tp", T0 + 5 * H, 40_500.0, 0.0369, side="sell")],
        trades=[trade(12.3456, "TP")],
        equity=[EquitySnapshot(account="demo", ts_ms=T0, equity=1.0, cash=1.0, unrealized=0.0,
                               used_margin=0.0)],
        events=[KILL, DENIED, GAP,
                event("candle_rejected", "LOW_ABOVE_BODY", T0, {}, account=""),
                event("kill_switch_reset", "OPERATOR", T0 + 9 * H, {"issued_by": "ops"})],
    )


def test_batch_gives_one_alert_per_notable_record_in_event_time_order():
    alerts = alerts_from_batch(full_batch())
    assert [(a.kind, a.severity) for a in alerts] == [
        ("grid_level_opened", "info"),
        ("order_denied", "warning"),
        ("data_gap", "warning"),
        ("grid_cycle_closed", "info"),
        ("kill_switch_tripped", "critical"),
        ("kill_switch_reset", "info"),
    ]
    assert [a.ts_ms for a in alerts] == sorted(a.ts_ms for a in alerts)
    # deterministic, unique ids: a replayed batch gives the same alerts
    assert alerts == alerts_from_batch(full_batch())
    assert len({a.alert_id for a in alerts}) == len(alerts)
    assert alerts[0].alert_id == "grid_level_opened:c-l0"


def test_kill_switch_body_states_rule_values_thresholds_and_time():
    a = alerts_from_batch(JournalBatch(events=[KILL]))[0]
    assert a.alert_id == KILL.event_id and a.account == "demo"
    assert "TRIPPED" in a.title and "SESSION_LOSS" in a.title
    for text in ("SESSION_LOSS", "-25.40 %", "-25.00 %", "7,460.00 USDT", "10,000.00 USDT",
                 "2024-01-02T10:00:00Z", "account demo"):
        assert text in a.body, text
    assert a.detail["threshold"] == -0.25


def test_other_kill_switch_rules_and_resets_still_show_their_numbers():
    ev = event("kill_switch_tripped", "DAILY_LOSS", T0, {"value": -0.0523, "threshold": -0.05,
                                                         "day_start_equity": 10_250.0},
               symbol="")
    a = alerts_from_batch(JournalBatch(events=[ev]))[0]
    assert a.severity == "critical" and a.symbol == ""
    for text in ("rule DAILY_LOSS", "value -0.0523 vs threshold -0.05",
                 "day start equity 10,250.00.", "2024-01-02T03:00:00Z"):
        assert text in a.body, text
    ev = event("kill_switch_reset", "OPERATOR", T0, {"issued_by": "ops", "command_id": 7})
    a = alerts_from_batch(JournalBatch(events=[ev]))[0]
    assert a.severity == "info" and "reset" in a.body
    assert "issued_by=ops" in a.body and "command_id=7" in a.body


def test_denial_for_another_rule_lists_its_values():
    ev = event("order_denied", "MIN_NOTIONAL", T0, {"level": 0, "side": "sell", "price": 2.5,
                                                    "amount": 1.5, "min_notional": 5.0})
    a = alerts_from_batch(JournalBatch(events=[ev]))[0]
    assert "L0 sell 1.50 BTC @ 2.50 USDT (notional 3.75 USDT)" in a.body
    assert "MIN_NOTIONAL (min_notional=5.00)" in a.body


def test_level_opened_uses_fill_price_amount_and_time():
    batch = full_batch()
    a = alerts_from_batch(batch)[0]
    assert a.ts_ms == T0 + H + 15 * MIN and a.symbol == "BTC/USDT"
    for text in ("L0", "long", "bought 0.0123 BTC @ 41,250.50 USDT", "notional 507.38 USDT",
                 "2024-01-02T04:15:00Z"):
        assert text in a.body, text
    assert a.detail["price"] == 41_250.5 and a.detail["limit_price"] == 41_300.0


def test_partial_fills_give_vwap_and_total_amount():
    batch = JournalBatch(
        orders=[order("L2", "c", T0, 100.0, 3.0)],
        fills=[fill("c", T0 + 1000, 99.0, 1.0, rid="a"), fill("c", T0 + 2000, 102.0, 2.0, rid="b")],
    )
    (a,) = alerts_from_batch(batch)
    assert a.detail["amount"] == 3.0 and a.detail["price"] == pytest.approx(101.0)
    assert a.ts_ms == T0 + 2000 and "3.00 BTC @ 101.00 USDT" in a.body


def test_trade_body_has_signed_net_pnl_exit_reason_and_prices():
    win, loss = alerts_from_batch(JournalBatch(trades=[trade(12.3456, "TP"),
                                                       trade(-50.0, "SL", open_ts=T0 + H)]))
    assert win.severity == "info" and loss.severity == "warning"
    for text in ("closed by TP", "net PnL +12.35 USDT", "fees 0.56 USDT", "3 level(s)",
                 "avg entry 40,000.00 -> exit 40,500.00 USDT", "held 5h30m"):
        assert text in win.body, text
    assert "+12.35 USDT" in win.title
    assert "net PnL -50.00 USDT" in loss.body and "closed by SL" in loss.body


def test_denied_and_gap_bodies():
    denied, gap = alerts_from_batch(JournalBatch(events=[DENIED, GAP]))
    for text in ("L3 buy 0.0123 BTC @ 40,100.00 USDT", "MAX_MARGIN_RATIO", "72.50 %", "70.00 %"):
        assert text in denied.body, text
    assert gap.account == "" and gap.title == "BTC/USDT data gap: 3 candle(s) missing"
    assert "2024-01-02T03:00:00Z and 2024-01-02T07:00:00Z" in gap.body


def test_real_engine_output_entry_then_take_profit():
    """A batch from the account engine itself: one entry fill, one TP cycle."""
    acct = AccountConfig(name="t", capital_quote=3000.0, symbols=("BTC/USDT",),
                         strategy=GridAtrParams(sma_period=2, atr_period=1, levels=3,
                                                atr_step=1.0))
    eng = AccountEngine(acct, ["BTC/USDT"], {"BTC/USDT": "1h"},
                        FeesConfig(maker_fee=0.0, taker_fee=0.0, slippage=0.0), {})
    rows = np.array([(100, 101, 99, 100), (100, 101, 85, 95), (95, 105, 94, 104)], float)
    c = CandleChunk("BTC/USDT", "1h", np.arange(3, dtype=np.int64) * H, rows[:, 0], rows[:, 1],
                    rows[:, 2], rows[:, 3], np.ones(3), 0, True)
    batch = eng.on_chunk(IndicatorChunk(c, {"sma_2": np.full(3, 100.0), "atr_1": np.full(3, 10.0)}))
    batch.extend(eng.flush())
    alerts = alerts_from_batch(batch)
    assert [a.kind for a in alerts] == ["grid_level_opened", "grid_cycle_closed"]
    assert "@ 90.00 USDT" in alerts[0].body and "closed by TP" in alerts[1].body
    assert f"net PnL {batch.trades[0].pnl:+,.2f} USDT" in alerts[1].body


def test_number_and_time_formatting():
    assert fmt_num(41_250.5) == "41,250.50" and fmt_num(0.00001234) == "0.00001234"
    assert fmt_num(-7460) == "-7,460.00" and fmt_num(0) == "0.00"
    assert fmt_money(507.381) == "507.38" and fmt_money(0.0123456) == "0.01235"
    assert iso_utc(T0) == "2024-01-02T03:00:00Z" and iso_utc(T0 + 5) == "2024-01-02T03:00:00.005Z"


# ---- throttle --------------------------------------------------------------------------
def mk(kind: str, ts: int, account="demo", symbol="BTC/USDT") -> Alert:
    sev = "critical" if kind == "kill_switch_tripped" else "warning"
    return Alert(alert_id=f"{kind}:{account}:{symbol}:{ts}", kind=kind, account=account,
                 symbol=symbol, ts_ms=ts, title="t", body="b", severity=sev)


def test_repeats_within_cooldown_are_suppressed_then_pass_again():
    th = AlertThrottle({"order_denied": 10 * MIN}, default_ms=H)
    sent, n = th.admit([mk("order_denied", T0), mk("order_denied", T0 + MIN),
                        mk("order_denied", T0 + 10 * MIN - 1), mk("order_denied", T0 + 10 * MIN)])
    assert [a.ts_ms for a in sent] == [T0, T0 + 10 * MIN] and n == 2
    sent, n = th.admit([mk("order_denied", T0 + 15 * MIN), mk("order_denied", T0 + 20 * MIN)])
    assert [a.ts_ms for a in sent] == [T0 + 20 * MIN] and n == 1
    assert th.suppressed == {"order_denied": 3}
    # other keys are independent: another symbol, another kind (default cooldown)
    sent, n = th.admit([mk("order_denied", T0 + 20 * MIN, symbol="ETH/USDT"),
                        mk("data_gap", T0), mk("data_gap", T0 + H - 1), mk("data_gap", T0 + H)])
    assert len(sent) == 3 and n == 1 and th.suppressed == {"order_denied": 3, "data_gap": 1}


def test_late_alert_is_suppressed():
    th = AlertThrottle({}, default_ms=MIN)
    assert len(th.admit([mk("data_gap", T0 + H)])[0]) == 1
    assert th.admit([mk("data_gap", T0)]) == ([], 1)


def test_kill_switch_cooldown_defaults_to_zero_but_can_be_set():
    burst = [mk("kill_switch_tripped", T0 + i) for i in (0, 0, 1, 2)]
    th = AlertThrottle({}, default_ms=H)
    assert th.admit(burst) == (burst, 0) and th.suppressed == {}
    th = AlertThrottle({"kill_switch_tripped": 10}, default_ms=0)
    sent, n = th.admit(burst)
    assert sent == burst[:1] and n == 3
    assert AlertThrottle({}, default_ms=0).admit([mk("data_gap", T0)] * 3)[1] == 0


def test_throttle_state_pickles_and_validates():
    th = AlertThrottle({"data_gap": MIN}, default_ms=H)
    th.admit([mk("data_gap", T0), mk("data_gap", T0 + 1)])
    th2 = pickle.loads(pickle.dumps(th))
    assert th2 == th and th2.admit([mk("data_gap", T0 + 2)]) == ([], 1)
    with pytest.raises(ValueError, match="unknown alert kind"):
        AlertThrottle({"data_gaps": 1}, default_ms=0)
    with pytest.raises(ValueError, match=">= 0"):
        AlertThrottle({}, default_ms=-1)


KINDS = ["kill_switch_tripped", "grid_level_opened", "order_denied", "data_gap"]


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(["a", "b"]),
                              st.integers(0, 50_000)), max_size=80),
    cooldowns=st.fixed_dictionaries({k: st.integers(0, 5_000) for k in KINDS}),
    cuts=st.lists(st.integers(0, 80), max_size=5),
    sort=st.booleans(),
)
def test_admitted_alerts_of_one_key_are_never_closer_than_the_cooldown(events, cooldowns,
                                                                        cuts, sort):
    if sort:
        events = sorted(events, key=lambda e: e[2])
    alerts = [mk(k, ts, account=acct).model_copy(update={"alert_id": str(i)})
              for i, (k, acct, ts) in enumerate(events)]
    th = AlertThrottle(cooldowns, default_ms=0)
    sent, n_supp = [], 0
    bounds = [0, *sorted(cuts), len(alerts)]
    for lo, hi in pairwise(bounds):  # arbitrary batching must not matter
        s, n = th.admit(alerts[lo:hi])
        sent += s
        n_supp += n
    assert len(sent) + n_supp == len(alerts) and sum(th.suppressed.values()) == n_supp
    by_key: dict = {}
    for a in sent:
        by_key.setdefault((a.kind, a.account, a.symbol), []).append(a.ts_ms)
    for (kind, _, _), ts in by_key.items():
        if cooldowns[kind] > 0:
            ts.sort()
            assert all(b - a >= cooldowns[kind] for a, b in pairwise(ts))
    # the first alert of every key is admitted
    firsts = {}
    for a in alerts:
        firsts.setdefault((a.kind, a.account, a.symbol), a)
    assert all(a in sent for a in firsts.values())
    if sort:  # in event-time order, every suppression is justified by an admitted alert
        for a in (a for a in alerts if a not in sent):
            ts = by_key[(a.kind, a.account, a.symbol)]
            assert any(t <= a.ts_ms < t + cooldowns[a.kind] for t in ts)
