"""The entry gate of a strategy: its entry and regime filters
(:mod:`gridflow.config.filters`) over the indicator values of each candle close.

:func:`entry_gate` is the one rule: the streaming strategies pass its output to the
quote rule (:func:`~gridflow.operators.strategies.quote_kernel.quote_at`, input ``g``),
and the sweep computes the same series once per filter set over a symbol's history and
feeds it to the same quote rule, so a filter blocks the same candles in a replay, a live
run and a sweep. A gate of 0.0 at a close means: no entry level is quoted for the next
candle (the take profit and the stop are quoted as usual).
"""

from __future__ import annotations

import numpy as np

from gridflow.operators.indicators import indicator_name
from gridflow.operators.indicators.regime import REGIME_CODES


def _names(p) -> dict[str, str]:
    """Role -> indicator output key of the filters of strategy parameters ``p``."""
    out: dict[str, str] = {}
    f = p.entry_filter
    if f is not None:
        if f.hvz_band is not None:
            out["hvz"] = indicator_name("hvz", f.hv_window, f.hvz_window)
        if f.rsi_band is not None:
            out["rsi"] = indicator_name("rsi", f.rsi_period)
        if f.macd_hist_min is not None:
            out["macd"] = indicator_name("macd", *f.macd) + ".hist"
    if p.regime_filter is not None:
        out["regime"] = indicator_name("regime", p.regime_filter.window)
    return out


def filter_indicators(p) -> list[str]:
    """Indicator names (for the ``IndicatorBank``) the filters of ``p`` read; [] for
    none."""
    return [k.split(".")[0] for k in _names(p).values()]


def gate_key(p) -> str | None:
    """A key naming the gate series of ``p``'s filters (equal filters, equal key), or
    None when ``p`` has no filter (the gate is always open)."""
    if p.entry_filter is None and p.regime_filter is None:
        return None
    parts = [p.entry_filter.model_dump_json() if p.entry_filter else "",
             p.regime_filter.model_dump_json() if p.regime_filter else ""]
    return "gate:" + "|".join(parts)


def entry_gate(p, values: dict[str, np.ndarray], n: int | None = None) -> np.ndarray:
    """The gate of ``p``'s filters at each of ``n`` candle closes.

    Parameters
    ----------
    p : strategy parameters (:mod:`gridflow.config.strategies`)
    values : dict[str, np.ndarray]
        Indicator outputs of the candles, float64 (n,) each, keyed as the bank yields
        them (``hvz_24_168``, ``rsi_14``, ``macd_12_26_9.hist``, ``regime_720``).
    n : int, optional
        Number of candles; needed only when ``p`` has no filter and ``values`` is empty.

    Returns
    -------
    float64 (n,)
        1.0 where every filter allows new entries, 0.0 where one blocks them. A NaN
        indicator (warm-up, an unknown regime) blocks. With no filter, all 1.0.

    Raises
    ------
    KeyError
        ``values`` lacks an indicator the filters read.
    """
    if n is None:
        n = len(next(iter(values.values())))
    ok = np.ones(n, dtype=bool)
    names = _names(p)
    f = p.entry_filter
    with np.errstate(invalid="ignore"):
        if "hvz" in names:
            z = values[names["hvz"]]
            ok &= (z > f.hvz_band[0]) & (z < f.hvz_band[1])
        if "rsi" in names:
            r = values[names["rsi"]]
            ok &= (r >= f.rsi_band[0]) & (r <= f.rsi_band[1])
        if "macd" in names:
            ok &= values[names["macd"]] > f.macd_hist_min
        if "regime" in names:
            allowed = [c for label, c in REGIME_CODES.items()
                       if getattr(p.regime_filter, label) == "allow"]
            ok &= np.isin(values[names["regime"]], np.array(allowed, dtype=np.float64))
    return ok.astype(np.float64)


__all__ = ["entry_gate", "filter_indicators", "gate_key"]
