"""The Sweeps tab in Chromium: a guest opens an empty journal, then a plain sweep and a
walk-forward run stored with the sweep store (metrics derived from the parameters by
:func:`app_harness.sweep_metrics`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("panel")
pytest.importorskip("playwright.sync_api")

from app_harness import (
    CHROMIUM,
    SWEEP_SYMBOLS,
    SWEEP_WINDOWS,
    app_server,
    chromium,
    screenshot,
    sweep_combos,
    sweep_metrics,
    write_demo_sweeps,
)
from playwright.sync_api import expect

USERS = "alice:pw-alice"
needs_browser = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium); required in CI",
)

#: Every axis label of the browser's Bokeh documents includes both names.
AXES_JS = """([a, b]) => { const labels = [];
    for (const doc of Bokeh.documents) for (const m of doc.all_models)
        if (typeof m.axis_label === "string") labels.push(m.axis_label);
    return labels.includes(a) && labels.includes(b); }"""


def _best(metric: str, symbol: str, phase: str) -> tuple[dict, float]:
    """Best combination of ``metric`` (mean over the windows) and its value."""
    def mean(p: dict) -> float:
        return sum(sweep_metrics(p, symbol, w, phase)[metric]
                   for w in range(SWEEP_WINDOWS)) / SWEEP_WINDOWS
    best = max(sweep_combos(), key=mean)
    return best, mean(best)


def _cells(p: dict) -> list[str]:
    """How the top table shows a combination: parameters in sorted name order."""
    return [f"{p[k]:,.6g}" if isinstance(p[k], float) else str(p[k]) for k in sorted(p)]


def _expect_first_row(page, metric: str, symbol: str) -> None:
    best, value = _best(metric, symbol, "is")
    first = page.locator(".gf-sweep-top tbody tr").first.locator("td")
    want = _cells(best)
    for i, text in enumerate(want):
        expect(first.nth(i)).to_have_text(text)
    shown = float(first.nth(len(want)).inner_text().replace(",", ""))
    assert shown == pytest.approx(value, rel=1e-5)


@needs_browser
def test_guest_browses_sweeps_and_walk_forward(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'sweeps.db'}"
    with app_server(db, users=USERS) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 2700})
        page.goto(url)
        expect(page.get_by_role("link", name="Log in")).to_be_visible(timeout=30_000)
        page.locator(".bk-tab", has_text="Sweeps").click()
        info = page.locator(".gf-sweep-info")
        expect(info).to_contain_text("No sweep stored yet.")
        # sweeps appear once stored and reloaded; the newest (the plain sweep) is shown
        write_demo_sweeps(db)
        page.get_by_role("button", name="Reload").click()
        expect(info).to_contain_text("grid-sweep")
        heatmap = page.locator(".gf-sweep-heatmap")
        expect(heatmap.locator("canvas").first).to_be_visible()
        page.wait_for_function(AXES_JS, arg=["atr_start", "levels"], timeout=10_000)
        expect(page.locator(".gf-sweep-grade")).to_be_hidden()
        screenshot(page, "app_sweeps_heatmap")

        page.locator(".gf-sweep-select select").select_option(
            label=f"grid-wfo · wfo · grid_atr · {len(sweep_combos())} combos")
        expect(info).to_contain_text("grid-wfo")
        expect(page.locator(".gf-sweep-slice select")).to_have_value(
            "IS · mean over windows")
        expect(page.locator(".gf-sweep-symbol select")).to_have_value(SWEEP_SYMBOLS[0])
        expect(page.locator(".gf-sweep-metric select")).to_have_value("sharpe")
        expect(heatmap.locator("canvas").first).to_be_visible()
        # the axes follow the X and Y pickers
        page.locator(".gf-sweep-x select").select_option("sma_period")
        page.locator(".gf-sweep-y select").select_option("side")
        page.wait_for_function(AXES_JS, arg=["sma_period", "side"], timeout=10_000)
        rows = page.locator(".gf-sweep-top tbody tr")
        expect(rows).to_have_count(20)
        _expect_first_row(page, "sharpe", SWEEP_SYMBOLS[0])
        expect(page.locator(".gf-sweep-grade")).to_have_text("B")
        summary = page.locator(".gf-sweep-summary")
        for label in ("DSR", "MC p-value", "consistency", "OOS/IS ratio", "stability"):
            expect(summary).to_contain_text(label)
        expect(page.locator(".gf-sweep-scatter canvas").first).to_be_visible()
        windows = page.locator(".gf-sweep-windows tbody tr")
        expect(windows).to_have_count(SWEEP_WINDOWS)
        expect(windows.first).to_contain_text("2024-01-01 00:00")
        screenshot(page, "app_sweeps_wfo")
        # another metric, another best combination on top
        page.locator(".gf-sweep-metric select").select_option("net_pnl")
        _expect_first_row(page, "net_pnl", SWEEP_SYMBOLS[0])
        assert _best("net_pnl", SWEEP_SYMBOLS[0], "is")[0] != _best(
            "sharpe", SWEEP_SYMBOLS[0], "is")[0]
        # the other symbol has its own grade
        page.locator(".gf-sweep-symbol select").select_option(SWEEP_SYMBOLS[1])
        expect(page.locator(".gf-sweep-grade")).to_have_text("C")
        _expect_first_row(page, "net_pnl", SWEEP_SYMBOLS[1])


@needs_browser
def test_a_real_walk_forward_from_the_cli_shows_in_the_tab(tmp_path: Path) -> None:
    """`gridflow wfo` on the bundled BTC/USDT candles, then the tab reads what it stored:
    the grade of the stored report, every window, the best in-sample combination on top."""
    import json
    import subprocess
    import sys

    from gridflow.journal.sweep_store import read_results, read_wfo

    db = f"sqlite:///{tmp_path / 'wfo.db'}"
    res = subprocess.run(
        [sys.executable, "-m", "gridflow.cli", "wfo", "--strategy", "grid_atr",
         "--param", "atr_start=1,2,3", "--param", "sl_pct=0.05,0.1", "--param",
         "side=long,short", "--set", "levels=3", "--start", "2021-01-01", "--end",
         "2024-01-01", "--is-days", "180", "--oos-days", "90", "--db", db, "--json",
         "--no-progress"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    sid, n = out["sweep_id"], out["n_combos"]
    windows, summaries = read_wfo(db, sid)
    is_rows = read_results(db, sid, phase="is")
    mean_sharpe = is_rows.groupby("combo_id")["sharpe"].mean()
    with app_server(db, users=USERS) as url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 2700})
        page.goto(url)
        page.locator(".bk-tab", has_text="Sweeps").click()
        page.locator(".gf-sweep-select select").select_option(
            label=f"{sid} · wfo · grid_atr · {n} combos")
        expect(page.locator(".gf-sweep-info")).to_contain_text(sid)
        expect(page.locator(".gf-sweep-grade")).to_have_text(summaries["BTC/USDT"]["grade"])
        expect(page.locator(".gf-sweep-windows tbody tr")).to_have_count(len(windows))
        expect(page.locator(".gf-sweep-top tbody tr")).to_have_count(min(20, n))
        expect(page.locator(".gf-sweep-heatmap canvas").first).to_be_visible()
        expect(page.locator(".gf-sweep-scatter canvas").first).to_be_visible()
        first = page.locator(".gf-sweep-top tbody tr").first.locator("td")
        shown = float(first.nth(3).inner_text().replace(",", ""))  # 3 params, then Sharpe
        assert shown == pytest.approx(mean_sharpe.max(), rel=1e-5)
        screenshot(page, "app_sweeps_real_wfo")
