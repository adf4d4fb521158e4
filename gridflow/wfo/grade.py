"""The walk-forward report's grade (a 100-point score and its letter) and the score that
picks the best combination of an in-sample window.

The grade is a weighted score out of 100, the roadmap's weights (issue 18): each
criterion earns its points on a straight ramp from ``zero`` (no point) to ``full`` (all
of them); a NaN earns none.

================  ======  ======  ======  =============================================
 key              points  zero    full    meaning
================  ======  ======  ======  =============================================
 ``oos_is_ratio``     20   0.0     1.0    mean OOS Sharpe / IS Sharpe (walk-forward
                                          efficiency; Pardo 2008's bar 0.5 = 10 points)
 ``mc_pvalue``        20   0.20    0.01   block-bootstrap p-value of "no edge"
 ``consistency``      20   0.4     0.8    share of OOS windows with positive net PnL
 ``dsr``              15   0.5     0.95   deflated Sharpe ratio (Bailey & López de
                                          Prado 2014; 0.95 = the 5 % level)
 ``stability``        10   0.3     0.8    share of ±10/20 % neighbours keeping ≥ 50 %
                                          of the score
 ``transfer_ratio``   15   0.0     1.0    live-venue Sharpe / research-venue Sharpe of
                                          the chosen parameters (:mod:`.transfer`);
                                          **0 points when not measured**, and said so
================  ======  ======  ======  =============================================

Caps (the score is lowered to the cap): fewer than 30 OOS trades, 60; fewer than 50, 80
(a figure from few trades is mostly noise); an OOS max drawdown above 30 %, 69 (a C at
best, whatever the statistics). Hard fails force F whatever the score: an OOS Sharpe
``<= 0`` and fewer than 10 OOS trades (a NaN counts as failing). Letter: A >= 85, B >= 70,
C >= 55, D >= 40, F below. The ramps' ends, the caps and the letter bounds are house
rules: the roadmap names the weights and the trade caps, not the curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Criterion:
    """One scored criterion of :func:`grade_score`: ``points`` earned on a straight ramp
    from ``zero`` (none) to ``full`` (all; ``full < zero`` when lower is better).

    Attributes
    ----------
    key : str
        Report key.
    points, zero, full : float
    meaning : str
    """

    key: str
    points: float
    zero: float
    full: float
    meaning: str

    def earned(self, value: float) -> float:
        """Points earned by ``value`` (0 for NaN)."""
        if math.isnan(value):
            return 0.0
        t = (value - self.zero) / (self.full - self.zero)
        return self.points * min(1.0, max(0.0, t))


@dataclass(frozen=True, slots=True)
class GradeRule:
    """A pass/fail check (a hard fail): ``report[key] <op> threshold`` passes.

    Attributes
    ----------
    number : int
        0 for a hard fail.
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


CRITERIA = (
    Criterion("oos_is_ratio", 20, 0.0, 1.0, "OOS Sharpe / IS Sharpe"),
    Criterion("mc_pvalue", 20, 0.20, 0.01, "block-bootstrap p-value of no edge"),
    Criterion("consistency", 20, 0.4, 0.8, "share of OOS windows with positive net PnL"),
    Criterion("dsr", 15, 0.5, 0.95, "deflated Sharpe ratio"),
    Criterion("stability", 10, 0.3, 0.8, "share of perturbed neighbours keeping the score"),
    Criterion("transfer_ratio", 15, 0.0, 1.0, "live-venue Sharpe / research-venue Sharpe"),
)
"""The scored criteria of :func:`grade_score`; their points add up to 100."""

TRADE_CAPS = ((30, 60.0), (50, 80.0))
"""``(fewer OOS trades than, most points)``, the tightest first."""
DRAWDOWN_CAP = (0.30, 69.0)
"""``(OOS max drawdown above, most points)``."""

HARD_FAILS = (
    GradeRule(0, "oos_sharpe", ">", 0.0, "annualised OOS Sharpe must be positive"),
    GradeRule(0, "oos_trades", ">=", 10, "at least 10 OOS trades"),
)
"""Checks whose failure forces grade F (``op`` here states the *passing* condition)."""

