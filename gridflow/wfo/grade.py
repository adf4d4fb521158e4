"""Scoring of in-sample combinations and the letter grade of a walk-forward report.

Grade rules (``GRADE_RULES``); a NaN input fails its rule:

===  ====================  ========  ================================================
 #   key                   pass if   meaning
===  ====================  ========  ================================================
 1   ``dsr``               >= 0.95   deflated Sharpe ratio (selection-bias corrected)
 2   ``mc_pvalue``         <= 0.05   block-bootstrap p-value of "no edge"
 3   ``consistency``       >= 0.6    share of OOS windows with positive net PnL
 4   ``oos_is_ratio``      >= 0.5    mean OOS Sharpe / IS Sharpe
 5   ``stability``         >= 0.6    share of ±10/20 % neighbours keeping >= 50 % score
 6   ``oos_max_drawdown``  <= 0.30   max drawdown of the stitched OOS equity
 7   ``oos_sharpe``        >= 1.0    annualised Sharpe of the stitched OOS equity
===  ====================  ========  ================================================

When the walk-forward measured the cross-venue transfer (:mod:`gridflow.wfo.transfer`)
an eighth rule counts (:data:`TRANSFER_RULE`): ``transfer_ratio`` (live-venue Sharpe /
research-venue Sharpe of the chosen parameters over the live venue's recent window)
>= 0.5, the roadmap's transfer bar (house rule).

Letter from the number of failed rules: A = none, B = 1, C = 2, D = 3–4, F = 5 or more.
Hard fails (``HARD_FAILS``) force F whatever the count: ``oos_sharpe <= 0`` and
``oos_trades < 10`` (a NaN counts as failing). The thresholds follow the usual
conventions: DSR 0.95 and p 0.05 are the 5 % significance level of Bailey & López de
Prado (2014); OOS/IS 0.5 is the common "walk-forward efficiency" bar (Pardo 2008,
"The Evaluation and Optimization of Trading Strategies"); the rest are house rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class GradeRule:
    """One counted check of :func:`grade`: ``report[key] <op> threshold`` passes.

    Attributes
    ----------
    number : int
        Rule number 1..7.
    key : str
        Report key.
    op : str
        ``">="``, ``"<="`` or ``">"``.
    threshold : float
        Inclusive bound.
    meaning : str
        Human-readable description.
    """

    number: int
    key: str
    op: str
    threshold: float
    meaning: str

    def passes(self, value: float) -> bool:
        """Whether ``value`` passes (NaN never does)."""
        if self.op == ">=":
            return value >= self.threshold
        if self.op == "<=":
            return value <= self.threshold
        return value > self.threshold


GRADE_RULES = (
    GradeRule(1, "dsr", ">=", 0.95, "deflated Sharpe ratio"),
    GradeRule(2, "mc_pvalue", "<=", 0.05, "block-bootstrap p-value of no edge"),
    GradeRule(3, "consistency", ">=", 0.6, "share of OOS windows with positive net PnL"),
    GradeRule(4, "oos_is_ratio", ">=", 0.5, "OOS Sharpe / IS Sharpe"),
    GradeRule(5, "stability", ">=", 0.6, "share of perturbed neighbours keeping the score"),
    GradeRule(6, "oos_max_drawdown", "<=", 0.30, "OOS max drawdown"),
    GradeRule(7, "oos_sharpe", ">=", 1.0, "annualised OOS Sharpe"),
)
"""The seven counted checks of :func:`grade`."""

HARD_FAILS = (
    GradeRule(0, "oos_sharpe", ">", 0.0, "annualised OOS Sharpe must be positive"),
    GradeRule(0, "oos_trades", ">=", 10, "at least 10 OOS trades"),
)
"""Checks whose failure forces grade F (``op`` here states the *passing* condition)."""

TRANSFER_RULE = GradeRule(8, "transfer_ratio", ">=", 0.5,
                          "live-venue Sharpe / research-venue Sharpe")
"""Counted only when the report holds ``transfer_ratio``."""

LETTERS = {0: "A", 1: "B", 2: "C", 3: "D", 4: "D"}
"""Letter by number of failed rules; anything not listed is F."""

REPORT_KEYS = tuple(r.key for r in GRADE_RULES) + ("oos_trades",)


def grade(report: dict) -> tuple[str, list[str]]:
    """Letter grade A–F of a walk-forward report, with the reasons for every failure.

    Parameters
    ----------
    report : dict
        Must hold the floats ``dsr``, ``mc_pvalue``, ``consistency`` (fractions 0..1),
        ``oos_is_ratio``, ``stability`` (fraction 0..1), ``oos_max_drawdown``
        (fraction), ``oos_sharpe`` (annualised) and ``oos_trades`` (count). Extra keys
        are ignored; ``transfer_ratio``, when present, is rule 8.

    Returns
    -------
    letter : str
        ``"A"`` … ``"D"`` or ``"F"`` per the table of the module docstring.
    reasons : list of str
        One line per failed rule (naming its number, key, value and threshold), then
        one per hard fail, then the count line if too few rules passed; empty for A.
    """
    missing = [k for k in REPORT_KEYS if k not in report]
    if missing:
        raise ValueError(f"report is missing {missing}")
    reasons: list[str] = []
    passed = 0
    rules = GRADE_RULES + ((TRANSFER_RULE,) if "transfer_ratio" in report else ())
    for rule in rules:
        value = float(report[rule.key])
        if rule.passes(value):
            passed += 1
        else:
            reasons.append(
                f"rule {rule.number} ({rule.meaning}): {rule.key} = {value:.4g}, "
                f"needs {rule.op} {rule.threshold:g}"
            )
    hard = False
    for rule in HARD_FAILS:
        value = float(report[rule.key])
        if not rule.passes(value):
            hard = True
            reasons.append(
                f"hard fail ({rule.meaning}): {rule.key} = {value:.4g}, "
                f"needs {rule.op} {rule.threshold:g}"
            )
    failed = len(rules) - passed
    letter = "F" if hard else LETTERS.get(failed, "F")
    if failed > max(LETTERS):
        reasons.append(f"only {passed} of {len(rules)} rules passed "
                       f"(F below {len(rules) - max(LETTERS)})")
    return letter, reasons


def window_score(net_pnl_return, max_drawdown, trades, sharpe, min_trades: int = 10):
    """Score used to pick the best combination of an in-sample window (vectorised).

    With ``f = min(1, trades / min_trades)``::

        base  = sharpe · sqrt(f)   if sharpe > 0
                sharpe / sqrt(f)   otherwise
        score = base − 5 · max(0, max_drawdown − 0.25)

    so few trades shrink a positive Sharpe and amplify a negative one (never better),
    and each 10 % of drawdown beyond 25 % costs half a Sharpe point. ``-inf`` when
    ``trades <= 0`` or any input is not finite. House rule, no external source.

    Parameters
    ----------
    net_pnl_return : float or array_like
        Net PnL of the window as a fraction of the starting equity; only checked for
        finiteness (the Sharpe already carries its sign).
    max_drawdown : float or array_like
        Max drawdown of the window as a positive fraction.
    trades : int or array_like
        Number of closed trades.
    sharpe : float or array_like
        Annualised Sharpe ratio of the window.
    min_trades : int
        Trades needed for no penalty (> 0).

    Returns
    -------
    float or np.ndarray
        The broadcast shape of the inputs; a float when every input is a scalar.
    """
    if not min_trades > 0:
        raise ValueError(f"min_trades must be > 0, got {min_trades!r}")
    pnl, dd, n, sr = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (net_pnl_return, max_drawdown, trades, sharpe))
    )
    ok = (n > 0) & np.isfinite(pnl) & np.isfinite(dd) & np.isfinite(sr) & np.isfinite(n)
    root = np.sqrt(np.minimum(1.0, np.where(ok, n, 1.0) / min_trades))
    base = np.where(sr > 0, sr * root, sr / root)
    score = np.where(ok, base - 5.0 * np.maximum(0.0, dd - 0.25), -np.inf)
    if score.ndim == 0:
        return float(score)
    return score
