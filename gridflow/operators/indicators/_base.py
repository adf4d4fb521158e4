"""Shared pieces of the indicator modules: the numpy-backed state base, checks, coercion."""

from __future__ import annotations

import numpy as np

_NAN = float("nan")


# --------------------------------------------------------------------------- helpers

def _check_period(period, what: str) -> int:
    if isinstance(period, bool) or not isinstance(period, (int, np.integer)):
        raise ValueError(f"{what} period must be an int, got {type(period).__name__} {period!r}")
    if period < 1:
        raise ValueError(f"{what} period must be >= 1, got {period}")
    return int(period)


def _as_series(*arrays) -> list[np.ndarray]:
    """Contiguous 1-D float64 views (or copies) of ``arrays``, all of the same length."""
    out = [np.asarray(a, dtype=np.float64) for a in arrays]
    for a in out:
        if a.ndim != 1:
            raise ValueError(f"indicator inputs must be 1-D arrays, got shape {a.shape}")
    out = [np.ascontiguousarray(a) for a in out]
    if len({a.shape[0] for a in out}) > 1:
        raise ValueError(f"indicator inputs must have equal lengths, got {[len(a) for a in out]}")
    return out


class _State:
    """State held in numpy arrays; memoryviews of them serve the pure-Python ``update``."""

    _arrays: tuple[str, ...] = ()

    def _bind(self) -> None:
        self._views = tuple(memoryview(getattr(self, name)) for name in self._arrays)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_views"]  # memoryviews are not picklable; rebuilt on load
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self, 'period', '')})"



# --------------------------------------------------------------------------- registry

INPUTS = ("open", "high", "low", "close", "volume")


class IndicatorKind:
    """How the :class:`~gridflow.operators.indicators.bank.IndicatorBank` builds and
    feeds one indicator family; each family module lists its kinds in ``KINDS``.

    Parameters
    ----------
    params : tuple of (name, type)
        Parameters in name order: ``macd_12_26_9`` -> ``(("fast", int), ("slow", int),
        ("signal", int))``. Types are ``int`` or ``float``.
    inputs : tuple of str
        Candle fields passed to ``update_many``, from ``open high low close volume``.
    outputs : tuple of str
        Output names of a multi-output indicator (``("line", "signal", "hist")``), in
        the order ``update_many`` returns them; empty for a single array.
    factory : callable
        ``factory(*params) -> state``; the state has ``update_many(*inputs)`` returning
        one float64 array or a tuple of them (one per output), is picklable, and raises
        ``ValueError`` naming the parameter on bad parameters.
    context : tuple of str
        Keyword arguments the bank adds to the factory call; only ``"timeframe_ms"``
        (the candle length in ms, e.g. to annualise a volatility) exists.
    """

    __slots__ = ("params", "inputs", "outputs", "factory", "context")

    def __init__(self, params, inputs, outputs, factory, context=()) -> None:
        if set(context) - {"timeframe_ms"}:
            raise ValueError(f"unknown indicator context {context}; only 'timeframe_ms' exists")
        self.context = tuple(context)
        bad = [i for i in inputs if i not in INPUTS]
        if bad:
            raise ValueError(f"unknown indicator inputs {bad}; expected some of {INPUTS}")
        self.params = tuple(params)
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.factory = factory
