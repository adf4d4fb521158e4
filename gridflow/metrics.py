"""Performance metrics of an equity curve: the one definition of each (numpy + math only).

The replay report (:mod:`gridflow.control.report`), the sweep
(:mod:`gridflow.sweep.metrics`) and the walk-forward (:mod:`gridflow.wfo.stats`) all call
these functions; none computes a metric on its own.

Units. Equity is in quote currency, timestamps are ms UTC (int64), returns, drawdowns and
total returns are *fractions* (``0.01`` = 1 %), ``days`` are days (float), Sharpe,
Sortino and Calmar ratios are unit-free. Nothing here returns a percent.

=================  =========================================================================
metric             definition
=================  =========================================================================
simple returns     ``r_i = E_i / E_{i-1} - 1`` of consecutive samples; with a *base* (the equity
                   before the first sample: the capital at the start of the window) the first
                   return is ``E_0 / base - 1``, so the returns span the same window as the net
                   PnL ``E_last - base`` (:func:`simple_returns`)
daily returns      the simple returns of the equity at the last point of each UTC day
                   (:func:`gridflow.timeframes.utc_day`), between consecutive days present
Sharpe             ``mean(r) / std(r, ddof=1) * sqrt(P)``, zero risk-free rate (Sharpe 1966,
                   "Mutual Fund Performance"; square-root-of-time scaling, Sharpe 1994,
                   "The Sharpe Ratio"); ``P`` periods per year: 365 for daily returns
                   (crypto trades every day), 1 for the per-period ratio
Sortino            ``mean(r) / sqrt(mean(min(r, 0)²)) * sqrt(P)``: target return 0, downside
                   deviation over all n periods (Sortino & Price 1994, "Performance
                   Measurement in a Downside Risk Framework", J. of Investing 3(3))
max drawdown       ``max_t (1 - E_t / max_{s<=t} E_s)``, a positive fraction of the running
                   peak (Magdon-Ismail & Atiya 2004, "Maximum Drawdown"); above 1 only if
                   the equity falls below zero
annualised return  ``max(1 + total_return, 0) ** (365 / days) - 1`` (geometric; the CAGR)
exposure           share of a window ``[start, end)`` covered by the union of the intervals
                   ``[open, close)`` in which a position is open (:func:`exposure`)
Calmar             annualised return / max drawdown (Young 1991, "Calmar Ratio: A Smoother
                   Tool", Futures 20(1))
=================  =========================================================================

Same equity, same window. A ratio of returns and a net PnL agree in sign only when both
come from one curve over one window: pass the window's starting equity as ``base``. Then a
net PnL > 0 implies a mean return > 0 (the arithmetic mean of ``1 + r`` is at least their
geometric mean, ``(E_last / base) ** (1 / n)``), so a Sharpe < 0 comes with a loss. The
converse does not hold: volatility drag lets a small positive Sharpe (mean return below
about half the return variance) come with a loss. The sweep kernel's accumulated Sharpe
(:mod:`gridflow.sweep.metrics`) starts at the first day's close, without a base: it leaves
out the first day's change.

Two forms of Sharpe and Sortino: from returns (:func:`sharpe`, :func:`sortino`, two-pass
mean and variance, vectorised over leading axes) and from running sums
(:func:`sharpe_from_moments`, :func:`sortino_from_moments`: ``n``, ``Σr``, ``Σr²``,
``Σmin(r, 0)²``, as the sweep kernel accumulates them, vectorised over combinations).
Both end in the same private function, so the edge-case rule below is applied once.

The edge-case rule (one for every metric)
-----------------------------------------
A metric the data do not define is **NaN**, never 0.0 or inf as a stand-in:

1. fewer than 2 returns: Sharpe and Sortino are NaN;
2. a zero denominator is NaN: Sharpe when the sample variance is at most
   :data:`VAR_RTOL` x ``mean(r²)`` (identical returns, whose variance rounding may leave
   a little above 0), Sortino when no return is negative, Calmar when the max drawdown
   is 0 (or NaN);
3. an empty curve has no drawdown (NaN); one point has drawdown 0.0; a curve whose first
   value is not > 0, or that holds a NaN / inf, has NaN drawdown;
4. a daily return whose base equity is not > 0 or not finite is NaN, so any ratio over it
   is NaN (NaN / inf inputs give NaN results throughout);
5. an annualised return (and Calmar) over ``days <= 0`` is NaN; for very short periods
   the power may overflow to inf, which is passed on.

``ValueError`` is raised only for misuse, never for data: arrays of the wrong shape or of
mismatched lengths, timestamps that go backwards, ``periods_per_year <= 0``.
"""

