"""What the Backtest page's strategy chart draws, as plain arrays (no Panel, no HoloViews).

For one symbol of a finished replay, what its strategy saw and did (freqtrade's
``plot-dataframe``, on gridflow's own rules):

* the candles of the run's window, thinned to at most :data:`MAX_BARS` bars by OHLC
  aggregation (first open, highest high, lowest low and last close of ``per_bar``
  consecutive candles);
* the indicators the strategy reads
  (:func:`~gridflow.operators.strategies.strategy_indicators`), computed by the engine's
  :class:`~gridflow.operators.indicators.IndicatorBank` on the same candles, the run's
  warm-up candles included; price-scale ones over the candles, the others in panels;
* the grid levels the strategy quoted, by the engine's quote functions
  (:data:`~gridflow.operators.strategies.STRATEGIES`): the prices resting during each
  candle (decided at the previous close), before the risk gate (a kill switch, a pause
  or a denial can keep a quoted level from resting);
* the take profit and the stop while a position was open: the quoted take profit and
  the account kernel's stop rule (``avg_entry * (1 - side * sl_frac)``, or the tighter
  trailing stop ``best - side * trail``), the average entry from the journal's fills;
* entries and exits from the journal's fills and their orders' tags (``L0``.. entries,
  ``TP``, ``SL``, ``TRAIL``, ``FLIP``, ``FLATTEN`` exits).

Prices are in quote currency, times ms UTC (candle open times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridflow.config.models import AccountConfig
from gridflow.indicator_names import parse_name

MAX_BARS = 2000
"""Bars drawn per symbol: longer windows aggregate consecutive candles into one bar."""
MAX_LINE_POINTS = 20_000
"""Candles in a position drawn one by one for the take profit and stop lines; above it
they are drawn per bar (the last value of each bar)."""
PRICE_KINDS = frozenset({"sma", "ema", "wma", "bbands", "donchian"})
"""Indicator kinds in quote currency at the price's level (the supertrend's ``value``
output too); the others (ATR, ADX, RSI, ...) are drawn in panels below the candles."""


@dataclass(frozen=True)
class ChartData:
    """One symbol's strategy chart.

    Attributes
    ----------
    symbol, strategy : str
        The symbol and its strategy's label (``grid_atr (long)``; ``""`` if the
        account does not trade the symbol).
    candle_ms, per_bar : int
        One candle's duration (ms) and candles per bar (1: no aggregation).
    candles : int
        Candles of the window.
    ts_ms, open, high, low, close : np.ndarray
        (b,) bar open times (int64 ms) and OHLC (quote).
    overlays, panels : dict of str to np.ndarray
        Indicator output name -> (b,) value at each bar's last candle with one (NaN
        in warm-up); ``overlays`` at the price's scale.
    levels : np.ndarray
        (b, L) level prices resting during each bar's last candle that quoted any
        (NaN: none); L = 0 without a strategy.
    line_ms : np.ndarray
        (m,) start times of the take profit and stop steps; each lasts ``line_step_ms``.
    take_profit, stop : np.ndarray
        (m,) prices resting while a position was open, NaN where none.
    line_step_ms : int
        ``candle_ms`` (one step per candle) or the bar's duration (thinned).
    marks : list of dict
        Fills: ``ts_ms`` (open time of the candle it happened in), ``price`` (after
        slippage), ``amount``, ``side`` (buy / sell), ``tag`` and ``kind`` (``entry``
        or ``exit``).
    """

    symbol: str
    strategy: str
    candle_ms: int
    per_bar: int
    candles: int
    ts_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    overlays: dict[str, np.ndarray] = field(default_factory=dict)
    panels: dict[str, np.ndarray] = field(default_factory=dict)
    levels: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    line_ms: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    take_profit: np.ndarray = field(default_factory=lambda: np.empty(0))
    stop: np.ndarray = field(default_factory=lambda: np.empty(0))
    line_step_ms: int = 0
    marks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bar_ms(self) -> int:
        """One bar's duration, ms."""
        return self.candle_ms * self.per_bar


def bar_starts(n: int, max_bars: int = MAX_BARS) -> np.ndarray:
    """First candle index of each bar when ``n`` candles make at most ``max_bars`` bars
    of ``ceil(n / max_bars)`` candles each (the last one may be shorter)."""
    if n <= 0:
        return np.empty(0, np.int64)
    k = max(1, math.ceil(n / max(1, max_bars)))
    return np.arange(0, n, k, dtype=np.int64)


def aggregate_ohlc(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
                   starts: np.ndarray) -> tuple[np.ndarray, ...]:
    """OHLC of the bars beginning at ``starts`` (from :func:`bar_starts`): first open,
    highest high, lowest low, last close of each bar's candles."""
    ends = np.append(starts[1:], len(c)) - 1
    return (o[starts], np.maximum.reduceat(h, starts), np.minimum.reduceat(lo, starts),
            c[ends])


def bar_last(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per bar, the last non-NaN value of ``values`` (n,) or (n, L) among the bar's
    candles (column by column), NaN if the bar has none."""
    v = np.asarray(values, dtype=float)
    two_d = v.ndim == 2
    v2 = v if two_d else v[:, None]
    if not len(starts):
        return np.empty((0, v2.shape[1]) if two_d else 0)
    idx = np.where(np.isnan(v2), -1, np.arange(len(v2))[:, None])
    last = np.maximum.reduceat(idx, starts, axis=0)
    ok = last >= starts[:, None]
    out = np.where(ok, np.take_along_axis(v2, np.maximum(last, 0), axis=0), np.nan)
    return out if two_d else out[:, 0]


def valid_candles(c: dict[str, np.ndarray]) -> np.ndarray:
    """Indices of the rows the engine's validation keeps, roughly: positive finite
    prices and strictly increasing open times (duplicates and rows out of order go)."""
    ts = np.asarray(c["ts"], dtype=np.int64)
    prices = np.column_stack([np.asarray(c[k], dtype=float)
                              for k in ("open", "high", "low", "close")])
    ok = (ts >= 0) & np.isfinite(prices).all(axis=1) & (prices > 0).all(axis=1)
    idx = np.flatnonzero(ok)
    if idx.size:
        run_max = np.maximum.accumulate(ts[idx])
        keep = np.ones(idx.size, bool)
        keep[1:] = ts[idx][1:] > run_max[:-1]
        idx = idx[keep]
    return idx


def _is_price(output: str) -> bool:
    spec = parse_name(output.split(".")[0])
    return spec.kind in PRICE_KINDS or output.endswith(".value")


def _resting(x: np.ndarray) -> np.ndarray:
    """Quotes decided at close ``i`` rest during candle ``i + 1``: shift by one."""
    x = np.asarray(x, dtype=float)
    out = np.full_like(x, np.nan)
    out[1:] = x[:-1]
    return out


def position_lines(ts: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray,
                   c: np.ndarray, fills: list[dict[str, Any]], sl_frac: float,
                   take_profit: np.ndarray, trail: np.ndarray,
                   stop_dist: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Take profit and stop resting during each candle a position was open.

    Parameters
    ----------
    ts, o, h, lo, c : np.ndarray
        (n,) candle open times (ms) and OHLC (quote) of one symbol.
    fills : list of dict
        That symbol's fills in journal order, each with ``ts_ms`` (its candle's open
        time), ``price`` (quote), ``amount`` (base, > 0), ``side`` and ``kind``
        (``entry`` / ``exit``; an exit closes the whole position).
    sl_frac : float
        Stop distance from the average entry (fraction).
    take_profit, trail : np.ndarray
        (n,) quoted take profit and trailing distance (quote) resting during each
        candle, NaN for none.
    stop_dist : np.ndarray, optional
        (n,) resting k x ATR stop distance (quote), NaN for none (the strategy's
        ``sl_atr``); None = no ATR stop.

    Returns
    -------
    (np.ndarray, np.ndarray)
        (n,) take profit and stop, NaN while flat. The average entry, the best price
        and the stop are the account kernel's own functions run over the fills
        (:func:`~gridflow.operators.position.book_entry`,
        :func:`~gridflow.operators.candle_close.raise_best`, ``grid_kernel._stop``):
        ``avg * (1 - d * sl_frac)`` after the candle's entries, or ``best - d * trail``
        when tighter.
    """
    from gridflow.operators import grid_kernel as gk
    from gridflow.operators import kernel_layout as kl
    from gridflow.operators.candle_close import raise_best
    from gridflow.operators.position import book_entry, end_cycle

    n = len(ts)
    tp_out, stop_out = np.full(n, np.nan), np.full(n, np.nan)
    by_candle: dict[int, list[dict[str, Any]]] = {}
    cand = np.searchsorted(ts, [int(f["ts_ms"]) for f in fills], side="right") - 1
    for f, i in zip(fills, cand):
        if 0 <= i < n:
            by_candle.setdefault(int(i), []).append(f)
    # one symbol's kernel state: the average entry, the best price and the stop come from
    # the kernel's own rules (book_entry, raise_best, _stop), not a copy of them
    sf, si = np.zeros((1, kl.SF_W)), np.zeros((1, kl.SI_W), np.int64)
    af, pf, mp = np.zeros(kl.AF_W), np.zeros(kl.P_W), np.zeros((1, kl.M_W))
    mp[0, kl.M_SL] = sl_frac

    def mark(i: int) -> None:
        sf[0, kl.SF_TRAIL] = trail[i]
        tp_out[i], stop_out[i] = take_profit[i], gk._stop(0, sf, si, mp)[0]

    for i in range(n) if by_candle else ():
        fl = by_candle.get(i, ())
        if sf[0, kl.SF_AMT] == 0.0 and not fl:
            continue
        si[0, kl.SI_OPENED_NOW] = 0
        sf[0, kl.SF_STOP_Q] = np.nan if stop_dist is None else stop_dist[i]
        for f in fl:
            if f["kind"] == "entry":
                d = 1 if f["side"] == "buy" else -1
                if book_entry(0, int(f["ts_ms"]), d, float(f["amount"]), float(f["price"]),
                              0.0, 0.0, sf, si, af):
                    si[0, kl.SI_OPENED_NOW] = 1
            elif sf[0, kl.SF_AMT] > 0.0:  # the exit closes the cycle
                mark(i)
                end_cycle(0, 0, sf, si, pf)
        if sf[0, kl.SF_AMT] == 0.0:
            continue
        mark(i)
        raise_best(0, o[i], h[i], lo[i], c[i], sf, si)
    return tp_out, stop_out


def build_chart(account: AccountConfig | None, symbol: str, candles: dict[str, np.ndarray],
                start_ms: int | None, end_ms: int | None, fills: list[dict[str, Any]],
                tags: dict[str, str], *, timeframe: str | None = None, warmup: int = 0,
                price_tick: float = 0.0, max_bars: int = MAX_BARS) -> ChartData | None:
    """The chart of ``symbol`` in a finished run.

    Parameters
    ----------
    account : AccountConfig or None
        The run's account trading ``symbol`` (None: candles and fills only).
    symbol : str
    candles : dict
        The symbol's candle file (:func:`~gridflow.data.candle_files.read_candle_file`).
    start_ms, end_ms : int or None
        The run's window ``[start_ms, end_ms)`` (None: open).
    fills : list of dict
        The run's fills (``read_fills`` rows; other symbols are skipped).
    tags : dict
        ``client_order_id`` -> order tag (``read_orders``).
    timeframe : str, optional
        The candles' timeframe (needed by ``@tf`` and volatility indicators).
    warmup : int
        The run's ``warmup_candles``: candles before ``start_ms`` fed to indicators.
    price_tick : float
        The symbol's price increment (quote; 0: no rounding), as the engine's.
    max_bars : int

    Returns
    -------
    ChartData or None
        None when no valid candle lies in the window.
    """
    keep = valid_candles(candles)
    ts_all = candles["ts"][keep]
    lo_ms = -1 if start_ms is None else start_ms
    hi_ms = 2**62 if end_ms is None else end_ms
    inside = np.flatnonzero((ts_all >= lo_ms) & (ts_all < hi_ms))
    if not inside.size:
        return None
    warm = min(int(warmup), int(inside[0]))
    rows = keep[inside[0] - warm: inside[-1] + 1]
    ts = np.asarray(candles["ts"][rows], dtype=np.int64)
    o, h, lo, c = (np.asarray(candles[k][rows], dtype=float)
                   for k in ("open", "high", "low", "close"))
    step = int(np.median(np.diff(ts))) if ts.size > 1 else 3_600_000
    params = account.assignment([symbol]).get(symbol) if account is not None else None
    values: dict[str, np.ndarray] = {}
    levels = np.empty((len(ts), 0))
    tp_q = trail_q = stop_q = np.full(len(ts), np.nan)
    if params is not None:
        from gridflow.operators.indicators import IndicatorBank
        from gridflow.operators.strategies import (
            FUNDING_RATE,
            INPUTS,
            STRATEGIES,
            strategy_indicators,
        )

        vol = candles.get("volume")
        values = IndicatorBank(strategy_indicators(account, params), timeframe).update(
            ts, o, h, lo, c, None if vol is None else np.asarray(vol[rows], dtype=float))
        inputs = values
        if FUNDING_RATE in INPUTS[params.name](params):  # no funding series here: the
            inputs = {**values, FUNDING_RATE: np.full(len(ts), np.nan)}  # fills only
        q = STRATEGIES[params.name][1](params, inputs, price_tick)
        levels = _resting(q.levels)
        tp_q, trail_q, stop_q = _resting(q.take_profit), _resting(q.trail), _resting(q.stop)
    marks = [
        {"ts_ms": int(f["ts_ms"]), "price": float(f["price"]), "amount": float(f["amount"]),
         "side": f["side"], "tag": tags.get(f["client_order_id"], ""),
         "kind": "entry" if tags.get(f["client_order_id"], "").startswith("L") else "exit"}
        for f in fills if f["symbol"] == symbol and f["amount"] > 0
        and ts[0] <= f["ts_ms"] < ts[-1] + step
    ]
    tp, stop = position_lines(ts, o, h, lo, c, marks, params.sl_frac if params else 0.0,
                              tp_q, trail_q, stop_q)
    w = slice(warm, None)  # the window, warm-up dropped
    ts, o, h, lo, c, tp, stop, levels = ts[w], o[w], h[w], lo[w], c[w], tp[w], stop[w], levels[w]
    starts = bar_starts(len(ts), max_bars)
    bo, bh, bl, bc = aggregate_ohlc(o, h, lo, c, starts)
    per_bar = int(starts[1] - starts[0]) if starts.size > 1 else 1
    overlays = {k: bar_last(v[w], starts) for k, v in values.items() if _is_price(k)}
    panels = {k: bar_last(v[w], starts) for k, v in values.items()
              if not _is_price(k) and not k.endswith(".direction")}
    in_pos = int(np.count_nonzero(~np.isnan(stop)))
    if in_pos <= MAX_LINE_POINTS:
        line_ms, line_step = ts, step
    else:
        tp, stop = bar_last(tp, starts), bar_last(stop, starts)
        line_ms, line_step = ts[starts], step * per_bar
    marks = [m for m in marks if m["ts_ms"] >= ts[0]]
    label = ""
    if params is not None:
        side = getattr(params, "side", None)
        label = f"{params.name}{f' ({side})' if side else ''}"
    return ChartData(symbol=symbol, strategy=label, candle_ms=step, per_bar=per_bar,
                     candles=len(ts), ts_ms=ts[starts], open=bo, high=bh, low=bl, close=bc,
                     overlays=overlays, panels=panels, levels=bar_last(levels, starts),
                     line_ms=line_ms, take_profit=tp, stop=stop, line_step_ms=line_step,
                     marks=marks)
