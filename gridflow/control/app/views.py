"""Thin Panel views bound to :class:`~gridflow.control.app.state.ControlState`.

Views format and lay out; every decision (who may act, what to poll, which command to
send) lives in the state. Action buttons are disabled in a read-only session, and the
state refuses the action anyway if a click reaches it.

Layout: every row of controls is a wrapping :class:`panel.FlexBox` and every pane
stretches to the width, so the pages work from a 390 px phone to a desktop; wide
tables scroll sideways inside their own box. A chart with nothing to draw yet is
replaced by a sentence saying what would fill it.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from gridflow.control.app import charts
from gridflow.control.app.formatting import event_rows, fmt, iso, num
from gridflow.control.app.params_form import InvalidParams
from gridflow.control.app.params_view import params_panel
from gridflow.control.app.state import ControlState

__all__ = ["READ_ONLY_NOTE", "backtest_page", "compare_page", "fmt", "iso", "live_page"]

READ_ONLY_NOTE = "Read-only: log in to reset kill switches, pause, resume or launch backtests."
NO_EQUITY = "No equity yet — run a backtest or start a flow."
NO_BACKTEST_EQUITY = "No equity yet — pick a preset, its symbols and a window, then run a backtest."
NO_CHART = "No chart yet — the candles, grid levels, entries and exits of a finished backtest show here."
SCROLL_X = {"overflow-x": "auto"}
"""Style of a wide table's box: it scrolls sideways instead of widening the page."""
POSITION_KEYS = ("side", "strategy", "amount", "avg_entry", "take_profit", "stop", "levels",
                 "last_close", "entries", "paused")


def positions_frame(status: dict[str, Any]) -> pd.DataFrame:
    """One row per symbol: side, strategy, amount, average entry, take profit, stop,
    levels (``○`` resting, ``●`` filled), last close, entries, paused; any other key the
    engine reports after them."""
    pos = status.get("positions") or {}
    rows = []
    for sym, p in sorted(pos.items()):
        p = p if isinstance(p, dict) else {"value": p}
        keys = [k for k in POSITION_KEYS if k in p] + [k for k in p if k not in POSITION_KEYS]
        rows.append({"symbol": sym, **{k.replace("_", " "): fmt(p[k]) for k in keys}})
    return pd.DataFrame(rows or [{"symbol": "no positions reported"}])


def events_frame(events: list[dict[str, Any]]) -> pd.DataFrame:
    """Journal events, newest first: UTC time, kind, symbol and one sentence each
    (:func:`~gridflow.control.app.formatting.event_line`)."""
    return pd.DataFrame(event_rows(events) or [{"time": "", "event": "no events yet"}])


def summary_md(status: dict[str, Any]) -> str:
    if not status:
        return "No engine summary yet for this run and account."
    keys = ("equity", "cash", "realized_pnl", "fees_paid", "initial_capital")
    nums = " · ".join(f"{k.replace('_', ' ')}: **{num(float(status[k]))}**"
                      for k in keys if k in status)
    flags = []
    if status.get("paused"):
        flags.append("**PAUSED** (no new entries)")
    if "complete" in status:
        flags.append("stream complete" if status["complete"] else "running")
    return (f"Run `{status.get('run_id', '')}` · candles {status.get('candles', 0)} · last candle "
            f"{iso(status.get('last_ts_ms'))} UTC · {' · '.join(flags)}\n\n{nums}")


def kill_switch_md(status: dict[str, Any]) -> str:
    """Active kill switches with the numbers of the event that tripped each."""
    if not status:
        return "**Kill switch:** unknown (no summary yet)"
    active = status.get("kill_switches") or {}
    if not active:
        return "**Kill switch:** none active"
    lines = ["**Kill switch: ACTIVE**"]
    for reason, ev in active.items():
        d = (ev or {}).get("detail") or {}
        lines.append(f"- `{reason}`: value {fmt(d.get('value'))}, threshold "
                     f"{fmt(d.get('threshold'))}, tripped {iso((ev or {}).get('ts_ms'))} UTC")
    return "\n".join(lines)


