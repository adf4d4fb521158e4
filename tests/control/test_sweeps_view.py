"""Data shaping of the Sweeps page on small frames, its charts and its state."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("panel")

import holoviews as hv
from app_harness import SWEEP_SYMBOLS, sweep_combos, sweep_metrics, write_demo_sweeps

from gridflow.control.app.sweeps import (
    NO_SWEEP,
    SweepsView,
    heatmap_chart,
    heatmap_frame,
    is_oos_chart,
    is_oos_frame,
    slice_frame,
    summary_html,
    sweeps_page,
    top_frame,
    windows_table,
)
from gridflow.journal.sweep_store import METRICS, param_names

GRID = {"a": [10, 2, 5], "b": [0.5, 1.5], "c": ["x", "y"]}


def value(p: dict, window: int = -1, phase: str = "full") -> float:
    """Metric of a small combination: largest at a=5, b=1.5, c="y"."""
    return (-abs(p["a"] - 5) + p["b"] + (0.5 if p["c"] == "y" else 0.0) + 0.1 * window
            - (1.0 if phase == "oos" else 0.0))


def frame(windows: tuple[int, ...] = (-1,), phases: tuple[str, ...] = ("full",),
          symbol: str = "S") -> pd.DataFrame:
    """A frame shaped like ``read_results``: every metric from :func:`value`, the
    drawdown growing with ``a``."""
    combos = [dict(zip(GRID, v)) for v in itertools.product(*GRID.values())]
    rows = []
    for w, ph in itertools.product(windows, phases):
        for i, p in enumerate(combos):
            v = value(p, w, ph)
            m = {k: v for k in METRICS} | {"max_drawdown": p["a"] / 100 + p["b"] / 1000}
            rows.append({"sweep_id": "t", "symbol": symbol, "window": w, "phase": ph,
                         "combo_id": i, **p, **m})
    df = pd.DataFrame(rows)
    df.attrs["params"] = list(GRID)
    return df


def test_heatmap_frame_takes_the_best_over_the_other_parameters() -> None:
    df = frame()
    hm = heatmap_frame(df, "a", "b", "sharpe")
    assert list(hm.columns) == ["a", "b", "sharpe"]
    assert list(zip(hm["a"], hm["b"])) == list(itertools.product([2, 5, 10], [0.5, 1.5]))
    for r in hm.to_dict("records"):
        want = max(value({"a": r["a"], "b": r["b"], "c": c}) for c in GRID["c"])
        assert r["sharpe"] == pytest.approx(want)
    dd = heatmap_frame(df, "c", "a", "max_drawdown")  # lower is better: the minimum
    assert dd.loc[(dd["c"] == "x") & (dd["a"] == 10), "max_drawdown"].item() == pytest.approx(
        0.1 + 0.0005)
    df.loc[df["a"] == 2, "sharpe"] = np.nan
    df.loc[(df["a"] == 5) & (df["c"] == "y"), "sharpe"] = np.nan
    hm = heatmap_frame(df, "a", "b", "sharpe")
    assert hm.loc[hm["a"] == 2, "sharpe"].isna().all()  # only NaN: NaN
    assert hm.loc[(hm["a"] == 5) & (hm["b"] == 1.5), "sharpe"].item() == pytest.approx(
        value({"a": 5, "b": 1.5, "c": "x"}))  # NaN skipped
    with pytest.raises(ValueError, match="two different"):
        heatmap_frame(df, "a", "a", "sharpe")


def test_top_frame_orders_best_first_with_parameters_first() -> None:
    df = frame()
    top = top_frame(df, "sharpe", 5)
    assert len(top) == 5 and list(top.columns[:4]) == ["a", "b", "c", "sharpe"]
    assert top.iloc[0][["a", "b", "c"]].tolist() == [5, 1.5, "y"]
    assert top["sharpe"].is_monotonic_decreasing
    assert len(top_frame(df, "sharpe")) == len(df) == 12  # fewer rows than n
    dd = top_frame(df, "max_drawdown", 3)
    assert dd["max_drawdown"].is_monotonic_increasing and dd.iloc[0]["a"] == 2
    df.loc[0, "score"], df.loc[1, "score"] = np.nan, -np.inf
    score = top_frame(df, "score", 12)
    assert math.isnan(score["score"].iloc[-1]) and score["score"].iloc[-2] == -np.inf
    assert param_names(score) == list(GRID)


def test_slice_frame_filters_a_window_or_averages_over_windows() -> None:
    df = frame(windows=(0, 1, 2), phases=("is", "oos"))
    one = slice_frame(df, "oos", 1)
    assert len(one) == 12 and set(one["window"]) == {1} and set(one["phase"]) == {"oos"}
    mean = slice_frame(df, "is")
    assert len(mean) == 12 and set(mean["window"]) == {-1}
    assert list(mean.columns) == list(df.columns) and param_names(mean) == list(GRID)
    for r in mean.to_dict("records"):
        p = {k: r[k] for k in GRID}
        assert r["sharpe"] == pytest.approx(np.mean([value(p, w, "is") for w in range(3)]))
    full = slice_frame(frame(), "full")
    assert len(full) == 12 and full["sharpe"].tolist() == frame()["sharpe"].tolist()


def test_is_oos_frame_joins_the_same_combination_and_window() -> None:
    df = frame(windows=(0, 1), phases=("is", "oos"))
    df = df[~((df["phase"] == "oos") & (df["window"] == 1) & (df["combo_id"] == 3))]
    pairs = is_oos_frame(df, "sharpe")
    assert len(pairs) == 2 * 12 - 1
    assert list(pairs.columns) == ["symbol", "window", "combo_id", "a", "b", "c",
                                   "is_sharpe", "oos_sharpe"]
    for r in pairs.to_dict("records"):
        p = {k: r[k] for k in GRID}
        assert r["is_sharpe"] == pytest.approx(value(p, r["window"], "is"))
        assert r["oos_sharpe"] == pytest.approx(value(p, r["window"], "oos"))


def test_charts_use_sorted_categorical_axes_named_after_the_parameters() -> None:
    hv.extension("bokeh")
    df = frame()
    df.loc[0, "sharpe"] = np.inf
    plot = hv.render(heatmap_chart(df, "a", "b", "sharpe"))
    assert list(plot.x_range.factors) == ["2", "5", "10"]
    assert list(plot.y_range.factors) == ["0.5", "1.5"]
    assert (plot.xaxis.axis_label, plot.yaxis.axis_label) == ("a", "b")
    assert "max over the other parameters" in plot.title.text
    assert "pick two" in hv.render(heatmap_chart(df, "a", "a", "sharpe")).title.text
    hv.render(heatmap_chart(None, None, None, "sharpe"))
    scatter = hv.render(is_oos_chart(frame((0, 1), ("is", "oos")), "sharpe"))
    assert scatter.xaxis.axis_label == "IS sharpe"
    hv.render(is_oos_chart(None, "sharpe"))


def test_summary_and_windows_table() -> None:
    html = summary_html({"grade": "A", "dsr": 0.95, "mc_p_value": 0.01, "note": "<ok>"})
    assert ">A</div>" in html and "DSR" in html and "MC p-value" in html
    assert "&lt;ok&gt;" in html
    assert "No walk-forward summary" in summary_html({})
    assert "no walk-forward" in windows_table(None, "S").iloc[0, 0]


def test_view_on_an_empty_then_a_filled_database(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'view.db'}"
    view = SweepsView(db)
    view.reload()
    assert (view.sweep_id, view.info, view.frame) == (None, NO_SWEEP, None)
    write_demo_sweeps(db)
    view.reload()
    assert view.sweep_id == "grid-sweep" and view.kind == "sweep"  # the newest
    assert (view.slice, view.symbol, view.metric) == ("full", SWEEP_SYMBOLS[0], "sharpe")
    assert (view.x, view.y) == ("atr_start", "levels") and view.pairs is None
    view.sweep_id = "grid-wfo"
    assert view.kind == "wfo" and view.slice == "IS · mean over windows"
    assert len(view.frame) == len(sweep_combos()) and view.summary["grade"] == "B"
    assert set(view.pairs["phase"]) == {"is", "oos"}
    view.slice = "OOS · window 2"
    best = top_frame(view.frame, "sharpe").iloc[0]
    p = {k: best[k] for k in sorted(sweep_combos()[0])}
    assert best["sharpe"] == pytest.approx(sweep_metrics(p, SWEEP_SYMBOLS[0], 2, "oos")["sharpe"])
    assert set(view.pairs["window"]) == {2}
    view.symbol = SWEEP_SYMBOLS[1]
    assert view.summary["grade"] == "C" and set(view.frame["symbol"]) == {SWEEP_SYMBOLS[1]}
    view.close()


def test_page_builds_on_an_empty_database(tmp_path: Path) -> None:
    class State:
        db_url = f"sqlite:///{tmp_path / 'empty.db'}"

    page = sweeps_page(State())
    assert page.view.info == NO_SWEEP
    page.view.close()