LETTER_FLOORS = (("A", 85.0), ("B", 70.0), ("C", 55.0), ("D", 40.0))
"""Letter by score: the first whose floor the score reaches; below the last, F."""

REPORT_KEYS = tuple(c.key for c in CRITERIA if c.key != "transfer_ratio") + (
    "oos_max_drawdown", "oos_sharpe", "oos_trades")


@dataclass(frozen=True, slots=True)
class GradeScore:
    """What :func:`grade_score` found.

    Attributes
    ----------
    score : float
        0..100 after the caps.
    points : dict[str, float]
        Points per criterion key (before the caps).
    letter : str
        ``"A"`` … ``"D"`` or ``"F"``.
    reasons : list of str
        A line per criterion short of its full points (value, points, where the points
        are full), per cap applied and per hard fail; empty for a perfect report.
    """

    score: float
    points: dict[str, float]
    letter: str
    reasons: list[str]


def _f(report: dict, key: str) -> float:
    v = report.get(key)
    return math.nan if v is None else float(v)


def grade_score(report: dict) -> GradeScore:
    """The weighted grade of a walk-forward report (table in the module docstring).

    Parameters
    ----------
    report : dict
        Must hold the floats ``dsr``, ``mc_pvalue``, ``consistency`` (fraction 0..1),
        ``oos_is_ratio``, ``stability`` (fraction 0..1), ``oos_max_drawdown``
        (fraction), ``oos_sharpe`` (annualised) and ``oos_trades`` (count); may hold
        ``transfer_ratio`` (absent: the transfer was not measured, 0 points). Extra keys
        are ignored.

    Raises
    ------
    ValueError
        A required key is missing.
    """
    missing = [k for k in REPORT_KEYS if k not in report]
    if missing:
        raise ValueError(f"report is missing {missing}")
    points: dict[str, float] = {}
    reasons: list[str] = []
    for c in CRITERIA:
        if c.key == "transfer_ratio" and c.key not in report:
            points[c.key] = 0.0
            reasons.append(f"{c.key}: not measured (no second venue's data): 0 / "
                           f"{c.points:g} points")
            continue
        value = _f(report, c.key)
        got = points[c.key] = c.earned(value)
        if got < c.points:
            best = "<=" if c.full < c.zero else ">="
            reasons.append(f"{c.key} ({c.meaning}) = {value:.4g}: {got:.1f} / {c.points:g} "
                           f"points (all at {best} {c.full:g}, none at {c.zero:g})")
    score = sum(points.values())
    trades, dd = _f(report, "oos_trades"), _f(report, "oos_max_drawdown")
    caps = [(cap, f"fewer than {n} OOS trades ({trades:g})") for n, cap in TRADE_CAPS
            if not trades >= n]
    if not dd <= DRAWDOWN_CAP[0]:
        caps.append((DRAWDOWN_CAP[1], f"OOS max drawdown {dd:.4g} above {DRAWDOWN_CAP[0]:g}"))
    for cap, why in caps:
        if score > cap:
            reasons.append(f"capped at {cap:g} points: {why} (was {score:.1f})")
            score = cap
    hard = False
    for rule in HARD_FAILS:
        value = _f(report, rule.key)
        if not rule.passes(value):
            hard = True
            reasons.append(f"hard fail ({rule.meaning}): {rule.key} = {value:.4g}, "
                           f"needs {rule.op} {rule.threshold:g}")
    letter = "F" if hard else next((lt for lt, floor in LETTER_FLOORS if score >= floor), "F")
    return GradeScore(round(score, 2), points, letter, reasons)


def grade(report: dict) -> tuple[str, list[str]]:
    """Letter grade A–F of a walk-forward report and the reasons it is not perfect
    (:func:`grade_score`'s letter and reasons).

    Raises
    ------
    ValueError
        A required key is missing.
    """
    g = grade_score(report)
    return g.letter, g.reasons


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
