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


def steps(start_ms: np.ndarray, width_ms: int, values: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """A step line: ``values[i]`` (n,) from ``start_ms[i]`` to ``start_ms[i] + width_ms``.

    Returns ``(x, y)``, (2n,) each, ``x`` as ``datetime64[ms]``; a NaN value leaves a
    gap (Bokeh breaks a line at NaN)."""
    start = np.asarray(start_ms, dtype=np.int64)
    x = np.column_stack([start, start + int(width_ms)]).ravel()
    return _dt(x), np.repeat(np.asarray(values, dtype=float), 2)


LEVEL, TP, STOP, ENTRY, EXIT = "#7e57c2", "#2e7d32", "#c62828", "#1565c0", "#ff8f00"


def _marks(marks: list[dict[str, Any]], kind: str, half_ms: int) -> hv.Scatter | None:
    pts = [m for m in marks if m["kind"] == kind]
    if not pts:
        return None
    marker, color = ("triangle", ENTRY) if kind == "entry" else ("inverted_triangle", EXIT)
    data = {"time": _dt([m["ts_ms"] + half_ms for m in pts]),
            "price": np.asarray([m["price"] for m in pts], float),
            "tag": [m["tag"] for m in pts], "side": [m["side"] for m in pts],
            "amount": np.asarray([m["amount"] for m in pts], float)}
    return hv.Scatter(data, "time", ["price", "tag", "side", "amount"], label=kind).opts(
        marker=marker, size=11, color=color, line_color="white", tools=["hover"])


def strategy_chart(data: Any) -> list[hv.Overlay]:
    """Candles with what the strategy did: grid levels, take profit, stop, entries,
    exits and its price-scale indicators; its other indicators in panels below.

    Parameters
    ----------
    data : ChartData
        :func:`gridflow.control.app.chart_data.build_chart`'s result.

    Returns
    -------
    list of holoviews.Overlay
        The price chart, then one panel per other indicator, all on a ``time`` axis
        (to be shown one under the other with linked axes). The price chart's legend
        labels: ``level``, ``take profit``, ``stop``, ``entry``, ``exit`` and the
        indicator names (``sma_24``); a click on one hides it.
    """
    bar = data.bar_ms
    mid = _dt(data.ts_ms + bar // 2)
    half = np.timedelta64(max(1, int(bar * 0.35)), "ms")
    color = np.where(data.close >= data.open, UP, DOWN)
    ohlc = {"time": mid, "low": data.low, "time2": mid, "high": data.high, "color": color}
    wicks = hv.Segments(ohlc, ["time", "low", "time2", "high"], "color")
    bodies = hv.Rectangles(
        {"time": mid - half, "bottom": np.minimum(data.open, data.close), "time2": mid + half,
         "top": np.maximum(data.open, data.close), "color": color, "open": data.open,
         "close": data.close, "high": data.high, "low": data.low},
        ["time", "bottom", "time2", "top"], ["color", "open", "high", "low", "close"])
    layers: list[Any] = [wicks.opts(color="color", line_width=1),
                         bodies.opts(color="color", line_color="color", tools=["hover"])]
    for j in range(data.levels.shape[1] if data.levels.size else 0):
        x, y = steps(data.ts_ms, bar, data.levels[:, j])  # one legend item for all
        layers.append(hv.Curve((x, y), "time", "price", label="level").opts(
            color=LEVEL, alpha=0.6, line_width=1, line_dash="dotted"))
    for name, values in data.overlays.items():
        layers.append(hv.Curve((mid, values), "time", "price", label=name).opts(line_width=1.5))
    for label, values, col, dash in (("take profit", data.take_profit, TP, "solid"),
                                     ("stop", data.stop, STOP, "dashed")):
        if np.isfinite(values).any():
            x, y = steps(data.line_ms, data.line_step_ms, values)
            layers.append(hv.Curve((x, y), "time", "price", label=label).opts(
                color=col, line_width=2, line_dash=dash))
    for kind in ("entry", "exit"):
        pts = _marks(data.marks, kind, data.candle_ms // 2)
        if pts is not None:
            layers.append(pts)
    title = f"{data.symbol}" + (f" · {data.strategy}" if data.strategy else "")
    price = hv.Overlay(layers).opts(
        title=title, xlabel="", ylabel="price", responsive=True, height=HEIGHT + 200,
        show_grid=True, ylim=price_range(data), legend_position="top", legend_cols=3,
        legend_opts={"click_policy": "hide"})
    panels = []
    for group, keys in _panel_groups(data.panels).items():
        curves = [hv.Curve((mid, data.panels[k]), "time", group, label=k.split(".")[-1])
                  for k in keys]
        panels.append(hv.Overlay(curves).opts(
            title=group, xlabel="", responsive=True, height=170, show_grid=True,
            show_legend=len(curves) > 1, legend_position="top_left"))
    return [price, *panels]


def price_range(data: Any) -> tuple[float, float]:
    """The price axis' first range: candles, levels and take profit, plus 4 % margins;
    the stop too unless it would stretch the range by more than half (a far stop
    would flatten the candles; the axis zooms out to it)."""
    core = [data.low, data.high, data.levels.ravel(), data.take_profit]
    lo = min(float(np.nanmin(a)) for a in core if np.isfinite(a).any())
    hi = max(float(np.nanmax(a)) for a in core if np.isfinite(a).any())
    if np.isfinite(data.stop).any():
        s_lo, s_hi = float(np.nanmin(data.stop)), float(np.nanmax(data.stop))
        if max(hi, s_hi) - min(lo, s_lo) <= 1.5 * (hi - lo):
            lo, hi = min(lo, s_lo), max(hi, s_hi)
    pad = 0.04 * (hi - lo) or 0.01 * abs(hi) or 1.0
    return lo - pad, hi + pad


def _panel_groups(panels: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Indicator outputs grouped by indicator (``adx_14.adx``, ``adx_14.plus_di`` ->
    ``adx_14``)."""
    out: dict[str, list[str]] = {}
    for k in panels:
        out.setdefault(k.split(".")[0], []).append(k)
    return out


def compare_chart(curves: dict[str, dict[str, np.ndarray]]) -> hv.Overlay:
    """Equity curves of several runs overlaid, one colour per run id."""
    layers = [hv.Curve((_dt(eq.get("ts_ms", [])), np.asarray(eq.get("equity", []), float)),
                       "time", "equity", label=rid).opts(tools=["hover"])
              for rid, eq in curves.items()]
    if not layers:
        layers = [hv.Curve([], "time", "equity")]
    return hv.Overlay(layers).opts(title="Equity by run", responsive=True, height=HEIGHT + 60,
                                   show_grid=True, legend_position="top_left")
