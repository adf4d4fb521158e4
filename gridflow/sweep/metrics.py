"""Per-combination performance metrics from the sweep kernel's accumulators.

=======================  ==================================================================
metric                   definition
=======================  ==================================================================
net_pnl                  final equity (cash + open position marked at the last close)
                         minus the initial capital, quote currency
total_return             ``net_pnl / capital`` (fraction)
max_drawdown             largest fall of the close-marked equity from its running peak,
                         a positive fraction of that peak
sharpe                   mean / standard deviation (ddof 1) of daily returns x sqrt(365);
                         daily = equity at the last close of each UTC day (as the replay
                         report's ``daily_sharpe``); NaN with fewer than 2 returns
sortino                  mean daily return / sqrt(mean of squared negative daily returns)
                         x sqrt(365) (Sortino & Price 1994, target 0)
calmar                   annualised return ``(1 + total_return) ** (365 / days) - 1``
                         over ``max_drawdown`` (Young 1991); NaN without drawdown
profit_factor            gross profit / gross loss of closed round trips (inf with no
                         loss, 0 with neither)
win_rate                 share of round trips with net PnL > 0
trades                   closed round trips (net of fees and funding)
max_consecutive_losses   longest run of losing round trips
exposure                 share of candles closing with an open position
fees, funding            paid, quote currency (funding negative = received)
=======================  ==================================================================
"""

from __future__ import annotations

import numpy as np

from gridflow.sweep import kernel as sk

METRICS = ("net_pnl", "total_return", "max_drawdown", "sharpe", "sortino", "calmar",
           "profit_factor", "win_rate", "trades", "max_consecutive_losses", "exposure",
           "fees", "funding")
ANNUAL_DAYS = 365.0


def finalize(met: np.ndarray, capital: float, tf_ms: int) -> dict[str, np.ndarray]:
    """Metrics of every combination (:data:`METRICS` -> float64 / int64 (C,)).

    Parameters
    ----------
    met : float64 (C, MET_W)
        The kernel's accumulators (:data:`gridflow.sweep.kernel.MET_NAMES`).
    capital : float
        Initial equity (quote).
    tf_ms : int
        Candle timeframe (ms), for the length of the period in days.
    """
    m = np.asarray(met, np.float64)
    eq = m[:, sk.M_EQUITY]
    net = eq - capital
    ret = net / capital
    n = m[:, sk.M_DAYS]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, m[:, sk.M_SUM_R] / n, np.nan)
        var = (m[:, sk.M_SUM_R2] - n * mean * mean) / (n - 1)
        sd = np.sqrt(np.maximum(var, 0.0))
        sharpe = np.where((n >= 2) & (sd > 0), mean / sd * np.sqrt(ANNUAL_DAYS), np.nan)
        down = np.sqrt(m[:, sk.M_SUM_DOWN2] / n)
        sortino = np.where((n >= 2) & (down > 0), mean / down * np.sqrt(ANNUAL_DAYS), np.nan)
        days = m[:, sk.M_CANDLES] * tf_ms / 86_400_000
        growth = np.maximum(1.0 + ret, 0.0)
        annual = np.where(days > 0, growth ** (ANNUAL_DAYS / days) - 1.0, np.nan)
        dd = m[:, sk.M_MAXDD]
        calmar = np.where(dd > 0, annual / dd, np.nan)
        gp, gl = m[:, sk.M_GROSS_P], m[:, sk.M_GROSS_L]
        pf = np.where(gl > 0, gp / gl, np.where(gp > 0, np.inf, 0.0))
        trades = m[:, sk.M_TRADES]
        win = np.where(trades > 0, m[:, sk.M_WINS] / trades, 0.0)
        exposure = np.where(m[:, sk.M_CANDLES] > 0, m[:, sk.M_EXPOSED] / m[:, sk.M_CANDLES], 0.0)
    return {
        "net_pnl": net,
        "total_return": ret,
        "max_drawdown": dd,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "profit_factor": pf,
        "win_rate": win,
        "trades": trades.astype(np.int64),
        "max_consecutive_losses": m[:, sk.M_MAX_CONSEC].astype(np.int64),
        "exposure": exposure,
        "fees": m[:, sk.M_FEES],
        "funding": m[:, sk.M_FUNDING],
    }
