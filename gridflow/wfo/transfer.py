"""Cross-venue transfer: do the parameters chosen on the research venue's history hold
on the venue that will trade them?

The walk-forward picks its parameters on one venue's candles (Binance's long history,
say); the live venue's prices differ by its own liquidity, wicks and fees. The roadmap's
check: replay the chosen parameters (the last window's best: what would be deployed) on
the live venue's most recent ``days`` and on the research venue's same days, and compare
the annualised Sharpe ratios. ``transfer_ratio = live / research`` (NaN when the
research Sharpe is not positive: nothing to transfer); the grade scores it (15 of its 100
points, :data:`gridflow.wfo.grade.CRITERIA`; 0 when it was not measured).
"""

from __future__ import annotations

import math

from gridflow.config.models import AccountConfig, FeesConfig, MarketSpec
from gridflow.sweep import SweepData, expand_grid, run_sweep

__all__ = ["transfer_report"]

DAY_MS = 86_400_000


def transfer_report(research: SweepData, live: SweepData, account: AccountConfig,
                    strategy: str, params: dict, days: int, venue: str,
                    fees: FeesConfig | None = None, market: MarketSpec | None = None,
                    base: dict | None = None) -> dict:
    """The transfer figures of ``params`` over the last ``days`` of ``live``'s data.

    Parameters
    ----------
    research, live : SweepData
        The same symbol on the research venue and on the live venue.
    params : dict
        The swept parameters to replay (a window's ``params``); ``base`` the fixed
        ones.
    days : int
        Length of the window (> 0), ending at ``live``'s last candle.
    venue : str
        Name of the live venue's series, reported as ``transfer_venue``.

    Returns
    -------
    dict
        ``transfer_venue``, ``transfer_start_ms``, ``transfer_end_ms``,
        ``transfer_sharpe_live``, ``transfer_sharpe_research`` (annualised),
        ``transfer_trades_live``, ``transfer_trades_research`` and ``transfer_ratio``.

    Raises
    ------
    ValueError
        ``days < 1``, no live candle, or parameters the strategy refuses.
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if len(live) == 0:
        raise ValueError(f"{venue}: no candle to replay the parameters on")
    combos, _, _ = expand_grid(strategy, {k: [v] for k, v in params.items()}, base)
    if not combos:
        raise ValueError(f"{strategy}: the chosen parameters are refused: {params}")
    end = int(live.ts[-1]) + live.tf_ms
    start = end - days * DAY_MS
    out = {"transfer_venue": venue, "transfer_start_ms": start, "transfer_end_ms": end}
    for name, data in (("live", live), ("research", research)):
        m = run_sweep(data, account, combos, fees, market, start_ms=start, end_ms=end).metrics
        out[f"transfer_sharpe_{name}"] = float(m["sharpe"][0])
        out[f"transfer_trades_{name}"] = int(m["trades"][0])
    res = out["transfer_sharpe_research"]
    out["transfer_ratio"] = (out["transfer_sharpe_live"] / res
                             if math.isfinite(res) and res > 0 else math.nan)
    return out
