"""Indicator names: the grammar, each kind's signature, and parsing (no computation).

Name grammar: ``kind[_param]...[@timeframe]``, lower case, parameters in the order the
kind declares them, e.g. ``sma_24``, ``atr_14``, ``trange``, ``macd_12_26_9``,
``bbands_20_2``, ``supertrend_10_3@4h``. A name with ``@tf`` is computed on candles
resampled to that higher timeframe. Multi-output kinds yield one array per output, keyed
``name.output`` (``macd_12_26_9.signal``). Names are canonicalised (``bbands_20_2`` and
``bbands_20_2.0`` are one indicator).

This module sits at the bottom of the layers so that configuration can check names
when it is loaded; :mod:`gridflow.operators.indicators.bank` pairs each signature with
the state that computes it, and its ``parse_indicator`` adds the range checks that only
the indicator itself knows (``sma_0``, ``macd_26_12_9``).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from gridflow.timeframes import timeframe_to_ms

#: Candle fields an indicator can read.
INPUTS = ("open", "high", "low", "close", "volume")


class Signature(NamedTuple):
    """What a name of one kind carries and what its indicator reads and yields.

    Attributes
    ----------
    params : tuple of (name, type)
        Parameters in name order: ``macd_12_26_9`` -> ``(("fast", int), ("slow", int),
        ("signal", int))``. Types are ``int`` or ``float``.
    inputs : tuple of str
        Candle fields the indicator reads, from :data:`INPUTS`.
    outputs : tuple of str
        Output names of a multi-output indicator, in the order it returns them; empty
        for a single array.
    context : tuple of str
        Keyword arguments the bank adds when it builds the indicator; only
        ``"timeframe_ms"`` (the candle length in ms) exists.
    """

    params: tuple
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] = ()
    context: tuple[str, ...] = ()


_PERIOD = (("period", int),)
_HLC = ("high", "low", "close")

#: Every indicator kind gridflow computes, by name.
SIGNATURES: dict[str, Signature] = {
    "sma": Signature(_PERIOD, ("close",)),  # simple moving average
    "ema": Signature(_PERIOD, ("close",)),  # exponential moving average
    "wma": Signature(_PERIOD, ("close",)),  # linearly weighted moving average
    "trange": Signature((), _HLC),  # true range (Wilder 1978)
    "atr": Signature(_PERIOD, _HLC),  # average true range (Wilder 1978)
    "rsi": Signature(_PERIOD, ("close",)),  # relative strength index (Wilder 1978)
    "macd": Signature((("fast", int), ("slow", int), ("signal", int)), ("close",),
                      ("line", "signal", "hist")),  # Appel
    "adx": Signature(_PERIOD, _HLC, ("adx", "plus_di", "minus_di")),  # Wilder 1978
    "supertrend": Signature((("period", int), ("multiplier", float)), _HLC,
                            ("value", "direction")),
    "bbands": Signature((("period", int), ("nbdev", float)), ("close",),
                        ("upper", "middle", "lower")),  # Bollinger bands
    "donchian": Signature(_PERIOD, ("high", "low"), ("upper", "lower")),
    "hv": Signature((("window", int),), ("close",), (), ("timeframe_ms",)),
    "hvz": Signature((("window", int), ("z_window", int)), ("close",), (), ("timeframe_ms",)),
    # market regime of the trailing window: 0 crash, 1 bull, 2 bear, 3 range
    "regime": Signature((("window", int),), ("close",), (), ("timeframe_ms",)),
}

_NAME_RE = re.compile(r"([a-z][a-z0-9]*?)((?:_[0-9][0-9.]*)*)(?:@([0-9]+[mhd]))?")


class IndicatorSpec(NamedTuple):
    """A parsed indicator name: kind, typed parameters, optional higher timeframe."""

    kind: str
    params: tuple
    timeframe: str | None = None

    @property
    def name(self) -> str:
        """Canonical name (``bbands_20_2.0@4h``)."""
        parts = [self.kind, *(repr(p) if isinstance(p, float) else str(p) for p in self.params)]
        base = "_".join(parts)
        return f"{base}@{self.timeframe}" if self.timeframe else base

    @property
    def outputs(self) -> tuple[str, ...]:
        """Keys this indicator adds to a bank's result."""
        outs = SIGNATURES[self.kind].outputs
        return tuple(f"{self.name}.{o}" for o in outs) if outs else (self.name,)


def _help() -> str:
    kinds = ", ".join(
        f"{k}" + "".join(f"_<{p}>" for p, _ in v.params) for k, v in sorted(SIGNATURES.items())
    )
    return f"expected one of {kinds}, optionally followed by @<timeframe> (e.g. @4h)"


def parse_name(name: str) -> IndicatorSpec:
    """Parse an indicator name by its grammar and its kind's signature.

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
        Unknown kind, wrong number of parameters, a parameter that is not a number of
        the declared type, an int with leading zeros, a non-finite float or a bad
        timeframe. Ranges (a period of 0) are the indicator's to check
        (:func:`gridflow.operators.indicators.parse_indicator`).
    """
    m = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
    if m is None or m.group(1) not in SIGNATURES:
        raise ValueError(f"unknown indicator name {name!r}: {_help()}")
    kind_name, raw, tf = m.groups()
    sig = SIGNATURES[kind_name]
    tokens = raw.split("_")[1:] if raw else []
    if len(tokens) != len(sig.params):
        raise ValueError(
            f"unknown indicator name {name!r}: {kind_name} takes {len(sig.params)} "
            f"parameter(s) {[p for p, _ in sig.params]}, got {len(tokens)}"
        )
    params: list = []
    for (pname, ptype), tok in zip(sig.params, tokens):
        try:
            val = ptype(tok)
        except ValueError:
            raise ValueError(f"indicator {name!r}: {pname} must be a {ptype.__name__}, got {tok!r}")
        if ptype is int and tok != str(val):
            raise ValueError(f"indicator {name!r}: write {pname} without leading zeros or signs")
        if ptype is float and not math.isfinite(val):
            raise ValueError(f"indicator {name!r}: {pname} must be finite, got {tok!r}")
        params.append(val)
    if tf is not None:
        timeframe_to_ms(tf)
    return IndicatorSpec(kind_name, tuple(params), tf)