from __future__ import annotations

import math

import numpy as np

from gridflow.timeframes import DAY_MS, utc_day

ANNUAL_DAYS = 365.0
"""Days (daily periods) per year: crypto trades every day."""

"""One UTC day in ms."""

VAR_RTOL = 1e-12
"""A sample variance at most ``VAR_RTOL * mean(r²)`` counts as zero (standard deviation
below 1e-6 of the root-mean-square return: a difference of rounding, not of returns)."""

_ERR = {"divide": "ignore", "invalid": "ignore", "over": "ignore"}


def _out(x):
    """A 0-d result as a Python float, anything else as a float64 array."""
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


def _check_ppy(periods_per_year: float) -> float:
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year!r}")
    return math.sqrt(periods_per_year)


def _returns(returns) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim == 0:
        raise ValueError("returns must have at least one axis (periods on the last)")
    return r


# ------------------------------------------------------------------ the rule, once


def _ratio(n, mean, den_sq, zero, root_ppy: float) -> np.ndarray:
    """``mean / sqrt(den_sq) * root_ppy`` where defined, else NaN: rules 1, 2 and 4 for
    Sharpe (``den_sq`` the variance, ``zero = VAR_RTOL * mean(r²)``) and Sortino
    (``den_sq`` the mean squared negative return, ``zero = 0``)."""
    with np.errstate(**_ERR):
        ok = (n >= 2) & np.isfinite(mean) & np.isfinite(den_sq) & (den_sq > zero)
        return np.where(ok, mean / np.sqrt(np.where(ok, den_sq, 1.0)) * root_ppy, np.nan)


# ------------------------------------------------------------------ from returns


def _from_returns(returns, periods_per_year: float, downside: bool):
    """Sharpe (``downside=False``) or Sortino of returns (..., n): two-pass moments."""
    root = _check_ppy(periods_per_year)
    r = _returns(returns)
    n = r.shape[-1]
    if n < 2:
        return _out(np.full(r.shape[:-1], np.nan))
    with np.errstate(**_ERR):
        mean = r.mean(axis=-1)
        if downside:
            down = np.minimum(r, 0.0)
            return _out(_ratio(n, mean, np.mean(down * down, axis=-1), 0.0, root))
        var = r.var(axis=-1, ddof=1)
        return _out(_ratio(n, mean, var, VAR_RTOL * np.mean(r * r, axis=-1), root))


def sharpe(returns, periods_per_year: float = ANNUAL_DAYS):
    """Sharpe ratio of simple returns, ``mean / std(ddof=1) * sqrt(periods_per_year)``.

    Parameters
    ----------
    returns : array_like, shape (..., n)
        Simple returns per period as fractions, periods on the last axis.
    periods_per_year : float
        365 (default) for daily returns, 1 for the per-period (not annualised) ratio.

    Returns
    -------
    float or np.ndarray of float64, shape (...)
        NaN where the module's edge-case rule says so (n < 2, zero variance, NaN / inf).

    Raises
    ------
    ValueError
        If ``returns`` is a scalar or ``periods_per_year <= 0``.
    """
    return _from_returns(returns, periods_per_year, downside=False)


