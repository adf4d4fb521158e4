"""Batched orders: several orders of one symbol in one request (Binance USDⓈ-M
``POST /fapi/v1/batchOrders``, at most 5 orders; ``DELETE /fapi/v1/batchOrders``, at most
10 client ids), with the outcomes and the exactly-once rules of one request per order
(:class:`~gridflow.exchange.gateway.OrderGateway`).

Why: a candle close that moves a symbol's five grid levels costs ten requests one after
the other (each level's cancel, then its new place); as two batches it costs two. The
candle's entries reach the exchange sooner, and the burst of requests that a fill's take
profit and stop compete with (for the exchange's answer and for this process's CPU) is a
fifth as long.

Binance handles each item of a batch on its own and answers a list in request order,
each item the order or an error object ``{"code", "msg"}`` in its place:

* an item answered with an order: ``sent`` / ``canceled``;
* an item answered with an error: the error becomes its ccxt class through the
  exchange's own error table (:func:`item_error`) and is judged as the same error on a
  single request: a refused place is ``duplicate`` (after a lookup) or ``rejected``, an
  unknown order's cancel ``not_found``; a retryable error (the venue was busy: nothing
  was done) hands the item to the single-order path, which retries it;
* the whole request failed: after a transport error whose outcome is unknown (a
  timeout, a dropped connection) every item is carried on by the single-order path
  starting with a lookup by client id (never placed twice); after one that left
  nothing done (a 429, a 5xx before processing, a refused request) every item is sent
  alone, after one backoff delay when the error was retryable.

ccxt's unified ``create_orders`` sorts its answer by time and ``cancel_orders`` drops the
error items, so neither can be matched to the intents; the raw endpoints are called
through ccxt (signing, rate limiter, error classes; each order's request built by ccxt's
own ``create_order_request``, with its precision) and matched by position.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import ccxt

from gridflow import latency_trace
from gridflow.events import OrderIntent, OrderOutcome
from gridflow.exchange.gateway import OrderGateway, PreSendReject, is_conditional
from gridflow.exchange.order_trace import Trace
from gridflow.exchange.client import ccxt_symbol
from gridflow.exchange.venue import BATCH_CANCEL_MAX, BATCH_PLACE_MAX
from gridflow.exchange.retry import (
    is_duplicate_error,
    is_retryable,
    is_unknown_order_error,
    outcome_unknown,
)

PLACE_MAX = BATCH_PLACE_MAX
CANCEL_MAX = BATCH_CANCEL_MAX


def batch_limit(gw: OrderGateway, intent: OrderIntent) -> int:
    """How many intents like ``intent`` one batch request of ``gw``'s venue carries: 0
    when it is not batched (a stop: Binance's algo orders have no batch endpoint; a
    spot market or another venue: :meth:`OrderGateway.capabilities`), else the
    venue's batch size for a place or a cancel."""
    if is_conditional(intent.type):
        return 0
    try:
        caps = gw.capabilities(intent.symbol)
    except ccxt.BaseError:
        return 0
    return caps.batch_place if intent.action == "place" else caps.batch_cancel


def item_error(ex: ccxt.Exchange, item: dict, url: str | None = None) -> ccxt.BaseError:
    """The ccxt error an error item of a batch answer stands for: the exchange's own
    ``handle_errors`` run on it as the answer of a single request to ``url`` (default:
    the venue's batch endpoint), so the venue's URL-specific tables (Binance USDⓈ-M's
    ``-1008`` server busy, ``-2019``, ``-4116``, ...) map it as they map the same error
    on a single request; :class:`ccxt.ExchangeError` when nothing matches."""
    body = json.dumps(item)
    url = url if url is not None else f"{ex.urls.get('api', {}).get('fapiPrivate', '')}/batchOrders"
    try:
        ex.handle_errors(400, "Bad Request", url, "POST", {}, body, item, None, None)
    except ccxt.BaseError as exc:
        return exc
    return ccxt.ExchangeError(f"{ex.id} {body}")


def _is_error(item: object) -> bool:
    return isinstance(item, dict) and item.get("code") is not None and "orderId" not in item


def _whole_failure(gw: OrderGateway, exc: ccxt.BaseError) -> tuple[bool, bool]:
    """What a failed batch request means for its items: ``(go on, unknown)``. Unknown
    (a timeout, a lost answer, a 5xx, an unreadable answer): each item is looked up
    before any resend. Retryable but known (a 429: nothing done): each is sent alone
    after one backoff delay. Refused whole (nothing done): each is sent alone. No
    retry left in the policy: no go (the items end ``failed``)."""
    if isinstance(exc, ccxt.BadResponse):
        return True, True
    if not is_retryable(exc):
        return True, False
    return gw.pause_before_resend(), outcome_unknown(exc)


