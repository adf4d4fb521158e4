"""Sharpe-ratio statistics of a walk-forward validation (numpy, standard library and
:mod:`gridflow.metrics`).

The Sharpe ratio, drawdowns and daily returns are :mod:`gridflow.metrics`' (one
definition, one edge-case rule: undefined is NaN); this module adds what only a
validation needs: PSR / DSR and the block-bootstrap p-value.

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

from gridflow import metrics
from gridflow.metrics import DAY_MS, daily_returns, max_drawdown, worst_drawdown

__all__ = ["DAY_MS", "EULER_GAMMA", "DsrResult", "annualised_sharpe", "block_bootstrap_pvalue",
           "daily_returns", "deflated_sharpe_ratio", "expected_max_sharpe", "max_drawdown",
           "probabilistic_sharpe_ratio", "sharpe_ratio", "worst_drawdown"]

EULER_GAMMA = 0.5772156649015329
"""Euler–Mascheroni constant used by :func:`expected_max_sharpe`."""

_N01 = NormalDist()
_CHUNK_ELEMS = 1 << 22  # bootstrap rows are evaluated in chunks of about this many values


def _as_1d(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def sharpe_ratio(returns) -> float:
    """Per-period Sharpe ratio: :func:`gridflow.metrics.sharpe` with ``periods_per_year=1``.

    Parameters
    ----------
    returns : array_like, shape (n,)
        Simple returns per period as fractions.

    Returns
    -------
    float
        ``mean(r) / std(r, ddof=1)``, not annualised; NaN by the metrics rule (n < 2,
        zero variance, NaN / inf).
    """
    return metrics.sharpe(_as_1d(returns, "returns"), 1.0)


def annualised_sharpe(returns, periods_per_year: float) -> float:
    """Annualised Sharpe ratio: :func:`gridflow.metrics.sharpe` (``x sqrt(periods_per_year)``).

    Parameters
    ----------
    returns : array_like, shape (n,)
        Simple returns per period as fractions.
    periods_per_year : float
        Periods in a year (365 for daily crypto returns, 8760 for hourly).

    Returns
    -------
    float
        NaN as :func:`sharpe_ratio`.

    Raises
    ------
    ValueError
        If ``periods_per_year <= 0``.
    """
    return metrics.sharpe(_as_1d(returns, "returns"), periods_per_year)


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
    """Per-row (last axis) per-period Sharpe of finite rows with n >= 2; where the metrics
    rule gives NaN (zero variance) the bootstrap ranks the row +inf, -inf or 0 by the
    sign of its mean."""
    sr = np.asarray(metrics.sharpe(x, 1.0))
    m = x.mean(axis=-1)
    return np.where(np.isnan(sr), np.where(m > 0, np.inf, np.where(m < 0, -np.inf, 0.0)), sr)


def block_bootstrap_pvalue(returns, block: int | None = None, n_boot: int = 2000,
                           seed: int = 0) -> float:
    """Circular-block-bootstrap p-value of H0 "no edge" (mean return 0).

    Circular block bootstrap of Politis & Romano (1992), "A Circular Block-Resampling
    Procedure for Stationary Data"; default block length ``n^(1/3)`` (Hall, Horowitz &
    Jing 1995). Steps, exactly (a test can replay them):

    1. ``x = r − mean(r)`` (imposes H0; all zeros if ``r`` has zero variance);
       ``observed = mean(r) / std(r, ddof=1)``.
    2. ``rng = np.random.default_rng(seed)``; ``k = ceil(n / block)``; the only draw is
       ``starts = rng.integers(0, n, size=(n_boot, k))``.
    3. Resample ``b`` is ``x[(starts[b, j] + i) % n]`` for ``j = 0..k-1``, ``i =
       0..block-1`` in that order (block by block), truncated to its first ``n`` values.
    4. ``stat_b = mean / std(ddof=1)`` of resample ``b`` (a resample with zero
       variance by the :mod:`gridflow.metrics` rule gives ±inf by the sign of its mean,
       0 if zero; same rule for ``observed``).
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
    x = r - r.mean() if math.isfinite(observed) else np.zeros(n)
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
