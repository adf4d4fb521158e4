"""The Sweeps page: stored parameter sweeps and walk-forward runs, read-only.

Data shaping is in pure functions of the frames of
:func:`~gridflow.journal.sweep_store.read_results` (:func:`slice_frame`,
:func:`heatmap_frame`, :func:`top_frame`, :func:`is_oos_frame`); :class:`SweepsView`
holds the selection and :func:`sweeps_page` lays it out. Nothing here writes to the
database or launches work, so guests see the same page as users.

"Best" means the largest value, except for the metrics of :data:`LOWER_IS_BETTER`
(drawdown, losing streak, fees, funding) where it is the smallest.
"""

from __future__ import annotations

from html import escape
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from gridflow.control.app.views import fmt, iso
from gridflow.journal.schema import open_store
from gridflow.journal.sweep_store import METRICS, list_sweeps, param_names, read_results, read_wfo

#: Metrics whose best value is the smallest.
LOWER_IS_BETTER = frozenset({"max_drawdown", "max_consecutive_losses", "fees", "funding"})
HEIGHT = 420
TOP_N = 20
#: Summary fields shown under the grade: label -> report keys tried in order.
SUMMARY_FIELDS = (("DSR", ("dsr", "deflated_sharpe")),
                  ("MC p-value", ("mc_p_value", "mc_pvalue", "p_value")),
                  ("consistency", ("consistency",)),
                  ("OOS/IS ratio", ("oos_is_ratio", "wfe", "walk_forward_efficiency")),
                  ("stability", ("stability", "param_stability")))
NO_SWEEP = "No sweep stored yet."


# ---- data shaping (pure) -------------------------------------------------------------
def best_of(metric: str) -> str:
    """``"min"`` for :data:`LOWER_IS_BETTER` metrics, else ``"max"``."""
    return "min" if metric in LOWER_IS_BETTER else "max"


def slice_frame(df: pd.DataFrame, phase: str, window: int | None = None) -> pd.DataFrame:
    """One row per ``(symbol, combo_id)`` of a phase.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows of :func:`~gridflow.journal.sweep_store.read_results`.
    phase : {"full", "is", "oos"}
    window : int, optional
        Keep this window; None averages the metrics over the windows (``window`` is
        then -1). A plain sweep has one row per combination already.

    Returns
    -------
    pandas.DataFrame
        Same columns as ``df``, sorted by ``(symbol, combo_id)``; ``attrs["params"]``
        kept.
    """
    params = param_names(df)
    sel = df[df["phase"] == phase]
    if window is not None:
        sel = sel[sel["window"] == window]
    elif sel["window"].nunique() > 1:
        metrics = [m for m in METRICS if m in sel.columns]
        agg = {c: "first" for c in sel.columns if c not in ("symbol", "combo_id", *metrics)}
        agg.update({m: "mean" for m in metrics})
        sel = sel.groupby(["symbol", "combo_id"], sort=True).agg(agg).reset_index()
        sel = sel.assign(window=-1)[list(df.columns)]
    out = sel.sort_values(["symbol", "combo_id"], kind="stable").reset_index(drop=True)
    out.attrs["params"] = params
    return out


def heatmap_frame(df: pd.DataFrame, x: str, y: str, metric: str) -> pd.DataFrame:
    """Best ``metric`` (see :func:`best_of`) over the other parameters per ``(x, y)``.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per combination (e.g. from :func:`slice_frame`).
    x, y : str
        Two different parameter columns.
    metric : str

    Returns
    -------
    pandas.DataFrame
        Columns ``x, y, metric`` (float), one row per pair, sorted by ``(x, y)``.
        NaN is skipped; a pair with only NaN gives NaN.
    """
    if x == y:
        raise ValueError(f"heatmap needs two different parameters, got {x!r} twice")
    vals = df[[x, y]].assign(**{metric: df[metric].astype("float64")})
    out = vals.groupby([x, y], sort=True, dropna=False)[metric].agg(best_of(metric))
    return out.reset_index().sort_values([x, y], kind="stable").reset_index(drop=True)