def place_many(gw: OrderGateway, intents: Sequence[OrderIntent]) -> list[OrderOutcome]:
    """Place orders of one symbol (each :func:`batch_limit` > 0; at most
    :data:`PLACE_MAX`) in one request; one outcome per intent, in order, as
    :meth:`OrderGateway.place` would give it (see the module docstring). Never raises
    for ccxt errors."""
    outs: list[OrderOutcome | None] = [None] * len(intents)
    ready: list[tuple[int, OrderIntent, Trace]] = []
    reqs: list[dict] = []
    ex = gw.exchange
    for k, it in enumerate(intents):
        trace = Trace()
        try:
            prep = gw.prepare(it, trace)
        except PreSendReject as exc:
            trace.error = f"PreSendReject: {exc}"
            outs[k] = gw.done(it, "rejected", trace)
            continue
        try:
            req = ex.create_order_request(prep.symbol, prep.ccxt_type, it.side, prep.amount,
                                          prep.price, {**prep.params, "isAlgoOrder": False})
        except ccxt.BaseError as exc:  # ccxt refused to build it: as a refused send
            gw.record(trace, exc)
            outs[k] = gw.done(it, "rejected", trace)
            continue
        ready.append((k, it, trace))
        reqs.append(req)
    if len(ready) < 2:  # nothing to gather
        for k, it, trace in ready:
            outs[k] = gw.place(it)
        return [o for o in outs if o is not None]
    for _, it, trace in ready:
        trace.attempts += 1
        if latency_trace.enabled():
            latency_trace.mark("send", f"{it.symbol}@{it.ts_ms}:{it.tag}")
    try:
        raw = ex.fapiPrivatePostBatchOrders({"batchOrders": reqs})
        if not isinstance(raw, list) or len(raw) != len(reqs):
            raise ccxt.BadResponse(f"{ex.id} batchOrders answered {len(raw)} items for "
                                   f"{len(reqs)}" if isinstance(raw, list) else
                                   f"{ex.id} batchOrders answered no list")
    except ccxt.BaseError as exc:
        go, unknown = _whole_failure(gw, exc)
        for k, it, trace in ready:
            gw.record(trace, exc)
            outs[k] = gw.place(it, unknown=unknown, trace=trace) if go else gw.failed(
                it, trace, unknown)
        return [o for o in outs if o is not None]
    for (k, it, trace), item in zip(ready, raw):
        if not _is_error(item):
            outs[k] = gw.done(it, "sent", trace, {"id": item.get("orderId")})
            continue
        exc = item_error(ex, item)
        gw.record(trace, exc)
        if is_retryable(exc):  # busy (not done), or done with the answer lost (-1007)
            outs[k] = gw.place(it, unknown=outcome_unknown(exc), trace=trace)
        elif is_duplicate_error(exc):
            outs[k] = gw.done(it, "duplicate", trace, gw.find_quiet(
                trace, it.client_order_id, it.symbol, False))
        else:
            outs[k] = gw.done(it, "rejected", trace)
    return [o for o in outs if o is not None]


def cancel_many(gw: OrderGateway, intents: Sequence[OrderIntent]) -> list[OrderOutcome]:
    """Cancel orders of one symbol by client id (each :func:`batch_limit` > 0; at most
    :data:`CANCEL_MAX`) in one request; one outcome per intent, in order, as
    :meth:`OrderGateway.cancel` would give it. Never raises for ccxt errors."""
    if len(intents) < 2:
        return [gw.cancel(it) for it in intents]
    ex = gw.exchange
    traces = [Trace() for _ in intents]
    try:
        market_id = ex.market(ccxt_symbol(intents[0].symbol, gw.market_type))["id"]
    except ccxt.BaseError:
        return [gw.cancel(it) for it in intents]  # each refused as an unknown market
    for t in traces:
        t.attempts += 1
    try:
        raw = ex.fapiPrivateDeleteBatchOrders({
            "symbol": market_id, "origClientOrderIdList": [it.client_order_id for it in intents]})
        if not isinstance(raw, list) or len(raw) != len(intents):
            raise ccxt.BadResponse(f"{ex.id} batchOrders answered no list of "
                                   f"{len(intents)} items")
    except ccxt.BaseError as exc:
        go, unknown = _whole_failure(gw, exc)
        out = []
        for it, trace in zip(intents, traces):
            gw.record(trace, exc)
            out.append(gw.cancel(it, unknown=unknown, trace=trace) if go else gw.failed(
                it, trace, unknown))
        return out
    out = []
    for it, trace, item in zip(intents, traces, raw):
        if not _is_error(item):
            out.append(gw.done(it, "canceled", trace, {"id": item.get("orderId")}))
            continue
        exc = item_error(ex, item)
        gw.record(trace, exc)
        if is_retryable(exc):
            out.append(gw.cancel(it, unknown=outcome_unknown(exc), trace=trace))
        else:
            status = "not_found" if is_unknown_order_error(exc) else "rejected"
            out.append(gw.done(it, status, trace))
    return out


__all__ = ["CANCEL_MAX", "PLACE_MAX", "batch_limit", "cancel_many", "item_error",
           "place_many"]