def sortino(returns, periods_per_year: float = ANNUAL_DAYS):
    """Sortino ratio (target 0) of simple returns, ``mean / sqrt(mean(min(r, 0)²)) * sqrt(P)``.

    Takes ``returns`` (shape (..., n), fractions) and ``periods_per_year`` as
    :func:`sharpe` and raises as it does; returns a float or an array of shape (...),
    NaN with n < 2, without a negative return, or over NaN / inf.
    """
    return _from_returns(returns, periods_per_year, downside=True)


# ------------------------------------------------------------------ from running sums


def sharpe_from_moments(n, sum_r, sum_r2, periods_per_year: float = ANNUAL_DAYS):
    """:func:`sharpe` from running sums: ``mean = Σr / n``,
    ``var = (Σr² - Σr · mean) / (n - 1)``.

    Parameters
    ----------
    n, sum_r, sum_r2 : array_like, broadcastable, shape (C,) or scalar
        Number of returns, their sum and their sum of squares (returns as fractions).
    periods_per_year : float
        365 (default) for daily returns.

    Returns
    -------
    float or np.ndarray of float64, shape (C,)
        Same rule as :func:`sharpe`; equal to it up to rounding (the one-pass variance
        loses digits when the mean is much larger than the standard deviation).

    Raises
    ------
    ValueError
        If ``periods_per_year <= 0``.
    """
    root = _check_ppy(periods_per_year)
    n, s1, s2 = (np.asarray(v, dtype=np.float64) for v in (n, sum_r, sum_r2))
    with np.errstate(**_ERR):
        mean = s1 / n
        var = (s2 - s1 * mean) / (n - 1.0)
        return _out(_ratio(n, mean, var, VAR_RTOL * s2 / n, root))


def sortino_from_moments(n, sum_r, sum_down2, periods_per_year: float = ANNUAL_DAYS):
    """:func:`sortino` from running sums: ``mean = Σr / n``, downside ``Σmin(r, 0)² / n``.

    ``n``, ``sum_r`` and ``sum_down2`` (the sum of squares of the negative returns) are
    broadcastable arrays of shape (C,) or scalars, as in :func:`sharpe_from_moments`,
    which it also follows for ``periods_per_year``, the result and the ``ValueError``.
    """
    root = _check_ppy(periods_per_year)
    n, s1, d2 = (np.asarray(v, dtype=np.float64) for v in (n, sum_r, sum_down2))
    with np.errstate(**_ERR):
        return _out(_ratio(n, s1 / n, d2 / n, 0.0, root))


# ------------------------------------------------------------------ curves


def _curve(equity) -> np.ndarray:
    """``equity`` as a float64 array, refused unless 1-D (``ValueError``)."""
    e = np.asarray(equity, dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"equity must be 1-D, got shape {e.shape}")
    return e


def simple_returns(equity, base: float | None = None) -> np.ndarray:
    """Simple returns of consecutive samples, ``E_i / E_{i-1} - 1``.

    Parameters
    ----------
    equity : array_like, shape (n,)
        Equity in quote currency (one sample per period), oldest first.
    base : float, optional
        The equity before the first sample (the capital at the start of the window):
        the first return is then ``E_0 / base - 1``.

    Returns
    -------
    np.ndarray of float64, shape (n - 1,), or (n,) with ``base``
        Fractions; NaN where the previous equity is not > 0 or either is not finite
        (rule 4).

    Raises
    ------
    ValueError
        If ``equity`` is not 1-D.
    """
    eq = _curve(equity)
    if base is not None:
        eq = np.concatenate(([float(base)], eq))
    prev, cur = eq[:-1], eq[1:]
    ok = np.isfinite(prev) & np.isfinite(cur) & (prev > 0)
    with np.errstate(**_ERR):
        return np.where(ok, cur / np.where(ok, prev, 1.0) - 1.0, np.nan)