def ack_md(pending: str, ack: dict[str, Any], message: str) -> str:
    """The command in flight, or the engine's answer to the last one."""
    out = []
    if pending:
        out.append(f"Waiting for the engine to acknowledge **{pending}** …")
    elif ack:
        head = (f"**{escape(ack['action'])}** ({escape(ack['account'])}): "
                f"**{escape(ack['status'])}**")
        if ack["status"] == "applied":
            head += f" by the engine at {iso(ack.get('ts_ms'))} UTC (event time)"
        else:
            head += f" — {escape(str(ack.get('reason', '')))}"
        out.append(head + (f" · command {ack['command_id']}" if ack.get("command_id") else ""))
    if message:
        out.append(warning(message))
    return "\n\n".join(out)


def warning(text: str) -> str:
    """Markdown of a warning line; the text is HTML-escaped (it may echo input)."""
    return f"⚠ {escape(text)}" if text else ""


def _clicked(state: ControlState, action: Callable[[], Any]) -> Callable[[Any], None]:
    def on_click(_event: Any) -> None:
        try:
            action()
        except (PermissionError, RuntimeError, InvalidParams):
            pass  # the state said why (state.message, backtest.params_error)
        except Exception as exc:  # noqa: BLE001 - a click must not kill the session
            state.message = f"{type(exc).__name__}: {exc}"
    return on_click


def _button(state: ControlState, name: str, kind: str, action: Callable[[], Any],
            css: str, command: bool = True) -> pn.widgets.Button:
    """An action button; a ``command`` button is also disabled while a command waits
    for its acknowledgement (the state ignores a repeated click anyway)."""
    b = pn.widgets.Button(name=name, button_type=kind, disabled=not state.can_act,
                          width=170, css_classes=[css])
    b.on_click(_clicked(state, action))
    if command and state.can_act:
        state.param.watch(lambda e: setattr(b, "disabled", bool(e.new)), "pending")
    return b


def controls(*objects: Any, css: str = "") -> pn.FlexBox:
    """A row of controls that wraps onto the next line on a narrow screen."""
    return pn.FlexBox(*objects, flex_wrap="wrap", align_items="flex-end",
                      css_classes=[css] if css else [], sizing_mode="stretch_width")


def has_curve(eq: dict[str, Any]) -> bool:
    """True when an equity dict holds at least one snapshot."""
    return bool(len(np.asarray((eq or {}).get("ts_ms", []))))


def placeholder(text: str, visible: Any, css: str) -> pn.pane.Markdown:
    """The sentence shown instead of an empty chart."""
    return pn.pane.Markdown(f"*{escape(text)}*", visible=visible, css_classes=[css],
                            sizing_mode="stretch_width",
                            styles={"color": "#555", "border": "1px dashed #bbb",
                                    "border-radius": "6px", "padding": "0 12px"})


def equity_panes(owner: Any, name: str, title: str, css: str, empty: str = NO_EQUITY
                 ) -> pn.Column:
    """Equity over drawdown, two charts of the ``equity``-shaped parameter ``name`` of
    ``owner``, or the sentence ``empty`` while it has no snapshot (no 1970 axes). A new
    value is streamed into the existing plots (a data patch, not a new figure), so a
    running flow's curve costs little on the server's event loop."""
    pipe = hv.streams.Pipe(data=getattr(owner, name))
    owner.param.watch(lambda event: pipe.send(event.new), name)
    equity = hv.DynamicMap(lambda data: charts.equity_chart(data, title), streams=[pipe])
    drawdown = hv.DynamicMap(lambda data: charts.drawdown_chart(data), streams=[pipe])
    shown = pn.bind(has_curve, owner.param[name])
    return pn.Column(
        placeholder(empty, pn.bind(lambda s: not s, shown), "gf-placeholder"),
        pn.Column(  # visibility on the column: a HoloViews pane's own breaks on change
            pn.pane.HoloViews(equity, linked_axes=False, sizing_mode="stretch_width"),
            pn.pane.HoloViews(drawdown, linked_axes=False, sizing_mode="stretch_width"),
            visible=shown, sizing_mode="stretch_width"),
        css_classes=[css], sizing_mode="stretch_width",
    )


def table(frame: Any, css: str, **opts: Any) -> pn.pane.DataFrame:
    """A table pane (no index) that scrolls sideways inside its box on a narrow screen."""
    return pn.pane.DataFrame(frame, index=False, sizing_mode="stretch_width", justify="left",
                             css_classes=[css], styles=SCROLL_X, text_align="start", **opts)


