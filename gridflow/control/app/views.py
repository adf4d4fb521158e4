"""Thin Panel views bound to :class:`~gridflow.control.app.state.ControlState`.

Views format and lay out; every decision (who may act, what to poll, which command to
send) lives in the state. Action buttons are disabled in a read-only session, and the
state refuses the action anyway if a click reaches it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn

from gridflow.control.app import charts
from gridflow.control.app.params_form import InvalidParams
from gridflow.control.app.params_view import params_panel
from gridflow.control.app.state import ControlState

READ_ONLY_NOTE = "Read-only: log in to reset kill switches, pause, resume or launch backtests."


def iso(ts_ms: Any) -> str:
    """``YYYY-MM-DD HH:MM`` UTC of a ms timestamp ("" for None)."""
    if ts_ms is None:
        return ""
    return datetime.fromtimestamp(int(ts_ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def fmt(v: Any) -> str:
    """A cell: floats to 6 significant digits, grid levels compact, the rest as text."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.6g}"
    if isinstance(v, list) and all(isinstance(x, dict) and "price" in x for x in v):
        return " ".join(("●" if x.get("filled") else "○") + fmt(x.get("price")) for x in v)
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, default=str)
    return str(v)


def positions_frame(status: dict[str, Any]) -> pd.DataFrame:
    """One row per symbol, one column per key found (whatever the engine reports)."""
    pos = status.get("positions") or {}
    rows = [{"symbol": s, **{k: fmt(v) for k, v in (p if isinstance(p, dict) else
                                                    {"value": p}).items()}}
            for s, p in sorted(pos.items())]
    return pd.DataFrame(rows or [{"symbol": "no positions reported"}])


def events_frame(status: dict[str, Any]) -> pd.DataFrame:
    """The account's last journal events, newest first."""
    rows = [{"time": iso(e.get("ts_ms")), "kind": e.get("kind", ""), "reason": e.get("reason", ""),
             "symbol": e.get("symbol", ""), "detail": fmt(e.get("detail") or {})}
            for e in reversed(status.get("last_events") or [])]
    return pd.DataFrame(rows or [{"kind": "no events"}])


def summary_md(status: dict[str, Any]) -> str:
    if not status:
        return "No engine summary yet for this run and account."
    keys = ("equity", "cash", "realized_pnl", "fees_paid", "initial_capital")
    nums = " · ".join(f"{k}: **{fmt(float(status[k]))}**" for k in keys if k in status)
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
        out.append(f"**{escape(ack['action'])}** ({escape(ack['account'])}): "
                   f"**{escape(ack['status'])}** — {escape(str(ack.get('reason', '')))}"
                   + (f" (command {ack['command_id']})" if ack.get("command_id") else ""))
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


def _button(state: ControlState, name: str, kind: str, action: Callable[[], Any]) -> pn.widgets.Button:
    b = pn.widgets.Button(name=name, button_type=kind, disabled=not state.can_act,
                          width=170)
    b.on_click(_clicked(state, action))
    return b


def equity_panes(owner: Any, name: str, title: str, css: str) -> pn.Column:
    """Equity over drawdown, two charts of the ``equity``-shaped parameter ``name`` of
    ``owner``. A new value is streamed into the existing plots (a data patch, not a new
    figure), so a running flow's curve costs little on the server's event loop."""
    pipe = hv.streams.Pipe(data=getattr(owner, name))
    owner.param.watch(lambda event: pipe.send(event.new), name)
    equity = hv.DynamicMap(lambda data: charts.equity_chart(data, title), streams=[pipe])
    drawdown = hv.DynamicMap(lambda data: charts.drawdown_chart(data), streams=[pipe])
    return pn.Column(
        pn.pane.HoloViews(equity, linked_axes=False, sizing_mode="stretch_width"),
        pn.pane.HoloViews(drawdown, linked_axes=False, sizing_mode="stretch_width"),
        css_classes=[css], sizing_mode="stretch_width",
    )