def daily_returns(ts_ms, equity, base: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Daily simple returns of an equity curve sampled at its last point of each UTC day.

    Parameters
    ----------
    ts_ms : array_like of int, shape (n,)
        Sample times in ms UTC, non-decreasing.
    equity : array_like, shape (n,)
        Equity in quote currency at those times.
    base : float, optional
        The equity at the start of the window, before the first sample (the initial
        capital): the first day's return is measured from it (:func:`simple_returns`),
        so the returns cover the window of the net PnL ``E_last - base``.

    Returns
    -------
    day_ts_ms : np.ndarray of int64, shape (d - 1,), or (d,) with ``base``
        Midnight (ms UTC) of the day whose closing equity ends each return; d is the
        number of distinct UTC days (a day without a sample is skipped, not filled).
    returns : np.ndarray of float64, same shape
        ``E_day / E_previous_day - 1`` as fractions; NaN where the previous day's equity
        is not > 0 or either is not finite (rule 4). Without ``base``, empty for fewer
        than two days.

    Raises
    ------
    ValueError
        If the arrays are not 1-D of equal length or ``ts_ms`` decreases.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != eq.shape:
        raise ValueError(f"ts_ms {ts.shape} and equity {eq.shape} must be 1-D, same length")
    if ts.size and np.any(np.diff(ts) < 0):
        raise ValueError("ts_ms must be non-decreasing")
    day = utc_day(ts)
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True)) if ts.size else ts[:0]
    days = day[last] * DAY_MS
    return (days if base is not None else days[1:]), simple_returns(eq[last], base)


def daily_sharpe(ts_ms, equity, base: float | None = None) -> float:
    """Annualised Sharpe (``sqrt(365)``) of :func:`daily_returns` of a curve.

    Parameters
    ----------
    ts_ms : array_like of int, shape (n,)
        Sample times in ms UTC, non-decreasing.
    equity : array_like, shape (n,)
        Equity in quote currency.
    base : float, optional
        The equity at the start of the window (see :func:`daily_returns`).

    Returns
    -------
    float
        NaN with fewer than 2 daily returns and as the rule says.

    Raises
    ------
    ValueError
        As :func:`daily_returns`.
    """
    return sharpe(daily_returns(ts_ms, equity, base)[1], ANNUAL_DAYS)


def exposure(open_ms, close_ms, start_ms: int, end_ms: int) -> float:
    """Share of the window ``[start_ms, end_ms)`` in which a position is open.

    Parameters
    ----------
    open_ms, close_ms : array_like of int, shape (k,)
        Each position's open and close times (ms UTC; journal trades are stamped with
        candle open times, so a position is open at the closes of the candles
        ``open .. close - 1``: the share equals the sweep's share of candle closes in
        a position when the candles are contiguous). Overlapping intervals (several
        symbols) count once.
    start_ms, end_ms : int
        The window (ms UTC); intervals are clipped to it.

    Returns
    -------
    float
        Fraction in [0, 1]; NaN when ``end_ms <= start_ms`` (rule 5).

    Raises
    ------
    ValueError
        If the arrays differ in shape or an interval closes before it opens.
    """
    lo = np.asarray(open_ms, dtype=np.int64)
    hi = np.asarray(close_ms, dtype=np.int64)
    if lo.shape != hi.shape or lo.ndim != 1:
        raise ValueError(f"open_ms {lo.shape} and close_ms {hi.shape} must be 1-D, same length")
    if np.any(hi < lo):
        raise ValueError("an interval closes before it opens (close_ms < open_ms)")
    if end_ms <= start_ms:
        return math.nan
    lo, hi = np.clip(lo, start_ms, end_ms), np.clip(hi, start_ms, end_ms)
    order = np.argsort(lo, kind="stable")
    covered, reach = 0, start_ms
    for a, b in zip(lo[order].tolist(), hi[order].tolist()):
        a = max(a, reach)
        if b > a:
            covered += b - a
            reach = b
    return covered / (end_ms - start_ms)


