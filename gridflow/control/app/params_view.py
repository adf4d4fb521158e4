"""Panel widgets of the Backtest page's symbols and strategy parameters.

Generated from :attr:`BacktestState.strategy_forms` (the strategies' pydantic models):
``int`` fields get an ``IntInput`` and ``float`` fields a ``FloatInput`` with the
field's bounds, ``Literal`` fields a ``Select``, tuples of floats a comma-separated
``TextInput``. Edits go to :meth:`BacktestState.set_value`; the state validates them
when the backtest is launched and puts pydantic's message in ``params_error``.
"""

from __future__ import annotations

from html import escape
from typing import Any

import panel as pn

from gridflow.control.app.backtest import BacktestState
from gridflow.control.app.params_form import FieldSpec


def symbols_widget(bt: BacktestState) -> pn.widgets.MultiSelect:
    """The symbols of the bundled candle files; the preset's are selected."""
    return pn.widgets.MultiSelect.from_param(bt.param.symbols, name="Symbols", size=5,
                                             width=160, css_classes=["gf-symbols"])


def param_widget(spec: FieldSpec) -> pn.widgets.Widget:
    """The input of one parameter, pre-filled with its value."""
    opts: dict[str, Any] = {"name": spec.name, "width": 130,
                            "css_classes": ["gf-param", f"gf-param-{spec.name}"]}
    if spec.kind == "int":
        bounds = {k: int(v) for k, v in (("start", spec.start), ("end", spec.end))
                  if v is not None}
        return pn.widgets.IntInput(value=spec.value, **bounds, **opts)
    if spec.kind == "float":
        bounds = {k: v for k, v in (("start", spec.start), ("end", spec.end)) if v is not None}
        return pn.widgets.FloatInput(value=spec.value, **bounds, **opts)
    if spec.kind == "choice":
        return pn.widgets.Select(value=spec.value, options=list(spec.options), **opts)
    return pn.widgets.TextInput(value=spec.value, placeholder="0.03, 0.05", **opts)


def _strategy_form(bt: BacktestState, i: int, label: str,
                   specs: list[FieldSpec]) -> pn.Column:
    widgets = []
    for spec in specs:
        w = param_widget(spec)
        w.param.watch(lambda e, f=spec.name: bt.set_value(i, f, e.new), "value")
        widgets.append(w)
    return pn.Column(pn.pane.Markdown(f"**{escape(label)}**", margin=(0, 5)),
                     pn.FlexBox(*widgets), css_classes=[f"gf-strategy-{i}"],
                     sizing_mode="stretch_width")


def strategy_forms(bt: BacktestState, forms: list) -> pn.Column:
    """One row of inputs per strategy of the preset's account."""
    return pn.Column(*(_strategy_form(bt, i, label, specs)
                       for i, (label, specs) in enumerate(forms)),
                     sizing_mode="stretch_width")


def params_error_md(text: str) -> str:
    """The validation message, one line per field (HTML-escaped)."""
    if not text:
        return ""
    return "⚠ **Invalid parameters, nothing launched:**\n\n" + "\n".join(
        f"- {escape(line)}" for line in text.splitlines())


def params_panel(bt: BacktestState) -> pn.Column:
    """Symbols beside the strategies' parameters (below them on a narrow screen), then
    any validation error."""
    return pn.Column(
        pn.FlexBox(symbols_widget(bt),
                   pn.panel(pn.bind(strategy_forms, bt, bt.param.strategy_forms),
                            sizing_mode="stretch_width", styles={"flex": "1 1 280px"}),
                   flex_wrap="wrap", sizing_mode="stretch_width"),
        pn.pane.Markdown(pn.bind(params_error_md, bt.param.params_error),
                         css_classes=["gf-params-error"]),
        sizing_mode="stretch_width",
    )
