"""Incremental and batch SMA, EMA, Wilder true range and ATR with TA-Lib semantics.

Each indicator is one plain-Python *step* function on scalars (one closed candle in,
``(value, *new_state)`` out). numba compiles the same function (``njit(cache=True)``)
into a chunk kernel, so every entry point shares one definition and operation order and
the results are bit-identical: batch functions run the kernel from a fresh state;
``update_many`` runs it on a chunk, continuing the state kept in small float64/int64
numpy arrays; ``update`` calls the uncompiled step on memoryviews of those arrays
(0.2-0.4 µs, cheaper than a numba call per value).

Prices and outputs are float64 in quote currency, NaN during warm-up. Inputs must be
finite: as in TA-Lib, a NaN/inf input poisons the indicator for all later candles.
Formulas are classic TA-Lib; TA-Lib C >= 0.8 uses fused multiply-adds in some
recursions, so agreement with it is ~1e-13 relative, not bit for bit.
"""

from __future__ import annotations

import re

import numpy as np
from numba import njit

__all__ = [
    "sma", "ema", "true_range", "atr", "SMAState", "EMAState", "TrueRangeState",
    "ATRState", "IndicatorBank", "parse_indicator",
]

_NAN = float("nan")


# --------------------------------------------------------------------------- steps
# State goes in as arguments and comes back in the returned tuple, so kernels keep it in
# registers. Do not call one step from another: the compiled copy could not call it.

def _sma_step(x, buf, n, pos, s, c, period):
    """SMA step; ``buf`` (ring, mutated), n: count (saturates at period), s + c: sum."""
    t = s + x  # Neumaier-compensated add of the new value
    if abs(s) >= abs(x):
        c += (s - t) + x
    else:
        c += (x - t) + s
    s = t
    if n >= period:
        y = -buf[pos]  # compensated removal of the value leaving the window
        t = s + y
        if abs(s) >= abs(y):
            c += (s - t) + y
        else:
            c += (y - t) + s
        s = t
    else:
        n += 1
    buf[pos] = x
    pos += 1
    if pos == period:
        pos = 0
    if n >= period:
        return (s + c) / period, n, pos, s, c
    return _NAN, n, pos, s, c


def _ema_step(x, n, s, e, period, k):
    """EMA step; n: count (saturates at period), s: seed sum, e: current EMA."""
    if n >= period:
        e = (x - e) * k + e  # TA-Lib order: ((x - prev) * k) + prev
        return e, n, s, e
    s = s + x
    n += 1
    if n == period:
        e = s / period
        return e, n, s, e
    return _NAN, n, s, e


def _tr_step(h, lo, c, n, pc):
    """True-range step; n: count (saturates at 1), pc: previous close."""
    if n == 0:
        return _NAN, 1, c
    tr = h - lo
    v = abs(pc - h)
    if v > tr:
        tr = v
    v = abs(pc - lo)
    if v > tr:
        tr = v
    return tr, n, c


def _atr_step(h, lo, c, n, pc, s, a, period):
    """ATR step; n: count (saturates at period + 1), pc: prev close, s: seed sum, a: ATR."""
    if n == 0:
        return _NAN, 1, c, s, a
    tr = h - lo  # same true range as _tr_step, inlined
    v = abs(pc - h)
    if v > tr:
        tr = v
    v = abs(pc - lo)
    if v > tr:
        tr = v
    if n > period:
        a = (a * (period - 1) + tr) / period  # Wilder smoothing, classic TA-Lib order
        return a, n, c, s, a
    s = s + tr
    if n == period:
        a = s / period
        return a, n + 1, c, s, a
    return _NAN, n + 1, c, s, a


_sma_step_nb = njit(cache=True)(_sma_step)
_ema_step_nb = njit(cache=True)(_ema_step)
_tr_step_nb = njit(cache=True)(_tr_step)
_atr_step_nb = njit(cache=True)(_atr_step)


@njit(cache=True)
def _sma_kernel(x, out, buf, fs, ist, period):
    n, pos, s, c = ist[0], ist[1], fs[0], fs[1]
    for i in range(x.shape[0]):
        out[i], n, pos, s, c = _sma_step_nb(x[i], buf, n, pos, s, c, period)
    ist[0], ist[1], fs[0], fs[1] = n, pos, s, c


