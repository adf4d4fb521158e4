"""Batched places and cancels (:mod:`gridflow.exchange.batch`) against the local Binance
USDⓈ-M exchange through real ccxt: one request per batch, the outcomes a request per
order would give, refused items judged one by one, and the whole request's faults
(unknown outcome: looked up, never placed twice; nothing done: sent alone)."""

from __future__ import annotations

import ccxt
import pytest
from test_gateway import assert_once, by_cid, gateway, intent, start_fx

from gridflow.exchange.batch import batch_limit, cancel_many, item_error, place_many
from gridflow.fakex import FaultPlan

BATCH = "/fapi/v1/batchOrders"


@pytest.fixture
def fx():
    ex = start_fx()
    yield ex
    ex.stop()


def batch_requests(fx) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in fx.request_log if r["path"] == BATCH]


def levels(prefix: str, n: int = 4, **kw) -> list:
    return [intent(f"{prefix}{i}", price=29_000.0 - 100 * i, tag=f"L{i}", **kw)
            for i in range(n)]


def test_only_plain_orders_of_linear_swaps_are_batched(fx) -> None:
    gw = gateway(fx)
    assert batch_limit(gw, intent("a")) == 5
    assert batch_limit(gw, intent("a", action="cancel")) == 10
    assert batch_limit(gw, intent("a", type="stop_market", price=None, stop_price=1.0)) == 0
    assert batch_limit(gw, intent("a", symbol="NOPE/USDT")) == 0


def test_a_batch_places_each_order_in_one_request_with_the_single_outcomes(fx) -> None:
    gw = gateway(fx)
    its = [*levels("b", 3), intent("b0", price=28_000.0),  # the id again: duplicate
           intent("tiny", amount=0.0004)]  # refused locally, never sent
    outs = place_many(gw, its)
    assert [o.status for o in outs] == ["sent", "sent", "sent", "duplicate", "rejected"]
    assert [o.client_order_id for o in outs] == ["b0", "b1", "b2", "b0", "tiny"]
    assert outs[3].exchange_order_id == outs[0].exchange_order_id  # found by a lookup
    assert "-4116" in outs[3].error and outs[3].faults == ["InvalidOrder"]
    assert "MIN_AMOUNT" in outs[4].error and outs[4].attempts == 0
    assert batch_requests(fx) == [("POST", BATCH)]
    placed = by_cid(fx)
    assert [placed[f"b{i}"]["price"] for i in range(3)] == [29_000.0, 28_900.0, 28_800.0]
    assert all(o.exchange_order_id == str(placed[o.client_order_id]["orderId"])
               for o in outs[:3])
    assert_once(fx)


def test_a_batch_cancel_cancels_by_client_id_and_an_unknown_one_is_not_found(fx) -> None:
    gw = gateway(fx)
    place_many(gw, levels("c", 3))
    cancels = [intent(c, action="cancel") for c in ("c0", "gone", "c2")]
    outs = cancel_many(gw, cancels)
    assert [o.status for o in outs] == ["canceled", "not_found", "canceled"]
    assert outs[1].faults == ["OrderNotFound"]
    assert {c: o["status"] for c, o in by_cid(fx).items()} == {
        "c0": "CANCELED", "c1": "NEW", "c2": "CANCELED"}
    assert batch_requests(fx) == [("POST", BATCH), ("DELETE", BATCH)]