def drawdown(equity) -> np.ndarray:
    """Drawdown at every point, ``1 - E_t / max_{s<=t} E_s`` (fractions >= 0).

    Parameters
    ----------
    equity : array_like, shape (n,)
        Equity in quote currency (or prices), oldest first.

    Returns
    -------
    np.ndarray of float64, shape (n,)
        All NaN if the first value is not > 0 or any value is NaN / inf (rule 3).

    Raises
    ------
    ValueError
        If ``equity`` is not 1-D.
    """
    e = _curve(equity)
    if e.size and not (e[0] > 0 and np.all(np.isfinite(e))):
        return np.full(e.shape, np.nan)
    return 1.0 - e / np.maximum.accumulate(e)


def worst_drawdown(equity) -> tuple[float, int, int]:
    """Deepest peak-to-trough fall of ``equity`` (1-D, as :func:`drawdown`, which raises
    the same ``ValueError``), with its peak and trough indices.

    Returns
    -------
    depth : float
        :func:`max_drawdown`, a positive fraction of the peak.
    peak, trough : int
        Indices of the worst fall: the trough is the first index reaching ``depth``,
        the peak the latest index before it holding the running maximum (the shortest
        span). ``(0.0, 0, 0)`` if never below a previous peak; ``(nan, -1, -1)`` when
        the drawdown is undefined (rule 3).
    """
    dd = drawdown(equity)
    if dd.size == 0 or np.isnan(dd[0]):
        return math.nan, -1, -1
    trough = int(np.argmax(dd))
    if dd[trough] <= 0.0:
        return 0.0, 0, 0
    e = np.asarray(equity, dtype=np.float64)
    at_peak = np.flatnonzero(e[: trough + 1] == e[: trough + 1].max())
    return float(dd[trough]), int(at_peak[-1]), trough


def max_drawdown(equity) -> float:
    """Largest fall from the running peak, ``max_t (1 - E_t / max_{s<=t} E_s)``.

    Parameters
    ----------
    equity : array_like, shape (n,)
        Equity in quote currency, oldest first.

    Returns
    -------
    float
        Positive fraction of the peak (not percent); 0.0 for a never-falling curve or
        one point; NaN for an empty or invalid curve (rule 3).

    Raises
    ------
    ValueError
        If ``equity`` is not 1-D.
    """
    dd = drawdown(equity)
    return float(dd.max()) if dd.size else math.nan


def annualised_return(total_return, days):
    """Geometric annual return ``max(1 + total_return, 0) ** (365 / days) - 1``.

    Parameters
    ----------
    total_return : array_like, shape (C,) or scalar
        Return over the period as a fraction (-1 = everything lost).
    days : array_like, broadcastable with ``total_return``
        Length of the period in days.

    Returns
    -------
    float or np.ndarray of float64
        Fraction per year; NaN where ``days <= 0`` or an input is NaN (rule 5).
    """
    tr, d = np.asarray(total_return, np.float64), np.asarray(days, np.float64)
    with np.errstate(**_ERR):
        growth = np.maximum(1.0 + tr, 0.0)
        ok = d > 0
        return _out(np.where(ok, growth ** (ANNUAL_DAYS / np.where(ok, d, 1.0)) - 1.0, np.nan))


def calmar(total_return, days, max_dd):
    """Calmar ratio: :func:`annualised_return` over the max drawdown (Young 1991).

    Parameters
    ----------
    total_return : array_like, shape (C,) or scalar
        Return over the period as a fraction.
    days : array_like
        Length of the period in days.
    max_dd : array_like
        Max drawdown over the period as a positive fraction (:func:`max_drawdown`).

    Returns
    -------
    float or np.ndarray of float64
        NaN where ``max_dd`` is 0 or NaN, or ``days <= 0`` (rules 2 and 5).
    """
    annual = np.asarray(annualised_return(total_return, days), np.float64)
    dd = np.asarray(max_dd, np.float64)
    with np.errstate(**_ERR):
        ok = dd > 0
        return _out(np.where(ok, annual / np.where(ok, dd, 1.0), np.nan))