@njit(cache=True)
def _ema_kernel(x, out, fs, ist, period, k):
    n, s, e = ist[0], fs[0], fs[1]
    for i in range(x.shape[0]):
        out[i], n, s, e = _ema_step_nb(x[i], n, s, e, period, k)
    ist[0], fs[0], fs[1] = n, s, e


@njit(cache=True)
def _tr_kernel(h, lo, c, out, fs, ist):
    n, pc = ist[0], fs[0]
    for i in range(h.shape[0]):
        out[i], n, pc = _tr_step_nb(h[i], lo[i], c[i], n, pc)
    ist[0], fs[0] = n, pc


@njit(cache=True)
def _atr_kernel(h, lo, c, out, fs, ist, period):
    n, pc, s, a = ist[0], fs[0], fs[1], fs[2]
    for i in range(h.shape[0]):
        out[i], n, pc, s, a = _atr_step_nb(h[i], lo[i], c[i], n, pc, s, a, period)
    ist[0], fs[0], fs[1], fs[2] = n, pc, s, a


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


# ---------------------------------------------------------------------- state classes

class SMAState(_State):
    """Incremental simple moving average (TA-Lib ``SMA``).

    ``SMA_t = mean(close_{t-period+1} .. close_t)``, kept as a ring buffer plus a
    Neumaier-compensated running sum, so it does not drift over long streams (TA-Lib's
    plain running sum agrees to ~1e-13 relative on real data).

    Parameters
    ----------
    period : int
        Window length in candles, >= 1. First valid output: the ``period``-th candle
        (index ``period - 1``); NaN before.

    Raises
    ------
    ValueError
        If ``period`` is not an int or is < 1.
    """

    _arrays = ("_buf", "_fs", "_ist")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period, "sma")
        self._buf = np.zeros(self.period, dtype=np.float64)  # ring of the last closes
        self._fs = np.zeros(2, dtype=np.float64)  # running sum, compensation
        self._ist = np.zeros(2, dtype=np.int64)  # count (saturating), ring position
        self._bind()

    def update(self, close: float) -> float:
        """Feed one closed candle's close (quote currency); return the SMA or NaN."""
        buf, fs, ist = self._views
        out, ist[0], ist[1], fs[0], fs[1] = _sma_step(
            float(close), buf, ist[0], ist[1], fs[0], fs[1], self.period
        )
        return out

    def update_many(self, close: np.ndarray) -> np.ndarray:
        """Feed a chunk of closes, shape (n,); return float64 SMA values, shape (n,)."""
        (x,) = _as_series(close)
        out = np.empty(x.shape[0], dtype=np.float64)
        _sma_kernel(x, out, self._buf, self._fs, self._ist, self.period)
        return out


class EMAState(_State):
    """Incremental exponential moving average (TA-Lib ``EMA``, default compatibility).

    ``k = 2 / (period + 1)``; seeded at index ``period - 1`` with the SMA of the first
    ``period`` closes (TA-Lib's seeding), then ``EMA_t = (close_t - EMA_{t-1}) * k +
    EMA_{t-1}``, in TA-Lib's operation order.

    Parameters
    ----------
    period : int
        >= 1. First valid output at index ``period - 1``; NaN before.

    Raises
    ------
    ValueError
        If ``period`` is not an int or is < 1.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period, "ema")
        self.k = 2.0 / (self.period + 1)
        self._fs = np.zeros(2, dtype=np.float64)  # seed sum, current EMA
        self._ist = np.zeros(1, dtype=np.int64)  # count, saturating at period
        self._bind()

    def update(self, close: float) -> float:
        """Feed one closed candle's close (quote currency); return the EMA or NaN."""
        fs, ist = self._views
        out, ist[0], fs[0], fs[1] = _ema_step(
            float(close), ist[0], fs[0], fs[1], self.period, self.k
        )
        return out

    def update_many(self, close: np.ndarray) -> np.ndarray:
        """Feed a chunk of closes, shape (n,); return float64 EMA values, shape (n,)."""
        (x,) = _as_series(close)
        out = np.empty(x.shape[0], dtype=np.float64)
        _ema_kernel(x, out, self._fs, self._ist, self.period, self.k)
        return out


