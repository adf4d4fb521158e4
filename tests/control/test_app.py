"""The Panel control app: auth and state units, then Chromium through Playwright.

Browser tests wait on page elements (Playwright ``expect``), never on sleeps; the
engine side is polled through the client with deadlines. Screenshots go to
``tests/artifacts/``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("panel")
pytest.importorskip("playwright.sync_api")

from app_harness import (
    CHROMIUM,
    app_server,
    bundled_candles,
    chromium,
    enter,
    force_enable,
    force_value,
    log_in,
    param_input,
    screenshot,
    until,
    write_crash_config,
)
from playwright.sync_api import expect

from gridflow.control.client import GridflowClient
from gridflow.journal.commands import last_command_id, read_commands
from gridflow.journal.store import list_runs

USERS = "alice:pw-alice,bob:p:w2"
needs_browser = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium); required in CI",
)


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module's browser tests."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def crash_server(crash_db: str):
    """The app serving :func:`crash_db` (users :data:`USERS`), shared by the tests that
    read it; none of them issues a command."""
    with app_server(crash_db, users=USERS) as url:
        yield url


# ---- units -------------------------------------------------------------------------------
def _backtest_tab(page, url: str) -> None:
    log_in(page, url, "bob", "p:w2")
    page.locator(".bk-tab", has_text="Backtest").click()
    expect(page.locator(".gf-job").get_by_text("Pick a preset")).to_be_visible()


@needs_browser
def test_anonymous_sees_live_read_only_and_actions_are_refused(crash_db: str, crash_server: str,
                                                               browser) -> None:
    before = last_command_id(crash_db)
    url = crash_server
    with browser.new_context(viewport={"width": 1400, "height": 1600}) as ctx:
        page = ctx.new_page()
        page.goto(url)
        expect(page.locator(".bk-tab.bk-active")).to_have_text("Live", timeout=30_000)
        expect(page.get_by_text("Kill switch: ACTIVE")).to_be_visible()
        expect(page.get_by_text("SESSION_LOSS_GRID").first).to_be_visible()
        expect(page.get_by_role("link", name="Log in")).to_be_visible()
        for name in ("Reset kill switch", "Pause", "Resume"):
            expect(page.get_by_role("button", name=name)).to_be_disabled()
        # events read as sentences with UTC dates and rounded numbers, never raw JSON
        events = page.locator(".gf-events")
        expect(events).to_contain_text(re.compile(
            r"Kill switch DAILY_LOSS tripped: -\d+\.\d\d % against a limit of -10\.00 %"))
        expect(events).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d"))
        expect(events).not_to_contain_text("{")
        expect(events).not_to_contain_text(re.compile(r"\d\.\d{7}"))
        screenshot(page, "app_anonymous_live")
        # a crafted client re-enables the button: the server still refuses
        assert force_enable(page, "Reset kill switch") >= 1
        page.get_by_role("button", name="Reset kill switch").click()
        expect(page.locator(".gf-ack")).to_contain_text(
            "refused: reset kill switch needs a logged-in user")
        screenshot(page, "app_anonymous_refused")
        # reading is open to guests: compare the two runs side by side
        page.locator(".bk-tab", has_text="Compare").click()
        expect(page.get_by_text("No curves yet")).to_be_visible()
        page.locator(".choices").first.click()
        choices = page.locator(".choices__list--dropdown .choices__item--choice")
        expect(choices).to_have_count(2)
        for run_id in choices.all_inner_texts():
            choices.filter(has_text=run_id).click()
        expect(page.locator(".gf-compare th")).to_have_count(3)  # metric + two runs
        expect(page.locator(".gf-compare")).to_contain_text("max_drawdown_pct")
        expect(page.get_by_text("No curves yet")).to_be_hidden()
        page.keyboard.press("Escape")
        screenshot(page, "app_anonymous_compare")
    assert last_command_id(crash_db) == before


@needs_browser
def test_without_users_everyone_is_read_only(crash_db: str, browser) -> None:
    with app_server(crash_db, users="") as url, browser.new_context() as ctx:
        page = ctx.new_page()
        page.goto(url)
        expect(page.get_by_text("no users configured")).to_be_visible(timeout=30_000)
        expect(page.get_by_role("button", name="Reset kill switch")).to_be_disabled()
        expect(page.get_by_role("link", name="Log in")).to_have_count(0)


def _acks(db: str) -> dict[int, list[dict]]:
    """Command id -> its acknowledgement events in the journal (any run)."""
    from gridflow.journal.schema import EventRow
    from gridflow.journal.store import connect

    t = EventRow.__table__
    with connect(db) as conn:
        rows = conn.execute(t.select().where(t.c.kind.in_(["command_applied",
                                                            "command_rejected"]))).mappings()
        out: dict[int, list[dict]] = {}
        for r in rows:
            out.setdefault(int(r["detail"]["command_id"]), []).append(dict(r))
    return out


@needs_browser
def test_pause_resume_and_reset_round_trip_once_each_while_a_paced_replay_runs(
        tmp_path: Path, browser) -> None:
    """The acceptance test of the control plane: a paced replay in a child process, a
    user logs in, double-clicks Pause, Resume and Reset kill switch; each is shown as
    applied in the page and is in the journal exactly once (one command row, one
    ``command_applied`` acknowledgement)."""
    db = f"sqlite:///{tmp_path / 'live.db'}"
    client = GridflowClient(db, user="test")
    job = client.launch_replay(write_crash_config(tmp_path), pace_s=0.05, chunk_size=1)
    try:
        with app_server(db, users=USERS) as url, browser.new_context(
                viewport={"width": 1280, "height": 800}) as ctx:
            page = ctx.new_page()
            log_in(page, url, "alice", "pw-alice")
            ack, summary = page.locator(".gf-ack"), page.locator(".gf-summary")

            def status() -> dict:
                assert not job.done, job.errors()[-3000:]
                try:
                    return client.status("crash")
                except LookupError:
                    return {}

            until(lambda: status().get("kill_switch"), 120, "the kill switch to trip")
            # act once the crash is over (candle 120), so nothing trips the switch again
            until(lambda: status().get("candles", 0) >= 125, 60, "the end of the crash")
            expect(page.get_by_text("Kill switch: ACTIVE")).to_be_visible(timeout=15_000)
            expect(summary).to_contain_text("running")
            screenshot(page, "app_live_kill_switch")
            for button, said, shown in (
                    ("Pause", "pause (crash): applied", lambda: expect(summary).to_contain_text(
                        "PAUSED", timeout=15_000)),
                    ("Resume", "resume (crash): applied", lambda: expect(
                        summary).not_to_contain_text("PAUSED", timeout=15_000)),
                    ("Reset kill switch", "reset kill switch (crash): applied",
                     lambda: expect(page.get_by_text("Kill switch: none active")).to_be_visible(
                         timeout=15_000))):
                page.get_by_role("button", name=button).dblclick()  # one command, not two
                expect(ack).to_contain_text(said, timeout=15_000)
                shown()
                expect(page.get_by_role("button", name=button)).to_be_enabled()
            screenshot(page, "app_live_reset_applied")
            events = page.locator(".gf-events")
            for line in ("Command pause applied by alice", "Command resume applied by alice",
                         "Command reset kill switch applied by alice"):
                expect(events).to_contain_text(line, timeout=15_000)
    finally:
        job.stop()
    cmds = read_commands(db, 0)
    assert [(c["kind"], c["issued_by"]) for c in cmds] == [
        ("pause", "alice"), ("resume", "alice"), ("reset_kill_switch", "alice")]
    acks = _acks(db)
    assert sorted(acks) == [c["command_id"] for c in cmds]
    for c in cmds:
        (event,) = acks[c["command_id"]]
        assert (event["kind"], event["reason"]) == ("command_applied", c["kind"])


@needs_browser
def test_every_control_is_reachable_on_a_phone_and_a_laptop(crash_server: str, browser
                                                            ) -> None:
    """At 390x844 and 1280x800 every control scrolls into view inside the viewport,
    and before a backtest the page shows sentences, not empty axes."""
    def inside(locator, vw: int, vh: int, what: str) -> None:
        locator.scroll_into_view_if_needed()
        box = locator.bounding_box()
        assert box is not None, f"{what}: not rendered"
        assert box["x"] >= 0 and box["x"] + box["width"] <= vw, f"{what} at {vw}px: {box}"
        assert box["y"] >= 0 and box["y"] + box["height"] <= vh, f"{what} at {vh}px: {box}"

    for vw, vh in ((390, 844), (1280, 800)):
        with browser.new_context(viewport={"width": vw, "height": vh}) as ctx:
            page = ctx.new_page()
            log_in(page, crash_server, "alice", "pw-alice")
            expect(page.get_by_text("Kill switch: ACTIVE")).to_be_visible(timeout=15_000)
            for name in ("Live", "Backtest", "Compare", "Sweeps"):
                inside(page.locator(".bk-tab", has_text=name), vw, vh, f"tab {name}")
            live = {"account picker": page.locator(".gf-account select"),
                    "run picker": page.locator(".gf-run select"),
                    **{b: page.get_by_role("button", name=b)
                       for b in ("Reset kill switch", "Pause", "Resume")},
                    "log out": page.get_by_role("link", name="Log out")}
            for what, loc in live.items():
                expect(loc).to_be_visible()
                inside(loc, vw, vh, what)
            screenshot(page, f"app_live_{vw}x{vh}")
            page.locator(".bk-tab", has_text="Backtest").click()
            expect(page.locator(".gf-job")).to_contain_text("Pick a preset")
            backtest = {"preset": page.locator(".gf-preset select"),
                        "start date": page.locator(".gf-start input.bk-input.form-control"),
                        "end date": page.locator(".gf-end input.bk-input.form-control"),
                        "symbols": page.locator(".gf-symbols select"),
                        "a parameter": param_input(page, 0, "sl_frac"),
                        "Run backtest": page.get_by_role("button", name="Run backtest")}
            for what, loc in backtest.items():
                expect(loc).to_be_visible()
                inside(loc, vw, vh, what)
            # no backtest yet: sentences instead of charts with 1970 axes
            expect(page.locator(".gf-bt-equity").get_by_text("No equity yet")).to_be_visible()
            expect(page.get_by_text("No chart yet")).to_be_visible()
            expect(page.locator(".gf-bt-equity canvas").first).to_be_hidden()
            expect(page.locator(".gf-candles")).to_have_count(0)
            screenshot(page, f"app_backtest_{vw}x{vh}")
            page.locator(".bk-tab", has_text="Compare").click()
            inside(page.locator(".choices").first, vw, vh, "runs to compare")


LEGEND_JS = """() => { const out = [];
    for (const doc of Bokeh.documents) for (const m of doc.all_models)
        if (m.type === "LegendItem") out.push(typeof m.label === "string" ? m.label
                                              : m.label.value);
    return out; }"""


@needs_browser
def test_logged_in_user_runs_a_backtest(tmp_path: Path, browser) -> None:
    db = f"sqlite:///{tmp_path / 'bt.db'}"
    picked = ["BTC/USDT", "ETH/USDT"]
    with app_server(db, users=USERS) as url, browser.new_context(
            viewport={"width": 1400, "height": 2000}) as ctx:
        page = ctx.new_page()
        page.goto(url)
        expect(page.get_by_text("No equity yet — run a backtest or start a flow")).to_be_visible(
            timeout=30_000)  # an empty journal: a sentence, no empty axes
        _backtest_tab(page, url)
        expect(page.locator("input[value='2024-01-01']").first).to_be_attached()
        expect(page.locator("input[value='2024-03-01']").first).to_be_attached()
        symbols = page.locator(".gf-symbols select")
        expect(symbols.locator("option")).to_have_count(5)
        expect(param_input(page, 0, "atr_start")).to_have_value("3")  # the preset's value
        expect(param_input(page, 1, "offsets")).to_have_value("0.04, 0.07, 0.1")
        symbols.select_option(picked)
        atr_start = param_input(page, 0, "atr_start")
        enter(atr_start, "2.5")
        expect(atr_start).to_have_value("2.5")
        screenshot(page, "app_backtest_form")
        page.get_by_role("button", name="Run backtest").click()
        progress = page.locator(".gf-progress progress")
        expect(progress).to_be_visible(timeout=30_000)
        status = page.locator(".gf-job strong")
        expect(status).to_have_text(re.compile("done|failed"), timeout=180_000)
        expect(status).to_have_text("done")
        expect(progress).to_have_attribute("value", "100")
        metrics = page.locator(".gf-metrics")
        for metric in ("return_pct", "max_drawdown_pct", "sharpe", "fills"):
            expect(metrics.get_by_text(metric, exact=True)).to_be_visible()
        expect(page.locator(".gf-bt-equity canvas").first).to_be_visible()
        expect(page.locator(".gf-bt-equity .gf-placeholder")).to_be_hidden()
        expect(page.locator(".gf-candles canvas").first).to_be_visible()
        expect(page.locator(".gf-params-error")).not_to_contain_text("Invalid")
        # the strategy chart: the whole window, what the strategy quoted and did
        caption = page.locator(".gf-chart-caption")
        expect(caption).to_contain_text("BTC/USDT · grid_atr (long) · 1,440 candles")
        expect(caption).to_contain_text(re.compile(
            r"grid levels L0–L4 · take profit · stop · [1-9]\d* entries · [1-9]\d* exits · "
            r"sma_24 · atr_14 \(panel\)"))
        page.wait_for_function(f"() => ({LEGEND_JS})().includes('exit')", timeout=15_000)
        assert list(dict.fromkeys(page.evaluate(LEGEND_JS))) == [
            "level", "sma_24", "take profit", "stop", "entry", "exit"]
        expect(page.locator(".gf-panel canvas").first).to_be_visible()
        bt_events = page.locator(".gf-bt-events")
        expect(bt_events).to_contain_text(re.compile(r"Denied buy L\d [\d.]+ @ [\d,]+\.\d\d"))
        expect(bt_events).not_to_contain_text("{")
        page.locator(".gf-chart-caption").scroll_into_view_if_needed()
        screenshot(page, "app_backtest_done")
        # another symbol: its own chart
        page.locator(".gf-chart-symbol select").select_option("ETH/USDT")
        expect(caption).to_contain_text("ETH/USDT · grid_atr (long) · 1,440 candles",
                                        timeout=15_000)
    (run,) = list_runs(db)
    cfg = json.loads(run["config_json"])
    (account,) = cfg["accounts"]
    assert account["symbols"] == picked
    assert [Path(f["path"]).name for f in cfg["data"]] == [
        "binance_BTC_USDT_1h.csv.gz", "binance_ETH_USDT_1h.csv.gz"]
    (strategy,) = account["strategies"]
    assert (strategy["name"], strategy["symbols"], strategy["atr_start"]) == (
        "grid_atr", picked, 2.5)
    start, end = 1_704_067_200_000, 1_709_251_200_000  # 2024-01-01, 2024-03-01 UTC
    assert (cfg["start_ms"], cfg["end_ms"]) == (start, end)
    report = GridflowClient(db).report(run["run_id"])
    assert report["candles"] == bundled_candles(picked, start, end) > 0
    assert report["first_ts_ms"] >= start


@needs_browser
def test_invalid_parameters_show_the_error_and_launch_nothing(tmp_path: Path, browser) -> None:
    db = f"sqlite:///{tmp_path / 'bad.db'}"
    with app_server(db, users=USERS) as url, browser.new_context(
            viewport={"width": 1400, "height": 1400}) as ctx:
        page = ctx.new_page()
        _backtest_tab(page, url)
        levels = param_input(page, 0, "levels")
        # the input keeps to the field's bounds (1..20): a typed 0 is not taken
        expect(levels).to_have_value("5")
        enter(levels, "0")
        expect(levels).to_have_value("5")
        # a crafted client sends 0 anyway: the server validates and refuses
        assert force_value(page, "levels", 5, 0) == 1
        expect(levels).to_have_value("0")
        page.get_by_role("button", name="Run backtest").click()
        error = page.locator(".gf-params-error")
        expect(error).to_contain_text("levels: Input should be greater than or equal to 1")
        expect(error).to_contain_text("nothing launched")
        # a value the input cannot bound: sl_frac must stay below 1
        enter(levels, "5")
        sl_frac = param_input(page, 0, "sl_frac")
        enter(sl_frac, "1")
        page.get_by_role("button", name="Run backtest").click()
        expect(error).to_contain_text("sl_frac: Input should be less than 1")
        expect(error).not_to_contain_text("levels")
        expect(page.locator(".gf-job")).to_contain_text("Pick a preset")
        expect(page.locator(".gf-progress progress")).to_be_hidden()
        screenshot(page, "app_backtest_invalid")
    assert list_runs(db) == []
