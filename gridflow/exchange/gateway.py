"""The order gateway: turns :class:`~gridflow.events.OrderIntent` into ccxt requests and
reports what happened as :class:`~gridflow.events.OrderOutcome`.

Exactly-once placement rests on the deterministic client order id: after any failure
whose outcome is unknown (a timeout, a dropped connection, a 5xx) the order is looked
up by that id **before** any retry, and an exchange that refuses a reused id (Binance
``-4116``) is read as "already sent". Only ccxt transport errors are retried
(:mod:`gridflow.exchange.retry`); an exchange that said no is not asked again.

Prices are in quote currency, amounts in base currency, timestamps ms UTC.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import ccxt

from gridflow import latency_trace
from gridflow.config.live import RetryConfig
from gridflow.events import OrderIntent, OrderOutcome
from gridflow.exchange.client import ccxt_symbol
from gridflow.exchange.order_prepare import PreSendReject, is_conditional, prepare_place
from gridflow.exchange.order_trace import Prepared, Trace
from gridflow.exchange.venue import Capabilities, capabilities
from gridflow.exchange.retry import (
    backoff_delays,
    error_text,
    is_duplicate_error,
    is_retryable,
    is_unknown_order_error,
    outcome_unknown,
    retry_call,
)

log = logging.getLogger(__name__)

#: ccxt order statuses of an order that is no longer open but was not filled.
_GONE_UNFILLED = ("canceled", "cancelled", "expired", "rejected")


class OrderGateway:
    """Places and cancels orders through a ccxt exchange, with safe retries.

    Parameters
    ----------
    exchange : ccxt.Exchange
        Markets loaded (``load_markets()``) before the first call. Never logged.
    market_type : {"swap", "spot"}
        How config symbols map to ccxt markets (:func:`ccxt_symbol`).
    retry : RetryConfig
        ``max_attempts`` rounds per intent (a round is an optional lookup plus one
        request); full-jitter backoff between rounds.
    secrets : iterable of str
        API key and secret, blanked out of every error text.
    sleep : callable
        ``sleep(seconds)``; injectable for tests.
    rng : random.Random, optional
        Jitter source.
    stop_limit_offset : float
        A ``stop_limit`` intent without a limit price gets one this fraction beyond
        its trigger (below for a sell, above for a buy).

    Notes
    -----
    ccxt call forms (swap): limit ``create_order(sym, "limit", side, amount, price,
    {"clientOrderId", "timeInForce": "GTC", "reduceOnly"})``; market ``"market"`` with
    price None; stop_market ``"market"`` + ``{"stopPrice"}`` and stop_limit
    ``"limit"`` + ``{"stopPrice"}`` (ccxt routes both to the algo-order API with
    ``clientAlgoId``; on spot they become ``STOP_LOSS`` / ``STOP_LOSS_LIMIT``).
    Lookup ``fetch_order(None, sym, {"clientOrderId", "trigger": True})`` and cancel
    ``cancel_order(None, sym, {"clientOrderId", "trigger": True})``, ``trigger`` only
    for conditional orders on contract markets; where the venue's lookup does not know
    trigger orders (Bitget plan orders) they are found in the open and closed trigger
    orders. What a market allows is :meth:`capabilities`. ``reduceOnly`` is sent on contract
    markets only. Methods return outcomes instead of raising ccxt errors.
    """

    def __init__(self, exchange: Any, market_type: str, retry: RetryConfig,
                 secrets: Iterable[str | None] = (), sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, stop_limit_offset: float = 0.005) -> None:
        self._ex = exchange
        self.market_type = market_type
        self.retry = retry
        self._secrets = tuple(s for s in secrets if s)
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self.stop_limit_offset = stop_limit_offset
        self._caps: dict[str, Capabilities] = {}

    def __repr__(self) -> str:  # never show the exchange (it holds the keys)
        return f"OrderGateway(market_type={self.market_type!r})"

    @property
    def exchange(self) -> Any:
        """The ccxt exchange the gateway sends through (never log it: it holds keys)."""
        return self._ex

    # --- public API -------------------------------------------------------------------

    def execute(self, intent: OrderIntent) -> list[OrderOutcome]:
        """Carry out one intent; returns its outcome, or two outcomes for a place that
        replaces an order: ``[cancel, place]`` for ``cancel_first`` (the place is sent
        only if the cancel returned ``canceled``, else it is ``skipped``, see
        :meth:`after_cancel`), ``[place, cancel]`` for ``cancel_after`` (the old order is
        cancelled only if the place was accepted, else its cancel is ``skipped``, see
        :meth:`after_place`)."""
        if intent.action == "cancel":
            return [self.cancel(intent)]
        if intent.cancel_after is not None:
            placed = self.place(intent)
            return [placed, self.after_place(intent, placed)]
        if intent.cancel_first is None:
            return [self.place(intent)]
        cancel_out = self.cancel(self.replaced_cancel(intent))
        return [cancel_out, self.after_cancel(intent, cancel_out)]

    def after_cancel(self, intent: OrderIntent, cancel_status: OrderOutcome | str) -> OrderOutcome:
        """The place half of a replacement once its cancel is known: placed when the
        cancel status is ``canceled``, otherwise ``skipped`` without any request."""
        status = cancel_status if isinstance(cancel_status, str) else cancel_status.status
        if status == "canceled":
            return self.place(self._less_replaced_fills(intent))
        return self.done(intent, "skipped", Trace(
            error=f"replaced order {intent.cancel_first} was not canceled ({status})"))

    def _less_replaced_fills(self, intent: OrderIntent) -> OrderIntent:
        """On spot, a sell replacing an order (its stop) sells only what that order had
        not filled by its cancel: the amount was decided before those fills were known,
        and spot has no reduce-only to cap it (the extra would be refused, or sell the
        owner's base). One lookup; if it fails, the amount as decided."""
        old = intent.cancel_first
        if old is None or intent.side != "sell" or not self.capabilities(intent.symbol).spot:
            return intent
        found = self.find_quiet(Trace(), old, self._symbol(intent.symbol), True)
        filled = float((found or {}).get("filled") or 0.0)
        if filled <= 0.0:
            return intent
        return intent.model_copy(update={"amount": max(intent.amount - filled, 0.0)})

    def after_place(self, intent: OrderIntent, place_status: OrderOutcome | str) -> OrderOutcome:
        """The cancel half of a ``cancel_after`` place once the place is known: the old
        order is cancelled when the place was accepted (``sent`` / ``duplicate``),
        otherwise its cancel is ``skipped`` without any request and it keeps resting."""
        status = place_status if isinstance(place_status, str) else place_status.status
        cancel = self.replaced_cancel(intent)
        if status in ("sent", "duplicate"):
            return self.cancel(cancel)
        return self.done(cancel, "skipped", Trace(
            error=f"its successor {intent.client_order_id} was not placed ({status})"))

    @staticmethod
    def replaced_cancel(intent: OrderIntent) -> OrderIntent:
        """The cancel intent of the order a place replaces (``intent.cancel_first`` or
        ``intent.cancel_after``), same symbol, side, type family and tag. Its
        ``intent_id`` is ``"{old}:cancel"`` for ``cancel_first``; for ``cancel_after``
        it names the successor too, ``"{old}:cancel-after:{new}"`` (client ids): a
        cancel skipped because one successor was refused does not stand in the way of
        the next successor's.

        Raises
        ------
        ValueError
            If ``intent`` replaces no order.
        """
        old = intent.replaces
        if old is None:
            raise ValueError(f"intent {intent.intent_id} replaces no order")
        iid = (f"{old}:cancel" if intent.cancel_first is not None
               else f"{old}:cancel-after:{intent.client_order_id}")
        return intent.model_copy(update={
            "intent_id": iid, "action": "cancel", "client_order_id": old,
            "cancel_first": None, "cancel_after": None})

    def place(self, intent: OrderIntent, *, unknown: bool = False,
              trace: Trace | None = None) -> OrderOutcome:
        """Place one order, at most once per client id.

        ``unknown``: an earlier request (a batch, :mod:`gridflow.exchange.batch`) may
        have carried it, so the first round looks it up before sending; ``trace``: the
        requests and faults met so far, counted in the outcome.

        Returns
        -------
        OrderOutcome
            ``sent`` (with the exchange id; also when a lookup after an unknown
            outcome found the order), ``duplicate`` (the exchange already had the
            client id), ``rejected`` (a local check or the exchange said no: no
            retry), ``failed`` (retries exhausted). Never raises for ccxt errors.
        """
        trace = trace if trace is not None else Trace()
        try:
            prep = self.prepare(intent, trace)
        except PreSendReject as exc:
            trace.error = f"PreSendReject: {exc}"
            return self.done(intent, "rejected", trace)
        cid, sym, cond = intent.client_order_id, prep.symbol, prep.conditional

        def send() -> tuple[str, dict]:
            latency_trace.mark("send", f"{intent.symbol}@{intent.ts_ms}:{intent.tag}")
            return "sent", self._call(trace, self._ex.create_order, sym, prep.ccxt_type,
                                      intent.side, prep.amount, prep.price, dict(prep.params))

        def refused(exc: ccxt.BaseError) -> tuple[str, dict | None]:
            if is_duplicate_error(exc):
                return "duplicate", self.find_quiet(trace, cid, sym, cond)
            return "rejected", None

        return self._rounds(intent, trace, sym, cond, lambda f: None if f is None else "sent",
                            send, refused, unknown)

    def cancel(self, intent: OrderIntent, *, unknown: bool = False,
               trace: Trace | None = None) -> OrderOutcome:
        """Cancel the order ``intent.client_order_id`` (conditional when
        ``intent.type`` is ``stop_*``); ``unknown`` and ``trace`` as for :meth:`place`.

        Returns
        -------
        OrderOutcome
            ``canceled``; ``not_found`` (unknown to the exchange, or a lookup after an
            unknown outcome shows it filled); ``rejected`` (other exchange error);
            ``failed`` (retries exhausted). Never raises for ccxt errors.
        """
        trace = trace if trace is not None else Trace()
        try:
            symbol = self._symbol(intent.symbol)
        except PreSendReject as exc:
            trace.error = f"PreSendReject: {exc}"
            return self.done(intent, "rejected", trace)
        cid, cond = intent.client_order_id, is_conditional(intent.type)

        def send() -> tuple[str, dict]:
            res = self._call(trace, self._ex.cancel_order, None, symbol,
                             self._id_params(cid, symbol, cond))
            if cond and isinstance(res, dict) and not res.get("id"):
                # Bitget answers a plan cancel it could not do (triggered, unknown) with
                # success and a failure list; ccxt parses it to an empty order
                exc = ccxt.OrderNotFound(f"cancel of {cid}: the venue cancelled no order")
                self.record(trace, exc)
                raise exc
            return "canceled", res

        def refused(exc: ccxt.BaseError) -> tuple[str, None]:
            return ("not_found" if is_unknown_order_error(exc) else "rejected"), None

        return self._rounds(intent, trace, symbol, cond, self.lookup_status, send, refused,
                            unknown)

    def _rounds(self, intent: OrderIntent, trace: Trace, symbol: str, cond: bool,
                judge: Callable[[dict | None], str | None], send: Callable[[], tuple[str, dict]],
                refused: Callable[[ccxt.BaseError], tuple[str, dict | None]],
                unknown: bool = False) -> OrderOutcome:
        """Up to ``max_attempts`` rounds (:meth:`_retry`). A round after an unknown
        outcome (the first one too with ``unknown``) starts with a lookup
        (``judge(found)`` gives the final status, or None to send again); a
        non-retryable error ends with ``refused(exc)``, a non-retryable lookup error
        with ``failed``. A round raises only a retryable error, which starts the next
        round after the backoff."""

        def one_round() -> OrderOutcome:
            nonlocal unknown
            if unknown:
                try:
                    found = self._find(trace, intent.client_order_id, symbol, cond)
                except ccxt.BaseError as exc:
                    if is_retryable(exc):
                        raise
                    return self.done(intent, "failed", trace)
                status = judge(found)
                if status is not None:
                    return self.done(intent, status, trace, found)
                unknown = False
            try:
                status, order = send()
            except ccxt.BaseError as exc:
                if is_retryable(exc):
                    unknown = unknown or outcome_unknown(exc)
                    raise
                status, order = refused(exc)
            return self.done(intent, status, trace, order)

        try:
            return self._retry(one_round)
        except ccxt.BaseError:  # every round ended on a transport error
            return self.failed(intent, trace, unknown)

    def failed(self, intent: OrderIntent, trace: Trace, unknown: bool) -> OrderOutcome:
        """The ``failed`` outcome of an intent whose requests all failed; ``unknown``: the
        last one may have reached the exchange (said in the error)."""
        if unknown:
            trace.error = f"outcome unknown (the order may exist); last {trace.error}"
        return self.done(intent, "failed", trace)

    def _retry(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` under :func:`~gridflow.exchange.retry.retry_call` with this gateway's
        config, sleep and RNG; raises the last retryable ccxt error when every attempt
        failed, a non-retryable one at once."""
        return retry_call(fn, self.retry, sleep=self._sleep, rng=self._rng)

    def recover(self, intent: OrderIntent) -> OrderOutcome:
        """Resolve an intent whose previous attempt ended with its outcome unknown (a
        crash after the write-ahead row): look its order up by client id, retrying
        transport errors like :meth:`place`.

        Returns
        -------
        OrderOutcome
            For a place: ``sent`` if the exchange has the order, ``sending`` if not
            (place it now). For a cancel: ``canceled`` / ``not_found`` per
            :meth:`lookup_status`, ``sending`` while the order is still open (cancel
            it now). ``failed`` when no lookup succeeded (never send blind). The
            lookups are counted in ``attempts`` / ``faults``. Never raises for ccxt
            errors.
        """
        trace = Trace()
        try:
            symbol = self._symbol(intent.symbol)
        except PreSendReject as exc:
            trace.error = f"PreSendReject: {exc}"
            return self.done(intent, "rejected", trace)
        cid, cond = intent.client_order_id, is_conditional(intent.type)
        try:
            found = self._retry(lambda: self._find(trace, cid, symbol, cond))
        except ccxt.BaseError:  # a non-retryable error, or every lookup failed
            trace.error = f"outcome unknown, lookups failed; last {trace.error}"
            return self.done(intent, "failed", trace)
        if intent.action == "place":
            status = "sending" if found is None else "sent"
        else:
            status = self.lookup_status(found) or "sending"
        return self.done(intent, status, trace, found)

    @staticmethod
    def lookup_status(found: dict | None) -> str | None:
        """What a lookup says about a cancel: ``"not_found"`` (no such order, or it was
        filled), ``"canceled"`` (canceled / expired / rejected), None (still open)."""
        if found is None:
            return "not_found"
        status = str(found.get("status") or "").lower()
        if status in _GONE_UNFILLED:
            return "canceled"
        if status == "closed":
            return "not_found"
        return None

    def find(self, client_order_id: str, symbol: str, conditional: bool) -> dict | None:
        """Look an order up by client id (one request, no retry).

        Parameters
        ----------
        client_order_id : str
        symbol : str
            Config (``"BTC/USDT"``) or ccxt symbol.
        conditional : bool
            True for stop orders (Binance algo orders on a swap market).

        Returns
        -------
        dict or None
            The ccxt order structure, or None if the exchange does not know the id.

        Raises
        ------
        ccxt.BaseError
            Any other ccxt error (timeouts included), message unredacted by ccxt:
            pass it through :func:`~gridflow.exchange.retry.error_text` before logging.
        """
        sym = ccxt_symbol(symbol, self.market_type)
        params = self._id_params(client_order_id, sym, conditional)
        if conditional and self.capabilities(sym).trigger_lookup == "list":
            return self._find_listed(client_order_id, sym)
        try:
            return self._ex.fetch_order(None, sym, params)
        except ccxt.BaseError as exc:
            if is_unknown_order_error(exc):
                return None
            raise

    def _find_listed(self, cid: str, sym: str) -> dict | None:
        """A trigger order found by client id in the open, then the closed trigger
        orders (a venue whose order lookup does not know them: Bitget plan orders)."""
        ex = self._ex
        done = (ex.fetch_canceled_and_closed_orders  # fetch_closed_orders drops cancels
                if ex.has.get("fetchCanceledAndClosedOrders") else ex.fetch_closed_orders)
        for fetch in (ex.fetch_open_orders, done):
            for o in fetch(sym, None, None, {"trigger": True}) or ():
                if o.get("clientOrderId") == cid:
                    return o
        return None

    def capabilities(self, symbol: str) -> Capabilities:
        """What ``symbol``'s market allows (:func:`~gridflow.exchange.venue.capabilities`),
        decided once per market."""
        sym = ccxt_symbol(symbol, self.market_type)
        caps = self._caps.get(sym)
        if caps is None:
            caps = self._caps[sym] = capabilities(self._ex, self._ex.market(sym))
        return caps

    # --- internals --------------------------------------------------------------------

    def _symbol(self, symbol: str) -> str:
        sym = ccxt_symbol(symbol, self.market_type)
        try:
            self._ex.market(sym)
        except ccxt.BaseError as exc:
            raise PreSendReject(f"unknown market {sym}: {type(exc).__name__}") from None
        return sym

    def _id_params(self, cid: str, symbol: str, conditional: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"clientOrderId": cid}
        if conditional and self.capabilities(symbol).trigger_flag:
            params["trigger"] = True
        return params

    def redact(self, exc: BaseException) -> str:
        """``"ClassName: message"`` of ``exc`` with this gateway's secrets masked."""
        return error_text(exc, self._secrets)

    def pause_before_resend(self) -> bool:
        """Sleep the first backoff delay of the retry policy before an intent refused
        by a busy venue is sent again; False (no sleep) when the policy allows no retry."""
        delays = backoff_delays(self.retry, self._rng)
        if delays:
            self._sleep(delays[0])
        return bool(delays)

    def _call(self, trace: Trace, fn: Callable[..., Any], *args: Any) -> Any:
        """One request, counted; a ccxt error is recorded (redacted) and re-raised."""
        trace.attempts += 1
        try:
            return fn(*args)
        except ccxt.BaseError as exc:
            self.record(trace, exc)
            raise

    def record(self, trace: Trace, exc: ccxt.BaseError) -> None:
        """``exc`` met by the intent of ``trace``: its class counted, its text (redacted)
        kept as the last error."""
        trace.faults.append(type(exc).__name__)
        trace.error = self.redact(exc)

    def _find(self, trace: Trace, cid: str, symbol: str, conditional: bool) -> dict | None:
        return self._call(trace, self.find, cid, symbol, conditional)

    def find_quiet(self, trace: Trace, cid: str, symbol: str, conditional: bool) -> dict | None:
        """A lookup whose failure is only recorded (the answer is already known)."""
        try:
            return self._find(trace, cid, symbol, conditional)
        except ccxt.BaseError:
            return None

    def prepare(self, intent: OrderIntent, trace: Trace) -> Prepared:
        """The ccxt arguments of a place, checked locally (raises :class:`PreSendReject`:
        :func:`~gridflow.exchange.order_prepare.prepare_place`)."""
        sym = self._symbol(intent.symbol)

        def last_price() -> float | None:  # one counted request, its failure tolerated
            try:
                return self._call(trace, self._ex.fetch_ticker, sym).get("last")
            except ccxt.BaseError:
                return None

        return prepare_place(self._ex, sym, self.capabilities(sym), intent,
                             self.stop_limit_offset, last_price)

    def done(self, intent: OrderIntent, status: str, trace: Trace,
              order: dict | None = None) -> OrderOutcome:
        """The outcome, logged (ids, status, fault classes, redacted error only)."""
        oid = (order or {}).get("id")
        out = OrderOutcome(
            intent_id=intent.intent_id, client_order_id=intent.client_order_id,
            action=intent.action, account=intent.account, symbol=intent.symbol, tag=intent.tag,
            status=status, exchange_order_id="" if oid is None else str(oid),
            attempts=trace.attempts, error=trace.error, faults=list(trace.faults),
            ts_ms=time.time_ns() // 1_000_000)
        ok = status in ("sent", "canceled", "duplicate", "not_found", "sending")
        log.log(logging.INFO if ok else logging.WARNING, "%s %s %s -> %s (attempts=%d faults=%s) %s",
                intent.action, intent.client_order_id, intent.symbol, status, out.attempts,
                ",".join(out.faults) or "-", out.error)
        return out


__all__ = ["OrderGateway", "PreSendReject", "is_conditional", "is_duplicate_error",
           "is_unknown_order_error"]
