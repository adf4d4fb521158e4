"""Shared pieces of the indicator modules: the numpy-backed state base, checks, coercion."""

from __future__ import annotations

import numpy as np

from gridflow.indicator_names import INPUTS, Signature

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



class IndicatorKind:
    """How the :class:`~gridflow.operators.indicators.bank.IndicatorBank` builds and
    feeds one indicator family; each family module lists its kinds in ``KINDS``.

    Parameters
    ----------
    signature : gridflow.indicator_names.Signature
        The kind's parameters, inputs, outputs and context (one definition, in
        :data:`gridflow.indicator_names.SIGNATURES`).
    factory : callable
        ``factory(*params, **context) -> state``; the state has ``update_many(*inputs)``
        returning one float64 array or a tuple of them (one per output), is picklable,
        and raises ``ValueError`` naming the parameter on bad parameters.

    Raises
    ------
    ValueError
        On an unknown input or context name.
    """

    __slots__ = ("params", "inputs", "outputs", "factory", "context")

    def __init__(self, signature: Signature, factory) -> None:
        if set(signature.context) - {"timeframe_ms"}:
            raise ValueError(
                f"unknown indicator context {signature.context}; only 'timeframe_ms' exists")
        bad = [i for i in signature.inputs if i not in INPUTS]
        if bad:
            raise ValueError(f"unknown indicator inputs {bad}; expected some of {INPUTS}")
        self.params = tuple(signature.params)
        self.inputs = tuple(signature.inputs)
        self.outputs = tuple(signature.outputs)
        self.context = tuple(signature.context)
        self.factory = factory
