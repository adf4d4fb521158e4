"""Does one grid level clear the venue's minimum order? The engine's own sizing rule
(:func:`gridflow.operators.entry_gate.level_notional` and ``level_amount``, the risk
gate's :func:`~gridflow.operators.risk.rule_min_notional`) applied to a symbol's
current price and the venue's limits, before a live flow starts.

Prices and notionals in quote currency, amounts in base currency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gridflow.config.models import AccountConfig, FeesConfig
from gridflow.config.strategies import StrategyParams
from gridflow.operators import kernel_layout as kl
from gridflow.operators.engine import account_params, market_params
from gridflow.operators.entry_gate import level_amount, level_notional
from gridflow.operators.risk import OK, rule_min_notional

__all__ = ["LevelCheck", "check_level"]

#: How each sizing mode sizes a level (the words of the preflight's message).
_HOW = {
    "equal": "capital {capital:g} / {symbols} symbols / {levels} levels x leverage {lev:g}",
    "vol_parity": "capital {capital:g} / {symbols} symbols / {levels} levels x leverage "
                  "{lev:g}, before the volatility scaling",
    "risk": "risk sizing: risk_per_trade {rpt:g} x capital {capital:g} / ({levels} levels "
            "x sl_frac {sl:g})",
    "fixed_notional": "sizing.notional_per_level_quote",
}


@dataclass(frozen=True)
class LevelCheck:
    """One grid level of one symbol against the venue's minimum order.

    Attributes
    ----------
    ok : bool
        The level's amount (floored to the step, as the engine does) passes the risk
        gate's minimum-order rule.
    notional : float
        The level's notional before flooring (quote).
    amount : float
        Its amount floored to the venue's step (base).
    min_order : float
        Notional of the smallest order the venue accepts at ``price`` (quote): the
        larger of ``min_notional`` and ``min_amount``, in whole steps.
    price : float
        The price used (quote).
    how : str
        How the level is sized, in words with the figures.
    fix : str
        The setting to raise, and to what (empty when ``ok``).
    """

    ok: bool
    notional: float
    amount: float
    min_order: float
    price: float
    how: str
    fix: str


def _min_order(price: float, step: float, min_amount: float, min_notional: float) -> float:
    """Smallest accepted order notional at ``price``: whole steps, both minimums."""
    amount = min_notional / price
    if step > 0:
        amount = math.ceil(amount / step - 1e-9) * step
    return max(amount, min_amount) * price


def check_level(account: AccountConfig, fees: FeesConfig, params: StrategyParams,
                n_symbols: int, price: float, step: float, min_amount: float,
                min_notional: float) -> LevelCheck:
    """Size one grid level of a symbol as the engine would and compare it with the
    venue's minimum order.

    Parameters
    ----------
    account : AccountConfig
        Capital (quote), leverage and sizing of the account.
    fees : FeesConfig
        The run's fees (part of the engine's parameter vector; not used by sizing).
    params : StrategyParams
        The symbol's strategy parameters (levels, ``sl_frac``).
    n_symbols : int
        Symbols the account trades (the capital is split evenly among them).
    price : float
        Current price of the symbol (quote), > 0.
    step, min_amount, min_notional : float
        The venue's amount step (base; 0 = none), minimum amount (base) and minimum
        notional (quote).

    Raises
    ------
    ValueError
        ``price`` not a positive finite number, or ``n_symbols < 1``.
    """
    if not (math.isfinite(price) and price > 0) or n_symbols < 1:
        raise ValueError(f"need a positive price and n_symbols >= 1, got {price}, {n_symbols}")
    levels = params.levels_count
    alloc = account.capital_quote / n_symbols
    sz = account.sizing
    mp = market_params(step, min_amount, min_notional, params, alloc)[None, :]
    sf = np.zeros((1, kl.SF_W))
    sf[0, kl.SF_SIZE] = level_notional(sz, alloc, levels, account.leverage)
    pf = account_params(account, fees)
    amount = float(level_amount(0, price, account.capital_quote, sf, pf, mp))
    unfloored = mp.copy()
    unfloored[0, kl.M_STEP] = 0.0
    notional = float(level_amount(0, price, account.capital_quote, sf, pf, unfloored)) * price
    ok = rule_min_notional(price, amount, min_amount, min_notional) == OK
    smallest = _min_order(price, step, min_amount, min_notional)
    how = _HOW[sz.mode].format(capital=account.capital_quote, symbols=n_symbols,
                               levels=levels, lev=account.leverage, rpt=sz.risk_per_trade,
                               sl=params.sl_frac)
    fix = ""
    if not ok:
        where = f"accounts[name={account.name}]"
        if sz.mode == "fixed_notional":
            fix = f"raise {where}.sizing.notional_per_level_quote to at least {smallest:.2f}"
        else:  # the level grows in proportion to the capital
            need = account.capital_quote * smallest / notional if notional > 0 else math.inf
            fix = (f"raise {where}.capital_quote to at least {math.ceil(need):,}"
                   + (" (or sizing.risk_per_trade)" if sz.mode == "risk" else
                      " (or trade fewer symbols or levels, or raise leverage)"))
    return LevelCheck(ok, notional, amount, smallest, price, how, fix)
