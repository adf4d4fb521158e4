"""Per-combination performance metrics from the sweep kernel's accumulators.

Sharpe, Sortino and Calmar are :mod:`gridflow.metrics`' (one definition and one
edge-case rule: a metric the data do not define is NaN), fed the kernel's running sums.

=======================  ==================================================================
metric                   definition
=======================  ==================================================================
net_pnl                  final equity (cash + open position marked at the last close)
                         minus the initial capital, quote currency
total_return             ``net_pnl / capital`` (fraction, not percent)
max_drawdown             largest fall of the close-marked equity from its running peak
                         (the kernel tracks it candle by candle, starting from the
                         capital), a positive fraction of that peak (not percent)
sharpe                   :func:`gridflow.metrics.sharpe_from_moments` of the daily returns
                         (equity at the last close of each UTC day), x sqrt(365)
sortino                  :func:`gridflow.metrics.sortino_from_moments`, x sqrt(365)
calmar                   :func:`gridflow.metrics.calmar` over ``candles x timeframe`` days
profit_factor            gross profit / gross loss of closed round trips (inf with no
                         loss, 0 with neither)
win_rate                 share of round trips with net PnL > 0 (fraction)
trades                   closed round trips (net of fees and funding)
max_consecutive_losses   longest run of losing round trips
exposure                 share of candles closing with an open position (fraction)
fees, funding            paid, quote currency (funding negative = received)
=======================  ==================================================================
"""

from __future__ import annotations

import numpy as np

from gridflow import metrics as gm
from gridflow.sweep import kernel as sk

METRICS = ("net_pnl", "total_return", "max_drawdown", "sharpe", "sortino", "calmar",
           "profit_factor", "win_rate", "trades", "max_consecutive_losses", "exposure",
           "fees", "funding")
ANNUAL_DAYS = gm.ANNUAL_DAYS


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
    eq = m[:, sk.MET_EQUITY]
    net = eq - capital
    ret = net / capital
    n = m[:, sk.MET_DAYS]
    sharpe = gm.sharpe_from_moments(n, m[:, sk.MET_SUM_R], m[:, sk.MET_SUM_R2], ANNUAL_DAYS)
    sortino = gm.sortino_from_moments(n, m[:, sk.MET_SUM_R], m[:, sk.MET_SUM_DOWN2], ANNUAL_DAYS)
    dd = m[:, sk.MET_MAXDD]
    calmar = gm.calmar(ret, m[:, sk.MET_CANDLES] * tf_ms / gm.DAY_MS, dd)
    with np.errstate(divide="ignore", invalid="ignore"):
        gp, gl = m[:, sk.MET_GROSS_P], m[:, sk.MET_GROSS_L]
        pf = np.where(gl > 0, gp / gl, np.where(gp > 0, np.inf, 0.0))
        trades = m[:, sk.MET_TRADES]
        win = np.where(trades > 0, m[:, sk.MET_WINS] / trades, 0.0)
        exposure = np.where(m[:, sk.MET_CANDLES] > 0, m[:, sk.MET_EXPOSED] / m[:, sk.MET_CANDLES], 0.0)
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
        "max_consecutive_losses": m[:, sk.MET_MAX_CONSEC].astype(np.int64),
        "exposure": exposure,
        "fees": m[:, sk.MET_FEES],
        "funding": m[:, sk.MET_FUNDING],
    }