@pytest.mark.parametrize(("kind", "fault", "lookups"), [
    ("timeout_after", "RequestTimeout", 4),   # placed: each looked up, found
    ("drop_after", "NetworkError", 4),
    ("timeout_before", "RequestTimeout", 4),  # not placed: each looked up, then sent
    ("drop_before", "NetworkError", 4),
    ("rate_limit", "DDoSProtection", 0),      # refused before processing: each sent alone
    ("server_error", "ExchangeNotAvailable", 4),  # a 5xx may come after processing
    ("reject", "InsufficientFunds", 0),       # the request refused: each sent alone
])
def test_a_failed_batch_request_places_every_order_once(fx, kind, fault, lookups) -> None:
    fx.set_faults(FaultPlan(seed=1, hang_s=0.4, script=[(kind, f"POST {BATCH}")]))
    gw = gateway(fx)
    outs = place_many(gw, levels("f"))
    assert [f["kind"] for f in fx.fault_log] == [kind]
    assert [o.status for o in outs] == ["sent"] * 4
    assert all(o.faults[0] == fault for o in outs)
    gets = [r for r in fx.request_log if r["method"] == "GET" and r["path"] == "/fapi/v1/order"]
    assert len(gets) == lookups
    assert sorted(by_cid(fx)) == [f"f{i}" for i in range(4)]
    assert_once(fx)


def test_a_failed_batch_cancel_is_looked_up_and_ends_with_every_order_canceled(fx) -> None:
    gw = gateway(fx)
    place_many(gw, levels("d"))
    fx.set_faults(FaultPlan(seed=1, hang_s=0.4, script=[("drop_after", f"DELETE {BATCH}")]))
    outs = cancel_many(gw, [intent(f"d{i}", action="cancel") for i in range(4)])
    assert [o.status for o in outs] == ["canceled"] * 4
    assert all(o.faults == ["NetworkError"] and o.attempts == 2 for o in outs)
    assert {o["status"] for o in fx.orders()} == {"CANCELED"}


def test_an_item_done_with_its_answer_lost_is_looked_up_never_sent_again(fx) -> None:
    """Binance answers an item ``-1007`` (send status unknown, execution status unknown)
    after it placed or cancelled it: the item is looked up by client id first, as after a
    timeout of a single request, and found; nothing is sent twice."""
    gw = gateway(fx)
    fx.set_faults(FaultPlan(seed=1, script=[("item_unknown", f"POST {BATCH}"),
                                            ("item_unknown", f"DELETE {BATCH}")]))
    outs = place_many(gw, levels("u", 3))
    assert [o.status for o in outs] == ["sent"] * 3
    assert outs[0].faults == ["RequestTimeout"] and outs[0].attempts == 2  # batch + lookup
    assert [r["method"] for r in fx.request_log if r["path"] == "/fapi/v1/order"] == ["GET"]
    cancels = cancel_many(gw, [intent(f"u{i}", action="cancel") for i in range(3)])
    assert [o.status for o in cancels] == ["canceled"] * 3
    assert cancels[0].faults == ["RequestTimeout"] and cancels[0].attempts == 2
    assert [r["method"] for r in fx.request_log if r["path"] == "/fapi/v1/order"] == [
        "GET", "GET"]  # the cancel's lookup found it cancelled: no second DELETE
    assert {o["status"] for o in fx.orders()} == {"CANCELED"}
    assert_once(fx)


def test_item_errors_map_as_ccxt_maps_them_on_binance_usdm() -> None:
    """Against the venue's own URL ccxt's USDⓈ-M table comes first: a busy venue is
    retryable, as on a single request (no network: only the error tables are used)."""
    ex = ccxt.binanceusdm()
    got = {c: type(item_error(ex, {"code": c, "msg": "x"})).__name__
           for c in (-1008, -1007, -2019, -2011, -99999)}
    assert got == {-1008: "OperationFailed", -1007: "RequestTimeout",
                   -2019: "InsufficientFunds", -2011: "OrderNotFound", -99999: "ExchangeError"}


def test_an_item_error_maps_to_the_class_ccxt_gives_the_same_code(fx) -> None:
    ex = gateway(fx).exchange
    assert type(item_error(ex, {"code": -2019, "msg": "Margin is insufficient."})).__name__ \
        == "InsufficientFunds"
    assert type(item_error(ex, {"code": -4116, "msg": "x"})).__name__ == "InvalidOrder"
    assert type(item_error(ex, {"code": -2011, "msg": "Unknown order sent."})).__name__ \
        == "OrderNotFound"
    assert type(item_error(ex, {"code": -99999, "msg": "?"})).__name__ == "ExchangeError"