def live_page(state: ControlState) -> pn.viewable.Viewable:
    """Account picker, summary, kill switch + reset, pause/resume, equity, positions, events."""
    pickers = controls(
        pn.widgets.Select.from_param(state.param.account, name="Account", width=200,
                                     css_classes=["gf-account"]),
        pn.widgets.Select.from_param(state.param.run_id, name="Run", width=260,
                                     css_classes=["gf-run"]))
    buttons = controls(
        _button(state, "Reset kill switch", "danger", state.reset_kill_switch, "gf-reset"),
        _button(state, "Pause", "warning", state.pause, "gf-pause"),
        _button(state, "Resume", "success", state.resume, "gf-resume"),
    )
    return pn.Column(
        pickers,
        pn.pane.Markdown(pn.bind(summary_md, state.param.status), css_classes=["gf-summary"],
                         sizing_mode="stretch_width"),
        pn.pane.Markdown(pn.bind(warning, state.param.refresh_error),
                         visible=pn.bind(bool, state.param.refresh_error)),
        pn.pane.Markdown(pn.bind(kill_switch_md, state.param.status),
                         css_classes=["gf-kill-switch"], sizing_mode="stretch_width"),
        buttons,
        pn.pane.Markdown(pn.bind(ack_md, state.param.pending, state.param.last_ack,
                                 state.param.message), css_classes=["gf-ack"],
                         sizing_mode="stretch_width"),
        equity_panes(state, "equity", "Equity", "gf-equity"),
        "### Positions and grids",
        table(pn.bind(positions_frame, state.param.status), "gf-positions"),
        "### Events",
        table(pn.bind(lambda st: events_frame(st.get("last_events") or []), state.param.status),
              "gf-events", max_height=420),
        sizing_mode="stretch_width",
    )


def metric_cell(key: str, value: Any) -> str:
    """A report value: timestamps (``*ts_ms``) as UTC dates, the rest via :func:`fmt`."""
    return f"{iso(value)} UTC" if key.endswith("ts_ms") and value else fmt(value)


def metrics_frame(report: dict[str, Any]) -> pd.DataFrame:
    rows = [{"metric": k, "value": metric_cell(k, v)} for k, v in report.items()]
    return pd.DataFrame(rows or [{"metric": "no finished backtest yet", "value": ""}])


def job_md(status: str, run_id: str, progress: float, error: str) -> str:
    if status == "idle":
        return "Pick a preset, its symbols and parameters and a window, then run."
    text = f"Backtest `{run_id}`: **{status}** ({progress:.0%})"
    return text + (f"\n\n```\n{error.replace('`', chr(39))}\n```" if error else "")


def chart_caption(chart: Any) -> str:
    """What the strategy chart shows, in words (its legend, for people and tests)."""
    bars = (f"{chart.candles:,} candles" + (f", {chart.per_bar} per bar" if chart.per_bar > 1
                                            else ""))
    shown = []
    if chart.levels.size:
        shown.append(f"grid levels L0–L{chart.levels.shape[1] - 1}")
    shown += [name for name, v in (("take profit", chart.take_profit), ("stop", chart.stop))
              if np.isfinite(v).any()]
    n_in = sum(m["kind"] == "entry" for m in chart.marks)
    shown += [f"{n_in} entries", f"{len(chart.marks) - n_in} exits", *chart.overlays,
              *(f"{k} (panel)" for k in dict.fromkeys(k.split(".")[0] for k in chart.panels))]
    head = f"**{escape(chart.symbol)}**" + (f" · {escape(chart.strategy)}" if chart.strategy
                                            else "")
    return f"{head} · {bars} · " + " · ".join(escape(x) for x in shown)


def chart_view(chart: Any, error: str) -> pn.viewable.Viewable:
    """The strategy chart of the picked symbol, or a sentence saying why there is none."""
    if chart is None:
        return placeholder(f"{error} — no chart." if error else NO_CHART, True,
                           "gf-chart-placeholder")
    price, *panels = charts.strategy_chart(chart)
    return pn.Column(
        pn.pane.Markdown(chart_caption(chart), css_classes=["gf-chart-caption"],
                         sizing_mode="stretch_width"),
        pn.pane.HoloViews(price, sizing_mode="stretch_width", css_classes=["gf-candles"],
                          linked_axes=True),
        *(pn.pane.HoloViews(p, sizing_mode="stretch_width", css_classes=["gf-panel"],
                            linked_axes=True) for p in panels),
        sizing_mode="stretch_width")