def top_frame(df: pd.DataFrame, metric: str, n: int = TOP_N) -> pd.DataFrame:
    """The ``n`` best combinations by ``metric``, best first (NaN last).

    Returns
    -------
    pandas.DataFrame
        Parameter columns, ``metric``, the other metrics, ``combo_id`` (and
        ``symbol``/``window`` when ``df`` holds several); ties keep ``df`` order.
    """
    params = param_names(df)
    order = df.sort_values(metric, ascending=metric in LOWER_IS_BETTER, na_position="last",
                           kind="stable")
    rest = [m for m in METRICS if m in df.columns and m != metric]
    extra = [c for c in ("symbol", "window") if c in df.columns and df[c].nunique() > 1]
    out = order.head(n)[[*params, metric, *rest, "combo_id", *extra]].reset_index(drop=True)
    out.attrs["params"] = params
    return out


def is_oos_frame(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """In-sample against out-of-sample ``metric`` of the same combination and window.

    Returns
    -------
    pandas.DataFrame
        Columns ``symbol, window, combo_id``, the parameters, ``is_<metric>`` and
        ``oos_<metric>``: the ``"is"`` and ``"oos"`` rows inner-joined on
        ``(symbol, window, combo_id)``, sorted by that key.
    """
    keys = ["symbol", "window", "combo_id"]
    params = param_names(df)
    ins = df[df["phase"] == "is"][keys + params + [metric]]
    oos = df[df["phase"] == "oos"][keys + [metric]]
    out = ins.rename(columns={metric: f"is_{metric}"}).merge(
        oos.rename(columns={metric: f"oos_{metric}"}), on=keys, how="inner")
    out = out.sort_values(keys, kind="stable").reset_index(drop=True)
    out.attrs["params"] = params
    return out


def windows_table(windows: pd.DataFrame | None, symbol: str | None) -> pd.DataFrame:
    """Walk-forward windows of a symbol for display: ISO dates (UTC), regime, picked
    parameters, IS/OOS Sharpe, OOS net PnL (quote) and drawdown (fraction)."""
    if windows is None or windows.empty:
        return pd.DataFrame([{"window": "no walk-forward windows stored"}])
    params = param_names(windows)
    rows = [{"window": r["window"], "IS from": iso(r["is_start_ms"]), "IS to": iso(r["is_end_ms"]),
             "OOS from": iso(r["oos_start_ms"]), "OOS to": iso(r["oos_end_ms"]),
             "regime": r["regime"], "best params": ", ".join(f"{p}={fmt(r[p])}" for p in params),
             "IS Sharpe": fmt(r["is_sharpe"]), "OOS Sharpe": fmt(r["oos_sharpe"]),
             "OOS net PnL": fmt(r["oos_net_pnl"]), "OOS max DD": fmt(r["oos_max_drawdown"])}
            for r in windows[windows["symbol"] == symbol].to_dict("records")]
    return pd.DataFrame(rows or [{"window": f"no windows for {symbol}"}])


def summary_html(summary: dict[str, Any]) -> str:
    """The grade letter (big) and the walk-forward summary numbers."""
    if not summary:
        return '<div class="gf-sweep-nosummary">No walk-forward summary for this symbol.</div>'
    shown, lines = {"grade", "grade_score", "grade_points"}, []
    for label, keys in SUMMARY_FIELDS:
        key = next((k for k in keys if k in summary), None)
        if key is not None:
            shown.add(key)
            lines.append((label, summary[key]))
    lines += [(k, v) for k, v in summary.items() if k not in shown]
    cells = "".join(f"<tr><td>{escape(str(k))}</td><td><b>{escape(fmt(v))}</b></td></tr>"
                    for k, v in lines if len(fmt(v)) <= 120)  # no configs dumped here
    score = ("" if summary.get("grade_score") is None
             else f", {escape(fmt(summary['grade_score']))} / 100 points")
    return (f'<div class="gf-sweep-grade" style="font-size:72px;font-weight:700;'
            f'line-height:1">{escape(str(summary.get("grade", "?")))}</div>'
            f'<div style="color:#666">grade{score}</div>'
            f'<table class="gf-sweep-summary">{cells}</table>')


# ---- charts --------------------------------------------------------------------------
def _label(v: Any) -> str:
    return f"{v:.10g}" if isinstance(v, (float, np.floating)) else str(v)


def _empty(title: str) -> hv.HeatMap:
    return hv.HeatMap([], ["x", "y"], "value").opts(title=title, responsive=True, height=HEIGHT)


def heatmap_chart(df: pd.DataFrame | None, x: str | None, y: str | None,
                  metric: str) -> hv.HeatMap:
    """HeatMap of :func:`heatmap_frame`: categorical axes in sorted order, named after
    the parameters; hover shows the value; non-finite cells are blank."""
    if df is None or df.empty:
        return _empty("no results")
    if not x or not y or x == y:
        return _empty("pick two different parameters for X and Y")
    hm = heatmap_frame(df, x, y, metric)
    xs = [_label(v) for v in hm[x].drop_duplicates()]
    ys = [_label(v) for v in hm[y].drop_duplicates().sort_values()]
    vals = hm[metric].where(np.isfinite(hm[metric]))
    data = pd.DataFrame({x: hm[x].map(_label), y: hm[y].map(_label), metric: vals})
    cmap = "RdYlGn_r" if metric in LOWER_IS_BETTER else "RdYlGn"
    return hv.HeatMap(data, [x, y], metric).redim.values(**{x: xs, y: ys}).opts(
        title=f"{metric}: {best_of(metric)} over the other parameters", xlabel=x, ylabel=y,
        tools=["hover"], colorbar=True, cmap=cmap, responsive=True, height=HEIGHT,
        line_color="white", xrotation=0)


def is_oos_chart(df: pd.DataFrame | None, metric: str) -> hv.Overlay:
    """Scatter of in-sample (x) against out-of-sample (y) ``metric``, one point per
    combination and window, with the line OOS = IS."""
    pairs = is_oos_frame(df, metric) if df is not None and not df.empty else None
    xcol, ycol = f"is_{metric}", f"oos_{metric}"
    if pairs is not None:
        pairs = pairs[np.isfinite(pairs[xcol]) & np.isfinite(pairs[ycol])]
    if pairs is None or pairs.empty:
        points = hv.Scatter([], xcol, ycol)
    else:
        vdims = [ycol, "window", "combo_id", *param_names(pairs)]
        points = hv.Scatter(pairs, xcol, vdims).opts(color="window", cmap="viridis",
                                                     colorbar=True, size=6, alpha=0.7)
    return (points.opts(tools=["hover"]) * hv.Slope(1, 0).opts(
        color="grey", line_dash="dashed")).opts(
        title=f"{metric}: in-sample vs out-of-sample", xlabel=f"IS {metric}",
        ylabel=f"OOS {metric}", responsive=True, height=HEIGHT, show_grid=True)


# ---- state ---------------------------------------------------------------------------
class SweepsView(param.Parameterized):
    """Selection of the Sweeps page for one browser session (reads only).

    Parameters
    ----------
    db_url : str
        Journal URL holding the sweep tables.
    """

    sweep_id = param.Selector(default=None, objects=[], allow_None=True)
    symbol = param.Selector(default=None, objects=[], allow_None=True)
    slice = param.Selector(default=None, objects=[], allow_None=True, doc="Window / phase.")
    metric = param.Selector(default="sharpe", objects=list(METRICS))
    x = param.Selector(default=None, objects=[], allow_None=True)
    y = param.Selector(default=None, objects=[], allow_None=True)
    kind = param.String(default="", doc="'sweep', 'wfo' or '' (none selected).")
    info = param.String(default=NO_SWEEP, doc="Markdown line about the sweep.")
    frame = param.DataFrame(default=None, allow_None=True, doc="One row per combination.")
    pairs = param.DataFrame(default=None, allow_None=True, doc="IS and OOS rows (wfo).")
    windows = param.DataFrame(default=None, allow_None=True)
    summary = param.Dict(default={})

    def __init__(self, db_url: str, **params: Any) -> None:
        super().__init__(**params)
        self.db_url, self._engine, self._loading = db_url, None, False
        self._sweeps: dict[str, dict[str, Any]] = {}
        self._results = pd.DataFrame()
        self._wfo: tuple[pd.DataFrame | None, dict[str, dict[str, Any]]] = (None, {})
        self._slices: dict[str, tuple[str, int | None]] = {}  # label -> (phase, window)

    def _db(self) -> Any:
        if self._engine is None:
            self._engine = open_store(self.db_url)
        return self._engine

    def close(self) -> None:
        """Release the connection pool."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def reload(self) -> None:
        """Re-read the stored sweeps and the selected one (the newest by default)."""
        try:
            sweeps = list_sweeps(self._db())
        except Exception as exc:  # noqa: BLE001 - show why instead of failing the page
            self.info = f"⚠ sweeps unreadable: {escape(type(exc).__name__)}: {escape(str(exc))}"
            return
        self._sweeps = {s["sweep_id"]: s for s in sweeps}
        self.param.sweep_id.objects = {
            f"{s['sweep_id']} · {s['kind']} · {s['strategy']} · {s['n_combos']} combos":
                s["sweep_id"] for s in sweeps}
        keep = self.sweep_id in self._sweeps
        sid = self.sweep_id if keep else (sweeps[0]["sweep_id"] if sweeps else None)
        if keep or sid is None:
            self._load()
        self.sweep_id = sid

    @param.depends("sweep_id", watch=True)
    def _load(self) -> None:
        sid = self.sweep_id
        meta = self._sweeps.get(sid) if sid is not None else None
        try:
            results = read_results(self._db(), sid) if meta else pd.DataFrame()
            wfo = read_wfo(self._db(), sid) if meta and meta["kind"] == "wfo" else (None, {})
        except Exception as exc:  # noqa: BLE001 - show why instead of failing the page
            meta, info = None, f"⚠ sweep {escape(str(sid))} unreadable: {escape(str(exc))}"
        else:
            info = NO_SWEEP if meta is None else (
                f"`{escape(sid)}` · {meta['kind']} · {escape(meta['strategy'])} · "
                f"{meta['n_combos']} combos · {len(results)} results · "
                f"**{escape(meta['status'])}** · created {iso(meta['created_at_ms'])} UTC · "
                f"{meta['elapsed_s']:.1f} s")
        if meta is None:
            self._results, self._wfo, self._slices = pd.DataFrame(), (None, {}), {}
            self.param.update(kind="", info=info, frame=None, pairs=None, windows=None,
                              summary={})
            return
        params = param_names(results)
        symbols = sorted(results["symbol"].unique()) or list(meta["symbols"])
        slices = {"full": ("full", None)}
        if meta["kind"] == "wfo":
            slices = {f"{ph.upper()} · mean over windows": (ph, None) for ph in ("is", "oos")}
            for w in sorted(results.loc[results["window"] >= 0, "window"].unique()):
                slices.update({f"{ph.upper()} · window {w}": (ph, int(w)) for ph in ("is", "oos")})
        self._results, self._wfo, self._slices = results, wfo, slices
        x = self.x if self.x in params else next(iter(params), None)
        y = self.y if self.y in params and self.y != x else next(
            (p for p in params if p != x), None)
        self._loading = True
        try:
            self.param.symbol.objects, self.param.slice.objects = symbols, list(slices)
            self.param.x.objects = self.param.y.objects = params
            self.param.update(
                symbol=self.symbol if self.symbol in symbols else next(iter(symbols), None),
                slice=self.slice if self.slice in slices else next(iter(slices)),
                x=x, y=y, kind=meta["kind"], info=info)
        finally:
            self._loading = False
        self._select()

    @param.depends("symbol", "slice", watch=True)
    def _select(self) -> None:
        if self._loading:
            return
        res = self._results
        if res.empty or self.symbol is None or self.slice not in self._slices:
            self.param.update(frame=None, pairs=None, windows=None, summary={})
            return
        phase, window = self._slices[self.slice]
        mine = res[res["symbol"] == self.symbol]
        mine.attrs["params"] = param_names(res)
        pairs = None
        if self.kind == "wfo":
            pairs = mine if window is None else mine[mine["window"] == window]
        windows, summaries = self._wfo
        self.param.update(frame=slice_frame(mine, phase, window), pairs=pairs,
                          windows=windows, summary=summaries.get(self.symbol, {}))


# ---- page ----------------------------------------------------------------------------
HEATMAP_NOTE = ("Each cell is the **best over the other parameters** (the maximum; the "
                "minimum for drawdown, losing streak, fees and funding). Walk-forward "
                "slices “mean over windows” average each combination's metrics over the "
                "windows first.")


def sweeps_page(state: Any) -> pn.viewable.Viewable:
    """The Sweeps tab: pickers, heatmap, top combinations and, for walk-forward runs,
    the IS/OOS scatter, the windows and the graded summary.

    Parameters
    ----------
    state : ControlState
        Only its ``db_url`` is used; the page reads and never acts.
    """
    view = SweepsView(state.db_url)
    view.reload()
    if pn.state.curdoc is not None and pn.state.curdoc.session_context:
        pn.state.on_session_destroyed(lambda _ctx: view.close())
    reload = pn.widgets.Button(name="Reload", width=100)
    reload.on_click(lambda _e: view.reload())

    def select(p: Any, name: str, css: str, width: int = 180) -> pn.widgets.Select:
        return pn.widgets.Select.from_param(p, name=name, width=width, css_classes=[css])

    wfo = pn.Column(
        "### Walk-forward",
        pn.Row(pn.pane.HTML(pn.bind(summary_html, view.param.summary), width=260,
                            css_classes=["gf-sweep-wfo-summary"]),
               pn.pane.HoloViews(pn.bind(is_oos_chart, view.param.pairs, view.param.metric),
                                 sizing_mode="stretch_width", linked_axes=False,
                                 css_classes=["gf-sweep-scatter"]),
               sizing_mode="stretch_width"),
        pn.pane.DataFrame(pn.bind(windows_table, view.param.windows, view.param.symbol),
                          index=False, sizing_mode="stretch_width",
                          css_classes=["gf-sweep-windows"]),
        visible=pn.bind(lambda k: k == "wfo", view.param.kind), sizing_mode="stretch_width")
    page = pn.Column(
        pn.Row(select(view.param.sweep_id, "Sweep", "gf-sweep-select", 460), reload),
        pn.pane.Markdown(view.param.info, css_classes=["gf-sweep-info"]),
        pn.Row(select(view.param.symbol, "Symbol", "gf-sweep-symbol"),
               select(view.param.slice, "Window / phase", "gf-sweep-slice", 220),
               select(view.param.metric, "Metric", "gf-sweep-metric"),
               select(view.param.x, "X parameter", "gf-sweep-x"),
               select(view.param.y, "Y parameter", "gf-sweep-y")),
        pn.pane.Markdown(HEATMAP_NOTE),
        pn.pane.HoloViews(pn.bind(heatmap_chart, view.param.frame, view.param.x,
                                  view.param.y, view.param.metric),
                          sizing_mode="stretch_width", linked_axes=False,
                          css_classes=["gf-sweep-heatmap"]),
        f"### Top {TOP_N} combinations",
        pn.pane.DataFrame(pn.bind(lambda f, m: top_frame(f, m) if f is not None else
                                  pd.DataFrame([{"combo": "no results"}]),
                                  view.param.frame, view.param.metric),
                          index=False, float_format="{:,.6g}".format,
                          sizing_mode="stretch_width", css_classes=["gf-sweep-top"]),
        wfo,
        sizing_mode="stretch_width",
    )
    page.view = view  # for tests and notebooks
    return page