class TrueRangeState(_State):
    """Incremental true range (Wilder 1978; TA-Lib ``TRANGE``).

    ``TR_t = max(high_t - low_t, |high_t - close_{t-1}|, |low_t - close_{t-1}|)`` in
    quote currency. The first candle has no previous close: NaN at index 0, valid from 1.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self) -> None:
        self._fs = np.zeros(1, dtype=np.float64)  # previous close
        self._ist = np.zeros(1, dtype=np.int64)  # count, saturating at 1
        self._bind()

    def update(self, high: float, low: float, close: float) -> float:
        """Feed one closed candle; return its true range or NaN (first candle)."""
        fs, ist = self._views
        out, ist[0], fs[0] = _tr_step(float(high), float(low), float(close), ist[0], fs[0])
        return out

    def update_many(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
        """Feed a chunk, arrays of shape (n,); return float64 true ranges, shape (n,)."""
        h, lo, c = _as_series(high, low, close)
        out = np.empty(h.shape[0], dtype=np.float64)
        _tr_kernel(h, lo, c, out, self._fs, self._ist)
        return out


class ATRState(_State):
    """Incremental average true range (Wilder 1978; TA-Lib ``ATR``).

    ``ATR_period = mean(TR_1 .. TR_period)``, then ``ATR_t = (ATR_{t-1} * (period - 1) +
    TR_t) / period``, in TA-Lib's operation order (see :class:`TrueRangeState` for TR).

    Parameters
    ----------
    period : int
        >= 1. First valid output at index ``period`` (TR needs a previous close); NaN
        before. ``period=1`` equals the true range from index 1.

    Raises
    ------
    ValueError
        If ``period`` is not an int or is < 1.
    """

    _arrays = ("_fs", "_ist")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period, "atr")
        self._fs = np.zeros(3, dtype=np.float64)  # previous close, seed sum, current ATR
        self._ist = np.zeros(1, dtype=np.int64)  # count, saturating at period + 1
        self._bind()

    def update(self, high: float, low: float, close: float) -> float:
        """Feed one closed candle (quote currency); return the ATR or NaN."""
        fs, ist = self._views
        out, ist[0], fs[0], fs[1], fs[2] = _atr_step(
            float(high), float(low), float(close), ist[0], fs[0], fs[1], fs[2], self.period
        )
        return out

    def update_many(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
        """Feed a chunk, arrays of shape (n,); return float64 ATR values, shape (n,)."""
        h, lo, c = _as_series(high, low, close)
        out = np.empty(h.shape[0], dtype=np.float64)
        _atr_kernel(h, lo, c, out, self._fs, self._ist, self.period)
        return out


# ---------------------------------------------------------------------------- batch

def sma(close: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average (TA-Lib ``SMA``); formula in :class:`SMAState`.

    Parameters
    ----------
    close : array_like, shape (n,)
        Closes in quote currency.
    period : int
        Window length in candles, >= 1.

    Returns
    -------
    np.ndarray
        float64, shape (n,), quote currency; NaN before index ``period - 1``.

    Raises
    ------
    ValueError
        Bad ``period``, or ``close`` not 1-D.
    """
    return SMAState(period).update_many(close)


def ema(close: np.ndarray, period: int) -> np.ndarray:
    """Exponential moving average (TA-Lib ``EMA``, SMA seed); formula in :class:`EMAState`.

    Parameters
    ----------
    close : array_like, shape (n,)
        Closes in quote currency.
    period : int
        >= 1; smoothing ``k = 2 / (period + 1)``.

    Returns
    -------
    np.ndarray
        float64, shape (n,), quote currency; NaN before index ``period - 1``.

    Raises
    ------
    ValueError
        Bad ``period``, or ``close`` not 1-D.
    """
    return EMAState(period).update_many(close)


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range (Wilder 1978; TA-Lib ``TRANGE``); formula in :class:`TrueRangeState`.

    Parameters
    ----------
    high, low, close : array_like, shape (n,)
        Candle prices in quote currency.

    Returns
    -------
    np.ndarray
        float64, shape (n,), quote currency; NaN at index 0.

    Raises
    ------
    ValueError
        Inputs not 1-D or of different lengths.
    """
    return TrueRangeState().update_many(high, low, close)


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Average true range (Wilder 1978; TA-Lib ``ATR``); formula in :class:`ATRState`.

    Parameters
    ----------
    high, low, close : array_like, shape (n,)
        Candle prices in quote currency.
    period : int
        Wilder smoothing period, >= 1.

    Returns
    -------
    np.ndarray
        float64, shape (n,), quote currency; NaN before index ``period``.

    Raises
    ------
    ValueError
        Bad ``period``, inputs not 1-D or of different lengths.
    """
    return ATRState(period).update_many(high, low, close)


# ----------------------------------------------------------------------------- bank

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
