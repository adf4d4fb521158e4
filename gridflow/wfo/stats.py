"""Sharpe-ratio statistics of a walk-forward validation (numpy + standard library only).

Conventions: returns are simple per-period returns as fractions (``0.01`` = +1 %),
Sharpe ratios are per period (not annualised) unless the name says otherwise, equity
is in quote currency and timestamps are ms UTC (int64). Moments called ``skew`` and
``kurtosis`` are *population* (biased, divide-by-n) moments and the kurtosis is the
plain one (normal = 3), as in Bailey & López de Prado.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
"""Euler–Mascheroni constant used by :func:`expected_max_sharpe`."""

DAY_MS = 86_400_000
_N01 = NormalDist()
_CHUNK_ELEMS = 1 << 22  # bootstrap rows are evaluated in chunks of about this many values


def _as_1d(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def sharpe_ratio(returns) -> float:
    """Per-period Sharpe ratio ``mean / std`` (zero risk-free rate).

    Parameters
    ----------
    returns : array_like, shape (n,)
        Simple returns per period as fractions.

    Returns
    -------
    float
        ``mean(r) / std(r, ddof=1)`` (Sharpe 1966, "Mutual Fund Performance"), not
        annualised; NaN when ``n < 2`` or the standard deviation is 0 (all values
        equal, which rounding may hide from ``std``).
    """
    r = _as_1d(returns, "returns")
    if r.size < 2:
        return math.nan
    sd = float(np.std(r, ddof=1))
    if sd == 0.0 or not math.isfinite(sd) or np.ptp(r) == 0.0:
        return math.nan
    return float(np.mean(r)) / sd


def annualised_sharpe(returns, periods_per_year: float) -> float:
    """Annualised Sharpe ratio ``sharpe_ratio(returns) * sqrt(periods_per_year)``.

    Parameters
    ----------
    returns : array_like, shape (n,)
        Simple returns per period as fractions.
    periods_per_year : float
        Periods in a year (365 for daily crypto returns, 8760 for hourly).

    Returns
    -------
    float
        Square-root-of-time scaling of the per-period Sharpe (Sharpe 1994, "The
        Sharpe Ratio"; exact only for i.i.d. returns); NaN as :func:`sharpe_ratio`.
    """
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year!r}")
    return sharpe_ratio(returns) * math.sqrt(periods_per_year)


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """Probability that the true Sharpe ratio exceeds ``sr_benchmark``.

    ``PSR = Φ((SR − SR*)·sqrt(T − 1) / sqrt(1 − γ3·SR + (γ4 − 1)/4·SR²))``, Bailey &
    López de Prado (2012), "The Sharpe Ratio Efficient Frontier", J. of Risk 15(2), eq. 2.

    Parameters
    ----------
    sr, sr_benchmark : float
        Observed and benchmark Sharpe ratios, both per period (not annualised).
    n_obs : int
        Number of returns T behind ``sr``.
    skew : float
        Skewness γ3 of the returns.
    kurtosis : float
        Plain (non-excess) kurtosis γ4 of the returns; 3 for a normal distribution.

    Returns
    -------
    float
        PSR in [0, 1]; NaN if an input is not finite, ``n_obs < 2`` or the variance
        term under the square root is not positive.
    """
    vals = (sr, sr_benchmark, skew, kurtosis)
    if not all(math.isfinite(v) for v in vals) or n_obs < 2:
        return math.nan
    var_term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not var_term > 0.0:
        return math.nan
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var_term)
    return _N01.cdf(z)


def expected_max_sharpe(sr_variance: float, n_trials: int) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` skill-less trials.

    ``SR0 = sqrt(V)·((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)))`` with γ the
    Euler–Mascheroni constant; Bailey & López de Prado (2014), "The Deflated Sharpe
    Ratio", J. of Portfolio Management 40(5), eq. for E[max SR_n] (the SR0 of the DSR).

    Parameters
    ----------
    sr_variance : float
        Variance V of the trials' Sharpe ratios (per-period Sharpe squared units).
    n_trials : int
        Number of independent trials N (>= 1).

    Returns
    -------
    float
        SR0 in per-period Sharpe units; 0.0 when ``n_trials == 1``; NaN if
        ``sr_variance`` is NaN.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials!r}")
    if math.isnan(sr_variance):
        return math.nan
    if sr_variance < 0:
        raise ValueError(f"sr_variance must be >= 0, got {sr_variance!r}")
    if n_trials == 1:
        return 0.0
    a = _N01.inv_cdf(1.0 - 1.0 / n_trials)
    b = _N01.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * a + EULER_GAMMA * b)


@dataclass(frozen=True, slots=True)
class DsrResult:
    """Deflated Sharpe ratio and its ingredients.

    Attributes
    ----------
    dsr : float
        PSR of ``sr`` against ``sr0``, in [0, 1] (NaN if undefined).
    sr, sr0 : float
        Observed per-period Sharpe ratio and the expected maximum of the trials.
    n_trials, n_obs : int
        Finite trials N and number of returns T.
    skew, kurtosis : float
        Population skewness and plain (non-excess) kurtosis of the returns.
    """

    dsr: float
    sr: float
    sr0: float
    n_trials: int
    n_obs: int
    skew: float
    kurtosis: float


def _population_moments(r: np.ndarray) -> tuple[float, float]:
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    if m2 == 0.0 or np.ptp(r) == 0.0:
        return math.nan, math.nan
    return float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2


def deflated_sharpe_ratio(returns, trial_sharpes) -> DsrResult:
    """Deflated Sharpe ratio (Bailey & López de Prado 2014, "The Deflated Sharpe Ratio").

    ``DSR = PSR(SR, SR0)`` where SR is the per-period Sharpe of ``returns`` (ddof=1
    std), ``SR0 = expected_max_sharpe(var(trial_sharpes, ddof=1), N)`` and the skew
    γ3 = m3/m2^1.5 and kurtosis γ4 = m4/m2² use population central moments
    ``m_k = mean((r − mean r)^k)`` (biased estimators).

    Parameters
    ----------
    returns : array_like, shape (T,)
        Simple returns per period (fractions) of the selected strategy, T >= 3.
    trial_sharpes : array_like, shape (K,)
        Per-period Sharpe of every combination tried (including the selected one);
        NaN / inf entries are ignored, the remaining count is N (>= 1).

    Returns
    -------
    DsrResult
        ``dsr`` is NaN if the returns are constant.
    """
    r = _as_1d(returns, "returns")
    if r.size < 3:
        raise ValueError(f"deflated_sharpe_ratio needs at least 3 returns, got {r.size}")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns contain NaN or inf")
    trials = _as_1d(trial_sharpes, "trial_sharpes")
    trials = trials[np.isfinite(trials)]
    n_trials = int(trials.size)
    if n_trials == 0:
        raise ValueError("trial_sharpes holds no finite Sharpe ratio (need at least 1 trial)")
    var = float(np.var(trials, ddof=1)) if n_trials > 1 else 0.0
    sr0 = expected_max_sharpe(var, n_trials)
    sr = sharpe_ratio(r)
    skew, kurt = _population_moments(r)
    dsr = probabilistic_sharpe_ratio(sr, sr0, int(r.size), skew, kurt)
    return DsrResult(dsr, sr, sr0, n_trials, int(r.size), skew, kurt)


def _row_sharpe(x: np.ndarray) -> np.ndarray:
    """Per-row mean/std(ddof=1); a constant row gives +inf, -inf or 0 by its sign."""
    m = x.mean(axis=-1)
    sd = x.std(axis=-1, ddof=1)
    pos = (np.ptp(x, axis=-1) > 0) & (sd > 0)
    first = x[..., 0]
    out = np.where(first > 0, np.inf, np.where(first < 0, -np.inf, 0.0))
    return np.where(pos, m / np.where(pos, sd, 1.0), out)


def block_bootstrap_pvalue(returns, block: int | None = None, n_boot: int = 2000,
                           seed: int = 0) -> float:
    """Circular-block-bootstrap p-value of H0 "no edge" (mean return 0).

    Circular block bootstrap of Politis & Romano (1992), "A Circular Block-Resampling
    Procedure for Stationary Data"; default block length ``n^(1/3)`` (Hall, Horowitz &
    Jing 1995). Steps, exactly (a test can replay them):

    1. ``x = r − mean(r)`` (imposes H0; all zeros if ``r`` is constant);
       ``observed = mean(r) / std(r, ddof=1)``.
    2. ``rng = np.random.default_rng(seed)``; ``k = ceil(n / block)``; the only draw is
       ``starts = rng.integers(0, n, size=(n_boot, k))``.
    3. Resample ``b`` is ``x[(starts[b, j] + i) % n]`` for ``j = 0..k-1``, ``i =
       0..block-1`` in that order (block by block), truncated to its first ``n`` values.
    4. ``stat_b = mean / std(ddof=1)`` of resample ``b`` (a constant resample gives
       ±inf by the sign of its value, 0 if zero; same rule for ``observed``).
    5. ``p = (1 + #{stat_b >= observed}) / (1 + n_boot)`` (Davison & Hinkley 1997,
       "Bootstrap Methods and their Application", eq. 4.11).

    Parameters
    ----------
    returns : array_like, shape (n,)
        Finite simple returns per period (fractions), n >= 3.
    block : int, optional
        Block length in periods (>= 1); default ``max(1, round(n ** (1/3)))``.
    n_boot : int
        Number of resamples (>= 1).
    seed : int
        Seed of ``np.random.default_rng``; the result is deterministic per seed.

    Returns
    -------
    float
        One-sided p-value in ``(0, 1]``; small values reject "no edge".
    """
    r = _as_1d(returns, "returns")
    n = int(r.size)
    if n < 3:
        raise ValueError(f"block_bootstrap_pvalue needs at least 3 returns, got {n}")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns contain NaN or inf")
    if block is None:
        block = max(1, round(n ** (1.0 / 3.0)))
    if int(block) != block or block < 1:
        raise ValueError(f"block must be a positive integer, got {block!r}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    block, n_boot = int(block), int(n_boot)
    observed = float(_row_sharpe(r))
    x = r - r.mean() if np.ptp(r) > 0 else np.zeros(n)
    k = -(-n // block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(n_boot, k))
    offsets = np.arange(block)
    rows = max(1, _CHUNK_ELEMS // (k * block))
    hits = 0
    for lo in range(0, n_boot, rows):
        s = starts[lo : lo + rows]
        idx = ((s[:, :, None] + offsets) % n).reshape(s.shape[0], k * block)[:, :n]
        hits += int(np.count_nonzero(_row_sharpe(x[idx]) >= observed))
    return (1 + hits) / (1 + n_boot)


def worst_drawdown(values) -> tuple[float, int, int]:
    """Deepest peak-to-trough fall of a positive series, with its peak and trough.

    Parameters
    ----------
    values : array_like, shape (n,)
        Positive equity (quote currency) or prices, oldest first, n >= 1.

    Returns
    -------
    depth : float
        ``max_t (1 − v_t / max_{s<=t} v_s)`` as a positive fraction of the peak.
    peak, trough : int
        Indices of the worst fall: the trough is the first index reaching ``depth``,
        the peak the latest index before it holding the running maximum (so the
        span ``trough − peak`` is the shortest one). ``(0.0, 0, 0)`` if never below
        a previous peak.
    """
    v = _as_1d(values, "values")
    if v.size == 0:
        raise ValueError("values is empty")
    if not np.all(np.isfinite(v)) or np.any(v < 0) or v[0] <= 0:
        raise ValueError("values must be finite, >= 0 and start > 0")
    run_max = np.maximum.accumulate(v)
    dd = 1.0 - v / run_max
    trough = int(np.argmax(dd))
    if dd[trough] <= 0.0:
        return 0.0, 0, 0
    at_peak = np.flatnonzero(v[: trough + 1] == run_max[trough])
    return float(dd[trough]), int(at_peak[-1]), trough


def max_drawdown(equity) -> float:
    """Largest peak-to-trough fall of an equity curve as a positive fraction of the peak.

    Parameters
    ----------
    equity : array_like, shape (n,)
        Equity in quote currency, oldest first, finite, >= 0, first value > 0.

    Returns
    -------
    float
        ``max_t (1 − E_t / max_{s<=t} E_s)`` in [0, 1] (standard definition, e.g.
        Magdon-Ismail & Atiya 2004, "Maximum Drawdown"); 0.0 for a rising curve.
    """
    return worst_drawdown(equity)[0]


def daily_returns(ts_ms, equity) -> tuple[np.ndarray, np.ndarray]:
    """Daily simple returns of an equity curve sampled at the last point of each UTC day.

    Parameters
    ----------
    ts_ms : array_like of int, shape (n,)
        Sample times in ms UTC, non-decreasing.
    equity : array_like, shape (n,)
        Equity in quote currency at those times.

    Returns
    -------
    day_ts_ms : np.ndarray of int64, shape (d − 1,)
        Midnight (ms UTC) of the day whose closing equity ends each return; d is the
        number of distinct UTC days.
    returns : np.ndarray of float64, shape (d − 1,)
        ``E_day / E_previous_day − 1`` between consecutive days present in the data.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    eq = _as_1d(equity, "equity")
    if ts.ndim != 1 or ts.shape != eq.shape:
        raise ValueError(f"ts_ms {ts.shape} and equity {eq.shape} must be 1-D, same length")
    if ts.size and np.any(np.diff(ts) < 0):
        raise ValueError("ts_ms must be non-decreasing")
    day = ts // DAY_MS
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True)) if ts.size else ts[:0]
    closes = eq[last]
    if not np.all(np.isfinite(closes)) or np.any(closes[:-1] <= 0):
        raise ValueError("daily equity must be finite and > 0 (except the last day)")
    return day[last][1:] * DAY_MS, closes[1:] / closes[:-1] - 1.0
