"""Deterministic fault injection for the fake exchange.

A :class:`FaultPlan` describes what goes wrong; a :class:`FaultInjector` draws the
faults from a seeded RNG, so the same request sequence gets the same faults.

Request faults (one draw per request the plan applies to, kinds tried in this order
against cumulative probabilities):

``timeout_after``
    The request is executed, then the answer is held ``hang_s`` seconds (the client
    times out: the order exists, the outcome is unknown to it).
``timeout_before``
    Held ``hang_s`` seconds, then the connection is closed; nothing executed.
``rate_limit``
    HTTP 429 ``{"code": -1003}`` with ``Retry-After``; nothing executed.
``server_error``
    HTTP 503 with a plain-text body; nothing executed.
``drop_after``
    Executed, then the connection is closed without an answer.
``drop_before``
    Connection closed without an answer; nothing executed.
``reject``
    HTTP 400 ``{"code": -2019, "msg": "Margin is insufficient."}`` (Binance spot: -2010
    "Account has insufficient balance for requested action."); nothing executed.
    Random rejects hit only order placements (POST order / algoOrder).

Fill fault: ``partial_fill`` -- when an order fills, only half of what remains (rounded
down to the step, at least one step) fills now; the rest keeps resting.

``apply_to`` selects the requests random faults may hit: ``"order_write"`` (POST and
DELETE of ``/order`` and ``/algoOrder``, Binance spot's ``/api/v3/order`` included;
Bitget: POST of ``place-order``,
``cancel-order``, ``place-plan-order``, ``place-tpsl-order``, ``cancel-plan-order``)
and/or ``"read"`` (every GET, public ones included). Random rejects hit only
placements (Binance POST order / algoOrder / batchOrders, Bitget ``place-*``). The
``/_fakex/`` control endpoints are never faulted.

Websocket faults (one draw per data message sent on a connection, from an RNG of their
own, so REST draws are the same with or without them): ``ws_duplicate`` -- the message
is sent twice; ``ws_reorder`` -- the message is held and sent after the next message of
the same connection (the two are swapped; a message with no follower in its batch is
sent in place). Replies to SUBSCRIBE-type requests are never faulted. Other websocket
faults are called from Python (``FakeExchange.ws_drop``, ``ws_silence``,
``expire_listen_key``; see :mod:`gridflow.fakex.ws`).

``script`` entries ``(kind, substring)`` come before any random draw and are consumed
strictly in order: request kinds from one queue, ``partial_fill`` from another. A
request entry hits the next request whose ``"METHOD /path"`` contains the substring
(``"POST /fapi/v1/order"``, or just ``"/klines"``), whatever ``apply_to`` says. A
``partial_fill`` entry hits the next fill whose order's client id or market id
(``"BTCUSDT"``) contains the substring (``""`` matches any fill).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

__all__ = ["REQUEST_KINDS", "SCRIPT_KINDS", "WS_KINDS", "FaultInjector", "FaultPlan"]

REQUEST_KINDS = ("timeout_after", "timeout_before", "rate_limit", "server_error",
                 "drop_after", "drop_before", "reject")
SCRIPT_KINDS = ("item_unknown",)
"""Faults only a script asks for: ``item_unknown``, a batch request handled whole whose
first item's answer is Binance's ``-1007`` ("send status unknown; execution status
unknown") in place of what was done."""
WS_KINDS = ("ws_duplicate", "ws_reorder")
_SCOPES = ("order_write", "read")


@dataclass(frozen=True)
class FaultPlan:
    """What goes wrong, and how often (probabilities per eligible request or fill).

    Attributes
    ----------
    seed : int
        RNG seed; the same request sequence draws the same faults.
    timeout_after, timeout_before, rate_limit, server_error, drop_after, drop_before,
    reject : float
        Per-request probabilities (their sum must not exceed 1).
    partial_fill : float
        Per-fill probability of a partial fill.
    ws_duplicate, ws_reorder : float
        Per-websocket-message probabilities (their sum must not exceed 1).
    apply_to : tuple of str
        ``"order_write"`` and/or ``"read"``.
    hang_s : float
        Seconds a timeout holds the connection (set the client timeout shorter).
    script : list of (kind, substring)
        Exact faults, consumed first and in order (see the module docstring).
    """

    seed: int = 0
    timeout_after: float = 0.0
    timeout_before: float = 0.0
    rate_limit: float = 0.0
    server_error: float = 0.0
    drop_after: float = 0.0
    drop_before: float = 0.0
    reject: float = 0.0
    partial_fill: float = 0.0
    ws_duplicate: float = 0.0
    ws_reorder: float = 0.0
    apply_to: tuple[str, ...] = ("order_write",)
    hang_s: float = 3.0
    script: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        probs = [getattr(self, k) for k in (*REQUEST_KINDS, *WS_KINDS)] + [self.partial_fill]
        if any(not 0.0 <= p <= 1.0 for p in probs):
            raise ValueError("fault probabilities must lie in [0, 1]")
        if sum(getattr(self, k) for k in REQUEST_KINDS) > 1.0 + 1e-12:
            raise ValueError("request fault probabilities must sum to at most 1")
        if self.ws_duplicate + self.ws_reorder > 1.0 + 1e-12:
            raise ValueError("websocket fault probabilities must sum to at most 1")
        scopes = (self.apply_to,) if isinstance(self.apply_to, str) else tuple(self.apply_to)
        if any(s not in _SCOPES for s in scopes):
            raise ValueError(f"apply_to entries must be among {_SCOPES}, got {self.apply_to!r}")
        object.__setattr__(self, "apply_to", scopes)
        if self.hang_s < 0:
            raise ValueError("hang_s must be >= 0")
        for entry in self.script:
            kinds = (*REQUEST_KINDS, *SCRIPT_KINDS, "partial_fill")
            if len(entry) != 2 or entry[0] not in kinds:
                raise ValueError(f"bad script entry {entry!r}: (kind, substring) with kind in "
                                 f"{kinds}")


_BITGET_WRITES = ("place-order", "cancel-order", "place-plan-order", "place-tpsl-order",
                  "cancel-plan-order", "batch-place-order", "batch-cancel-orders")


def is_order_write(method: str, path: str) -> bool:
    """POST or DELETE of an order, an algo order or a batch of orders (Binance), or a
    POST to a Bitget order endpoint that places or cancels."""
    last = path.rsplit("/", 1)[-1]
    return (method in ("POST", "DELETE") and last in ("order", "algoOrder", "batchOrders")) \
        or (method == "POST" and last in _BITGET_WRITES)


def is_order_placement(method: str, path: str) -> bool:
    """An order write that places (Binance: POST; Bitget: ``place-*``)."""
    last = path.rsplit("/", 1)[-1]
    return is_order_write(method, path) and method == "POST" and "cancel" not in last


class FaultInjector:
    """Draws the faults of one :class:`FaultPlan` (not thread-safe: call under a lock)."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._fill_rng = random.Random(plan.seed * 7919 + 1)
        self._ws_rng = random.Random(plan.seed * 104_729 + 2)
        self._req_script = deque(e for e in plan.script if e[0] != "partial_fill")
        self._fill_script = deque(e for e in plan.script if e[0] == "partial_fill")

    def on_request(self, method: str, path: str) -> str | None:
        """Fault kind for this request, or None."""
        target = f"{method} {path}"
        if self._req_script and self._req_script[0][1] in target:
            return self._req_script.popleft()[0]
        write = is_order_write(method, path)
        eligible = (write and "order_write" in self.plan.apply_to) or (
            method == "GET" and "read" in self.plan.apply_to)
        if not eligible:
            return None
        u = self._rng.random()
        acc = 0.0
        placing = is_order_placement(method, path)
        for kind in REQUEST_KINDS:
            p = getattr(self.plan, kind)
            if kind == "reject" and not placing:
                continue
            acc += p
            if u < acc:
                return kind
        return None

    def on_fill(self, client_id: str, market_id: str) -> bool:
        """True if this fill is to be partial."""
        if self._fill_script:
            sub = self._fill_script[0][1]
            if sub in client_id or sub in market_id:
                self._fill_script.popleft()
                return True
        if self.plan.partial_fill <= 0.0:
            return False
        return self._fill_rng.random() < self.plan.partial_fill

    def on_ws_send(self) -> str | None:
        """``"ws_duplicate"``, ``"ws_reorder"`` or None for the next websocket message
        (one draw per call; call from one thread only)."""
        u = self._ws_rng.random()
        if u < self.plan.ws_duplicate:
            return "ws_duplicate"
        if u < self.plan.ws_duplicate + self.plan.ws_reorder:
            return "ws_reorder"
        return None
