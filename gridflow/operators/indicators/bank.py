"""Indicator names (``sma_24``, ``atr_14``, ``trange``) and the per-symbol IndicatorBank."""

from __future__ import annotations

import re

import numpy as np

from gridflow.operators.indicators._base import _as_series, _State
from gridflow.operators.indicators.moving_averages import EMAState, SMAState
from gridflow.operators.indicators.volatility import ATRState, TrueRangeState

_NAME_RE = re.compile(r"(sma|ema|atr)_([0-9]+)")
_NAME_HELP = "expected 'sma_<N>', 'ema_<N>', 'atr_<N>' (N >= 1, no leading zeros) or 'trange'"


def parse_indicator(name: str) -> tuple[str, int | None]:
    """Split an indicator name into ``(kind, period)``.

    Parameters
    ----------
    name : str
        ``"sma_24"``, ``"ema_50"``, ``"atr_14"`` or ``"trange"`` (lower case).

    Returns
    -------
    tuple[str, int | None]
        ``("sma", 24)``, ... ; ``("trange", None)``.

    Raises
    ------
    ValueError
        Unknown kind, missing / malformed / zero period, or leading zeros.
    """
    if name == "trange":
        return "trange", None
    m = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
    if m is None:
        raise ValueError(f"unknown indicator name {name!r}: {_NAME_HELP}")
    kind, digits = m.groups()
    period = int(digits)
    if period < 1:
        raise ValueError(f"indicator {name!r}: {kind} period must be >= 1, got {period}")
    if digits != str(period):
        raise ValueError(f"indicator {name!r}: write the period without leading zeros")
    return kind, period


_KINDS = {"sma": SMAState, "ema": EMAState, "atr": ATRState}


class IndicatorBank:
    """Several indicators of one symbol, computed chunk by chunk with carried state.

    Parameters
    ----------
    names : list of str
        Indicator names (see :func:`parse_indicator`); duplicates are computed once.

    Raises
    ------
    ValueError
        Empty list or any invalid name.
    """

    def __init__(self, names: list[str]) -> None:
        if isinstance(names, str):
            raise ValueError("names must be a list of indicator names, not a single str")
        unique = list(dict.fromkeys(names))
        if not unique:
            raise ValueError("names must hold at least one indicator name")
        self._states: dict[str, _State] = {}
        for name in unique:
            kind, period = parse_indicator(name)
            self._states[name] = _KINDS[kind](period) if period else TrueRangeState()

    @property
    def names(self) -> list[str]:
        """Unique indicator names, in first-seen order."""
        return list(self._states)

    def update(self, ts, open, high, low, close) -> dict[str, np.ndarray]:
        """Compute every indicator for the next chunk of closed candles.

        Parameters
        ----------
        ts : array_like, shape (n,)
            Candle open times (ms UTC); only its length is checked.
        open, high, low, close : array_like, shape (n,)
            Prices in quote currency (``open`` is not used by any indicator yet).

        Returns
        -------
        dict[str, np.ndarray]
            Name to float64 array of shape (n,); NaN during each indicator's warm-up.

        Raises
        ------
        ValueError
            Inputs not 1-D or of different lengths.
        """
        h, lo, c = _as_series(high, low, close)
        for label, arr in (("ts", ts), ("open", open)):
            if np.shape(arr) != h.shape:
                raise ValueError(f"{label} has shape {np.shape(arr)}, prices have {h.shape}")
        out: dict[str, np.ndarray] = {}
        for name, state in self._states.items():
            if isinstance(state, (SMAState, EMAState)):
                out[name] = state.update_many(c)
            else:
                out[name] = state.update_many(h, lo, c)
        return out

    def __repr__(self) -> str:
        return f"IndicatorBank({self.names!r})"
