"""Walk-forwards of one parameter grid in variants, side by side: e.g. grid ATR with and
without a regime filter, on several symbols (issue 18's report).

>>> rows = compare_variants({"BTC/USDT": data}, ACCOUNT, "grid_atr", SPACE, cfg,
...                         {"plain": {}, "regime filter": {"regime_filter": {...}}},
...                         FEES, {"BTC/USDT": MARKET}, BASE)

Each variant is the same grid with extra fixed parameters merged into ``base``; every
walk-forward is :func:`~gridflow.wfo.walkforward.run_walkforward`, so each variant is
optimised in-sample and judged out-of-sample on its own (a filter is not tuned on the
record it is judged by).
"""

from __future__ import annotations

from typing import Any, Sequence

from gridflow.config.models import AccountConfig, FeesConfig, MarketSpec
from gridflow.sweep import SweepData
from gridflow.wfo.config import WfoConfig
from gridflow.wfo.walkforward import run_walkforward

#: Report keys of each row: ``symbol``, ``variant`` and these from the walk-forward.
COMPARED = ("oos_sharpe", "oos_max_drawdown", "oos_total_return", "oos_trades", "grade",
            "grade_score", "consistency", "oos_is_ratio")


def compare_variants(datas: dict[str, SweepData], account: AccountConfig, strategy: str,
                     space: dict[str, Sequence[Any]], cfg: WfoConfig,
                     variants: dict[str, dict[str, Any]], fees: FeesConfig | None = None,
                     markets: dict[str, MarketSpec] | None = None,
                     base: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One walk-forward per (symbol, variant).

    Parameters
    ----------
    datas : dict[str, SweepData]
        Candles of each symbol (with funding where it is paid).
    account, strategy, space, cfg, fees, base
        As :func:`~gridflow.wfo.walkforward.run_walkforward` takes them.
    variants : dict[str, dict]
        Variant name -> fixed parameters merged over ``base`` (``{}`` = the grid as is).
    markets : dict[str, MarketSpec], optional
        Precision and limits per symbol.

    Returns
    -------
    list of dict
        ``symbol``, ``variant``, the keys of :data:`COMPARED` (fractions; Sharpe
        annualised from daily returns; the grade letter and its 0..100 score) and
        ``seconds``, symbol by symbol, variants in the order given.

    Raises
    ------
    ValueError
        What :func:`~gridflow.wfo.walkforward.run_walkforward` raises (an unknown
        parameter, a window without candles...).
    """
    rows = []
    for sym, data in datas.items():
        market = (markets or {}).get(sym)
        for name, extra in variants.items():
            res = run_walkforward(data, account, strategy, space, cfg, fees, market,
                                  {**(base or {}), **extra})
            rep = res.report
            rows.append({"symbol": sym, "variant": name, **{k: rep[k] for k in COMPARED},
                         "seconds": rep.get("seconds", float("nan"))})
    return rows


__all__ = ["COMPARED", "compare_variants"]