def live_page(state: ControlState) -> pn.viewable.Viewable:
    """Account picker, summary, kill switch + reset, pause/resume, equity, positions, events."""
    pickers = pn.Row(pn.widgets.Select.from_param(state.param.account, name="Account"),
                     pn.widgets.Select.from_param(state.param.run_id, name="Run"))
    buttons = pn.Row(
        _button(state, "Reset kill switch", "danger", state.reset_kill_switch),
        _button(state, "Pause", "warning", state.pause),
        _button(state, "Resume", "success", state.resume),
    )
    return pn.Column(
        pickers,
        pn.pane.Markdown(pn.bind(summary_md, state.param.status), css_classes=["gf-summary"]),
        pn.pane.Markdown(pn.bind(warning, state.param.refresh_error)),
        pn.pane.Markdown(pn.bind(kill_switch_md, state.param.status),
                         css_classes=["gf-kill-switch"]),
        buttons,
        pn.pane.Markdown(pn.bind(ack_md, state.param.pending, state.param.last_ack,
                                 state.param.message), css_classes=["gf-ack"]),
        equity_panes(state, "equity", "Equity", "gf-equity"),
        "### Positions and grids",
        pn.pane.DataFrame(pn.bind(positions_frame, state.param.status), index=False,
                          sizing_mode="stretch_width", css_classes=["gf-positions"]),
        "### Events",
        pn.pane.DataFrame(pn.bind(events_frame, state.param.status), index=False,
                          sizing_mode="stretch_width", max_height=420, text_align="start"),
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


def backtest_page(state: ControlState) -> pn.viewable.Viewable:
    """Preset, window, symbols and parameters, run, progress, then metrics, equity and
    a candle chart."""
    bt = state.backtest
    run = _button(state, "Run backtest", "primary", state.launch_backtest)
    results = pn.Column(
        pn.pane.DataFrame(pn.bind(metrics_frame, bt.param.report), index=False,
                          css_classes=["gf-metrics"], width=420),
        equity_panes(bt, "equity", "Backtest equity", "gf-bt-equity"),
        pn.widgets.Select.from_param(bt.param.chart_symbol, name="Chart symbol", width=200),
        pn.pane.HoloViews(pn.bind(charts.candle_chart, bt.param.candles, bt.param.marks,
                                  bt.param.chart_symbol),
                          sizing_mode="stretch_width", css_classes=["gf-candles"], linked_axes=False),
        sizing_mode="stretch_width",
    )
    return pn.Column(
        pn.Row(pn.widgets.Select.from_param(bt.param.preset, name="Preset"),
               pn.widgets.DatePicker.from_param(bt.param.start_date, name="Start (UTC)"),
               pn.widgets.DatePicker.from_param(bt.param.end_date, name="End (UTC)"),
               run),
        params_panel(bt),
        pn.indicators.Progress(value=pn.bind(lambda p: round(p * 100), bt.param.progress),
                               max=100, sizing_mode="stretch_width", css_classes=["gf-progress"],
                               visible=pn.bind(lambda s: s != "idle", bt.param.status)),
        pn.pane.Markdown(pn.bind(job_md, bt.param.status, bt.param.run_id, bt.param.progress,
                                 bt.param.error), css_classes=["gf-job"]),
        pn.pane.Markdown(pn.bind(warning, state.param.message)),
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
    return pn.Column(
        pn.widgets.MultiChoice.from_param(state.param.compare_runs, name="Runs"),
        pn.pane.DataFrame(pn.bind(compare_frame, state.param.compare_reports), index=False,
                          css_classes=["gf-compare"], sizing_mode="stretch_width"),
        pn.pane.HoloViews(pn.bind(charts.compare_chart, state.param.compare_curves),
                          sizing_mode="stretch_width", linked_axes=False),
        sizing_mode="stretch_width",
    )
