"""Indicator names and the per-symbol :class:`IndicatorBank`.

Names (``sma_24``, ``macd_12_26_9``, ``supertrend_10_3@4h``) follow the grammar of
:mod:`gridflow.indicator_names` (one definition, at the bottom of the layers, so config
checks them at load); :func:`parse_indicator` adds the range checks of the indicator
itself. A name with ``@tf`` is computed on candles resampled to that higher timeframe
(:mod:`gridflow.operators.resample`) and each of its values becomes visible to the base
candles only from the close of the HTF candle it belongs to; each canonical name is
computed once per symbol.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from gridflow.indicator_names import SIGNATURES, IndicatorSpec, parse_name
from gridflow.operators.indicators import (
    bands,
    momentum,
    moving_averages,
    oscillators,
    regime,
    statistics,
    trend,
    volatility,
)
from gridflow.operators.indicators._base import IndicatorKind, _as_series
from gridflow.operators.resample import Resampler
from gridflow.timeframes import timeframe_to_ms

KINDS: dict[str, IndicatorKind] = {}
for _module in (moving_averages, volatility, momentum, trend, oscillators, bands, statistics,
                regime):
    KINDS.update(_module.KINDS)
if set(KINDS) != set(SIGNATURES):  # a kind named but not computed, or computed but unnamed
    raise ImportError(f"indicator kinds {sorted(set(KINDS) ^ set(SIGNATURES))} lack a state "
                      "or a signature (gridflow.indicator_names.SIGNATURES)")


def parse_indicator(name: str) -> IndicatorSpec:
    """Parse an indicator name (:func:`gridflow.indicator_names.parse_name`) and check
    its parameters' ranges by building the indicator once.

    Parameters
    ----------
    name : str
        ``"sma_24"``, ``"macd_12_26_9"``, ``"supertrend_10_3@4h"`` ...

    Returns
    -------
    IndicatorSpec

    Raises
    ------
    ValueError
        What :func:`~gridflow.indicator_names.parse_name` raises, and range errors of
        the indicator itself (naming the parameter), e.g. ``sma_0``.
    """
    spec = parse_name(name)
    kind = KINDS[spec.kind]
    ctx = {"timeframe_ms": 3_600_000} if "timeframe_ms" in kind.context else {}
    try:
        kind.factory(*spec.params, **ctx)
    except ValueError as exc:
        raise ValueError(f"indicator {name!r}: {exc}") from None
    return spec


@functools.lru_cache(maxsize=65_536)
def indicator_name(kind: str, *params, timeframe: str | None = None) -> str:
    """Canonical name of an indicator, e.g. ``indicator_name("sma", 24) == "sma_24"``
    (memoised: a sweep asks for the names of every combination).

    Raises
    ------
    ValueError
        Unknown kind or invalid parameters.
    """
    return parse_indicator(IndicatorSpec(kind, tuple(params), timeframe).name).name


class _Group:
    """The indicators of one timeframe: states fed by the same candles."""

    def __init__(self, specs: list[IndicatorSpec], timeframe_ms: int | None) -> None:
        self.items = []
        for spec in specs:
            kind = KINDS[spec.kind]
            ctx = {}
            if "timeframe_ms" in kind.context:
                if timeframe_ms is None:
                    raise ValueError(f"indicator {spec.name!r} needs the bank's timeframe")
                ctx["timeframe_ms"] = timeframe_ms
            self.items.append((spec, kind, kind.factory(*spec.params, **ctx)))

    def update(self, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for spec, kind, state in self.items:
            res = state.update_many(*(cols[i] for i in kind.inputs))
            if kind.outputs:
                for key, arr in zip(spec.outputs, res):
                    out[key] = arr
            else:
                out[spec.name] = res
        return out


class IndicatorBank:
    """All indicators of one symbol, computed chunk by chunk with carried state.

    Parameters
    ----------
    names : list of str
        Indicator names (see :func:`parse_indicator`); duplicates (after
        canonicalisation) are computed once.
    timeframe : str, optional
        Timeframe of the candles fed to :meth:`update`; required for ``@tf`` names and
        for kinds that need it (historical volatility's annualisation, the regime's
        crash span).

    Raises
    ------
    ValueError
        Empty list, an invalid name, bad parameters, an ``@tf`` that is not a higher
        multiple of ``timeframe``, or a missing ``timeframe``.
    """

    def __init__(self, names: list[str], timeframe: str | None = None) -> None:
        if isinstance(names, str):
            raise ValueError("names must be a list of indicator names, not a single str")
        specs = list(dict.fromkeys(parse_indicator(n) for n in names))
        if not specs:
            raise ValueError("names must hold at least one indicator name")
        self.timeframe = timeframe
        tf_ms = timeframe_to_ms(timeframe) if timeframe is not None else None
        self._specs = specs
        self._base = _Group([s for s in specs if s.timeframe is None], tf_ms)
        self._htf: dict[str, tuple[Resampler, _Group, dict[str, float]]] = {}
        for tf in dict.fromkeys(s.timeframe for s in specs if s.timeframe is not None):
            if timeframe is None:
                raise ValueError(f"indicators @{tf} need the bank's timeframe")
            group = _Group([s for s in specs if s.timeframe == tf], timeframe_to_ms(tf))
            carry = {k: math.nan for s in specs if s.timeframe == tf for k in s.outputs}
            self._htf[tf] = (Resampler(timeframe, tf), group, carry)

    @property
    def names(self) -> list[str]:
        """Canonical indicator names, in first-seen order."""
        return [s.name for s in self._specs]

    @property
    def outputs(self) -> list[str]:
        """Keys of :meth:`update`'s result, in order."""
        return [k for s in self._specs for k in s.outputs]

    def update(self, ts, open, high, low, close, volume=None) -> dict[str, np.ndarray]:
        """Compute every indicator for the next chunk of closed candles.

        Parameters
        ----------
        ts : int64 (n,)
            Candle open times, ms UTC, increasing.
        open, high, low, close : float64 (n,)
            Prices in quote currency.
        volume : float64 (n,), optional
            Base volume (zeros when omitted).

        Returns
        -------
        dict[str, np.ndarray]
            :attr:`outputs` to float64 arrays of shape (n,); value ``i`` uses only
            candles closed at or before candle ``i``'s close; NaN during warm-up.

        Raises
        ------
        ValueError
            Inputs not 1-D or of different lengths.
        """
        o, h, lo, c = _as_series(open, high, low, close)
        v = _as_series(volume)[0] if volume is not None else np.zeros_like(c)
        if np.shape(ts) != c.shape or v.shape != c.shape:
            raise ValueError(f"ts has shape {np.shape(ts)}, prices have {c.shape}")
        cols = {"open": o, "high": h, "low": lo, "close": c, "volume": v}
        res = self._base.update(cols)
        for resampler, group, carry in self._htf.values():
            htf, closed = resampler.update(ts, o, h, lo, c, v)
            vals = group.update(htf)
            idx = closed - 1
            for key, arr in vals.items():
                prev = np.concatenate(([carry[key]], arr))
                res[key] = prev[idx + 1]  # idx = -1 -> carried value
                if arr.shape[0]:
                    carry[key] = float(arr[-1])
        return {k: res[k] for k in self.outputs}

    def __repr__(self) -> str:
        return f"IndicatorBank({self.names!r}, timeframe={self.timeframe!r})"
