"""Risk gate: a chain of small uniform rules that fail closed.

Each rule is a numba function that takes the numbers it needs and returns ``0`` (pass)
or a stable reason code. The chain :func:`gate_entry` runs for **every** opening order
(every grid level, not only the first) inside the account step kernel; closing and
reduce-only orders (take profit, stop loss) never pass through it, so a kill switch can
never trap a position. A rule that lacks an input (non-finite price, no equity) denies:
it never substitutes 0.

Reason codes are ints inside the kernel and strings in the journal
(:data:`DENY_REASONS`, :data:`KILL_SWITCH_REASONS`).
"""

from __future__ import annotations

import math

from numba import njit

# --- order denial reasons -------------------------------------------------------------
OK = 0
DENY_KILL_SWITCH = 1
DENY_MIN_NOTIONAL = 2
DENY_MAX_MARGIN_RATIO = 3
DENY_NO_EQUITY = 4
DENY_BAD_PRICE = 5

DENY_REASONS = {
    DENY_KILL_SWITCH: "KILL_SWITCH",
    DENY_MIN_NOTIONAL: "MIN_NOTIONAL",
    DENY_MAX_MARGIN_RATIO: "MAX_MARGIN_RATIO",
    DENY_NO_EQUITY: "NO_EQUITY",
    DENY_BAD_PRICE: "BAD_PRICE",
}

# --- kill switch reasons --------------------------------------------------------------
KS_OFF = 0
KS_SESSION_LOSS = 1

KILL_SWITCH_REASONS = {KS_SESSION_LOSS: "SESSION_LOSS"}


@njit(cache=True)
def rule_kill_switch(kill_switch: int) -> int:
    """Deny every opening order while any kill switch is on."""
    return DENY_KILL_SWITCH if kill_switch != KS_OFF else OK


@njit(cache=True)
def rule_price(price: float, amount: float) -> int:
    """Deny a non-finite or non-positive price or amount (fail closed)."""
    if not (math.isfinite(price) and price > 0.0 and math.isfinite(amount)):
        return DENY_BAD_PRICE
    return OK


@njit(cache=True)
def rule_min_notional(price: float, amount: float, min_amount: float, min_notional: float) -> int:
    """Deny an order below the exchange's minimum amount (base) or notional (quote)."""
    if amount <= 0.0 or amount < min_amount or amount * price < min_notional:
        return DENY_MIN_NOTIONAL
    return OK


@njit(cache=True)
def rule_margin_ratio(
    equity: float, used_margin: float, order_margin: float, max_margin_ratio: float
) -> int:
    """Deny when ``(used_margin + order_margin) / equity > max_margin_ratio``.

    Margins in quote currency (``notional / leverage``); a non-positive or non-finite
    equity denies with ``NO_EQUITY``.
    """
    if not math.isfinite(equity) or equity <= 0.0:
        return DENY_NO_EQUITY
    if (used_margin + order_margin) / equity > max_margin_ratio + 1e-12:
        return DENY_MAX_MARGIN_RATIO
    return OK


@njit(cache=True)
def gate_entry(
    kill_switch: int,
    price: float,
    amount: float,
    min_amount: float,
    min_notional: float,
    equity: float,
    used_margin: float,
    leverage: float,
    max_margin_ratio: float,
) -> int:
    """Run the opening-order rule chain; the first denial wins.

    Order: kill switch, price sanity, exchange minimums, max margin ratio.
    Returns 0 when the order may go out, else a ``DENY_*`` code.
    """
    r = rule_kill_switch(kill_switch)
    if r != OK:
        return r
    r = rule_price(price, amount)
    if r != OK:
        return r
    r = rule_min_notional(price, amount, min_amount, min_notional)
    if r != OK:
        return r
    return rule_margin_ratio(equity, used_margin, amount * price / leverage, max_margin_ratio)


@njit(cache=True)
def session_loss_tripped(equity: float, session_start_equity: float, limit: float) -> bool:
    """True when equity fell ``limit`` (fraction) or more below the session start.

    A non-finite equity trips too (fail closed).
    """
    if not math.isfinite(equity):
        return True
    return equity <= session_start_equity * (1.0 - limit)