def backtest_page(state: ControlState) -> pn.viewable.Viewable:
    """Preset, window, symbols and parameters, run, progress, then metrics, equity, the
    strategy chart (candles, levels, take profit, stop, entries, exits, indicators) and
    the run's last events."""
    bt = state.backtest
    run = _button(state, "Run backtest", "primary", state.launch_backtest, "gf-run-backtest",
                  command=False)
    done = pn.bind(lambda r: bool(r), bt.param.report)
    results = pn.Column(
        pn.pane.DataFrame(pn.bind(metrics_frame, bt.param.report), index=False,
                          css_classes=["gf-metrics"], sizing_mode="stretch_width",
                          max_width=460, styles=SCROLL_X, visible=done),
        equity_panes(bt, "equity", "Backtest equity", "gf-bt-equity", NO_BACKTEST_EQUITY),
        pn.widgets.Select.from_param(bt.param.chart_symbol, name="Chart symbol", width=200,
                                     css_classes=["gf-chart-symbol"], visible=done),
        pn.panel(pn.bind(chart_view, bt.param.chart, bt.param.chart_error),
                 sizing_mode="stretch_width"),
        pn.pane.Markdown("### Events of the run", visible=done),
        table(pn.bind(events_frame, bt.param.events), "gf-bt-events", max_height=420,
              visible=done),
        sizing_mode="stretch_width",
    )
    return pn.Column(
        controls(pn.widgets.Select.from_param(bt.param.preset, name="Preset", width=200,
                                              css_classes=["gf-preset"]),
                 pn.widgets.Select.from_param(bt.param.source, name="Candles", width=160,
                                              css_classes=["gf-source"]),
                 pn.widgets.DatePicker.from_param(bt.param.start_date, name="Start (UTC)",
                                                  width=150, css_classes=["gf-start"]),
                 pn.widgets.DatePicker.from_param(bt.param.end_date, name="End (UTC)",
                                                  width=150, css_classes=["gf-end"]),
                 run),
        params_panel(bt),
        pn.indicators.Progress(value=pn.bind(lambda p: round(p * 100), bt.param.progress),
                               max=100, sizing_mode="stretch_width", css_classes=["gf-progress"],
                               visible=pn.bind(lambda s: s != "idle", bt.param.status)),
        pn.pane.Markdown(pn.bind(job_md, bt.param.status, bt.param.run_id, bt.param.progress,
                                 bt.param.error), css_classes=["gf-job"],
                         sizing_mode="stretch_width"),
        pn.pane.Markdown(pn.bind(warning, state.param.message),
                         visible=pn.bind(bool, state.param.message)),
        results,
        sizing_mode="stretch_width",
    )


def compare_frame(reports: list[dict[str, Any]]) -> pd.DataFrame:
    """Metrics side by side: one row per metric, one column per run."""
    if not reports:
        return pd.DataFrame([{"metric": "pick two or more runs"}])
    keys = [k for k in reports[0] if k != "run_id"]
    return pd.DataFrame([{"metric": k, **{r["run_id"]: metric_cell(k, r.get(k)) for r in reports}}
                         for k in keys])


def compare_page(state: ControlState) -> pn.viewable.Viewable:
    """Pick runs; their metrics side by side and their equity curves overlaid."""
    picked = pn.bind(lambda curves: any(has_curve(c) for c in curves.values()),
                     state.param.compare_curves)
    return pn.Column(
        pn.widgets.MultiChoice.from_param(state.param.compare_runs, name="Runs",
                                          sizing_mode="stretch_width", max_width=640),
        table(pn.bind(compare_frame, state.param.compare_reports), "gf-compare"),
        placeholder("No curves yet — pick runs to compare their equity.",
                    pn.bind(lambda p: not p, picked), "gf-placeholder"),
        pn.Column(pn.pane.HoloViews(pn.bind(charts.compare_chart, state.param.compare_curves),
                                    sizing_mode="stretch_width", linked_axes=False),
                  visible=picked, sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )
