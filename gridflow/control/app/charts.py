"""HoloViews charts of the control app (Bokeh backend; no Panel import).

Inputs are the plain dicts of :class:`~gridflow.control.app.state.ControlState`;
times are ms UTC, turned into ``datetime64[ms]`` for the axes.
"""

from __future__ import annotations

import itertools
from typing import Any

import holoviews as hv
import numpy as np

HEIGHT = 260
UP, DOWN = "#26a69a", "#ef5350"
MAX_POINTS = 2000
"""Points drawn of a curve: longer curves keep each bucket's lowest and highest point."""


def _dt(ts_ms: Any) -> np.ndarray:
    return np.asarray(ts_ms, dtype=np.int64).astype("datetime64[ms]")


def display_indices(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of the points to draw of a curve of ``values`` (n,): all of them up to
    ``max_points``, else the lowest and highest of each of ``max_points // 2`` equal
    buckets plus the last point, in order (the envelope of the curve is kept)."""
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    edges = np.linspace(0, n, max_points // 2 + 1).astype(np.int64)
    keep = [n - 1]
    for a, b in itertools.pairwise(edges):
        chunk = values[a:b]
        keep += [a + int(np.argmin(chunk)), a + int(np.argmax(chunk))]
    return np.unique(np.asarray(keep, dtype=np.int64))


def _curve_data(eq: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    equity = np.asarray(eq.get("equity", []), dtype=float)
    idx = display_indices(equity)
    ts = _dt(np.asarray(eq.get("ts_ms", []), dtype=np.int64)[idx])
    return (ts, equity[idx], -100.0 * np.asarray(eq.get("drawdown", []), dtype=float)[idx])


def equity_chart(eq: dict[str, np.ndarray], title: str = "Equity") -> hv.Curve:
    """Equity in quote currency (cash + unrealized PnL) over time.

    Parameters
    ----------
    eq : dict
        ``ts_ms`` (int64, n), ``equity`` (quote, n), ``drawdown`` (fraction >= 0, n),
        as :meth:`GridflowClient.equity` returns; empty for "no data yet".
    """
    ts, equity, _ = _curve_data(eq)
    return hv.Curve((ts, equity), "time", "equity").opts(
        title=title if ts.size else f"{title}: no snapshots yet", responsive=True,
        height=HEIGHT, tools=["hover"], color="#1f77b4", show_grid=True, framewise=True)


def drawdown_chart(eq: dict[str, np.ndarray], title: str = "Drawdown (%)") -> hv.Area:
    """Drawdown below the running equity peak, in percent (drawn negative)."""
    ts, _, dd = _curve_data(eq)
    return hv.Area((ts, dd), "time", "drawdown_pct").opts(
        title=title, responsive=True, height=HEIGHT * 3 // 4, color=DOWN, alpha=0.5,
        tools=["hover"], show_grid=True, framewise=True)


def candle_chart(candles: dict[str, np.ndarray], marks: list[dict[str, Any]],
                 symbol: str) -> hv.Overlay:
    """Candlesticks (wicks as segments, bodies as rectangles) with fill markers.

    Parameters
    ----------
    candles : dict
        ``ts_ms`` (open times, ms, n) and ``open``, ``high``, ``low``, ``close``
        (quote, n).
    marks : list of dict
        Fills: ``ts_ms``, ``price`` (quote), ``side`` and ``kind`` (``"entry"`` or
        ``"exit"``); entries are drawn as up triangles, exits as down triangles.
    """
    ts = np.asarray(candles.get("ts_ms", []), dtype=np.int64)
    if not ts.size:
        return hv.Overlay([hv.Curve([]).opts(title=f"{symbol or '-'}: no candles",
                                             responsive=True, height=HEIGHT)])
    o, h, lo, c = (np.asarray(candles[k], dtype=float) for k in ("open", "high", "low", "close"))
    step = int(np.median(np.diff(ts))) if ts.size > 1 else 3_600_000
    mid = _dt(ts + step // 2)
    half = np.timedelta64(int(step * 0.35), "ms")
    color = np.where(c >= o, UP, DOWN)
    wicks = hv.Segments((mid, lo, mid, h, color), ["time", "low", "time2", "high"], "color")
    bodies = hv.Rectangles((mid - half, np.minimum(o, c), mid + half, np.maximum(o, c), color),
                           ["time", "price", "time2", "price2"], "color")
    layers = [wicks.opts(color="color", line_width=1),
              bodies.opts(color="color", line_color="color", tools=["hover"])]
    for kind, marker, col in (("entry", "triangle", "#1565c0"),
                              ("exit", "inverted_triangle", "#ff8f00")):
        pts = [(m["ts_ms"], m["price"], m["side"]) for m in marks if m["kind"] == kind]
        if pts:
            t, p, s = zip(*pts)
            layers.append(hv.Scatter((_dt(t), np.asarray(p, float), list(s)), "time",
                                     ["price", "side"], label=kind).opts(
                marker=marker, size=11, color=col, tools=["hover"]))
    return hv.Overlay(layers).opts(title=f"{symbol}: candles, entries and exits",
                                   ylabel="price", responsive=True, height=HEIGHT + 120, show_grid=True,
                                   legend_position="top_left")


def compare_chart(curves: dict[str, dict[str, np.ndarray]]) -> hv.Overlay:
    """Equity curves of several runs overlaid, one colour per run id."""
    layers = [hv.Curve((_dt(eq.get("ts_ms", [])), np.asarray(eq.get("equity", []), float)),
                       "time", "equity", label=rid).opts(tools=["hover"])
              for rid, eq in curves.items()]
    if not layers:
        layers = [hv.Curve([], "time", "equity")]
    return hv.Overlay(layers).opts(title="Equity by run", responsive=True, height=HEIGHT + 60,
                                   show_grid=True, legend_position="top_left")
