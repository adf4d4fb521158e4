"""Harness of the control app's browser tests: the app server, Chromium, test data.

The app runs in a child process (``python -m gridflow.control.app --port 0``); it
prints its URL once the server socket is bound, which is what the tests wait for.
Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright's sync API.
"""

from __future__ import annotations

import gzip
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = os.environ.get("GRIDFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
needs_browser = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium); required in CI",
)
"""Mark of the tests that drive Chromium."""
H = 3_600_000
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def crash_rows(start_ms: int = START_MS) -> list[str]:
    """60 h flat, 60 h falling 1.5 %/h, then 1000 h of alternating +1 % / -1 % chop."""
    rows, price, ts = [], 40_000.0, start_ms
    closes = [price] * 60
    for _ in range(60):
        closes.append(closes[-1] * 0.985)
    for i in range(1000):
        closes.append(closes[-1] * (1.01 if i % 2 == 0 else 1 / 1.01))
    for close in closes:
        hi, lo = max(price, close) * 1.001, min(price, close) * 0.999
        rows.append(f"{ts},{price!r},{hi!r},{lo!r},{close!r},10.0")
        price, ts = close, ts + H
    return rows


def write_crash_config(d: Path) -> Path:
    """``binance_BTC_USDT_1h.csv.gz`` of :func:`crash_rows` and a 3x-leveraged grid
    account ``crash`` whose session loss limit (5 %) trips early in the fall."""
    f = d / "binance_BTC_USDT_1h.csv.gz"
    body = "timestamp,open,high,low,close,volume\n" + "\n".join(crash_rows()) + "\n"
    f.write_bytes(gzip.compress(body.encode()))
    cfg = d / "crash.toml"
    cfg.write_text(
        f'[[data]]\npath = "{f}"\n\n'
        '[[accounts]]\nname = "crash"\ncapital_quote = 10000.0\nleverage = 3.0\n'
        'symbols = ["BTC/USDT"]\n\n'
        '[accounts.strategy]\nname = "grid_atr"\nsma_period = 24\natr_period = 14\n'
        "levels = 5\natr_start = 1.0\natr_step = 0.5\nsl_pct = 0.5\n\n"
        "[accounts.risk]\nsession_loss_grid = 0.05\n"
    )
    return cfg


@contextmanager
def app_server(db_url: str, users: str = "", timeout_s: float = 60.0, *,
               args: tuple[str, ...] = (), cwd: Path | None = None):
    """Serve the app on a free port of 127.0.0.1; yields its URL (``https://`` when
    ``args`` hold ``--ssl-certfile``/``--ssl-keyfile``).

    ``users`` goes to ``GRIDFLOW_APP_USERS`` ("" = no users, read-only); ``args`` are
    more app options; ``cwd`` is the server's working directory, kept off its
    ``sys.path`` (``python -P``, like the ``gridflow`` script) so a folder there cannot
    shadow the package.
    """
    env = dict(os.environ, GRIDFLOW_APP_USERS=users, PYTHONUNBUFFERED="1")
    flags = ["-P"] if cwd is not None else []
    proc = subprocess.Popen(
        [sys.executable, *flags, "-m", "gridflow.control.app", "--db", db_url, "--port", "0",
         *args],
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    log: list[str] = []
    try:
        url = _wait_for_url(proc, timeout_s)
        # keep draining its output (a full pipe would stall the server); shown on failure
        threading.Thread(target=lambda: log.extend(iter(proc.stdout.readline, "")),
                         daemon=True).start()
        yield url
    except BaseException:
        print("---- app server output ----\n" + "".join(log[-300:]))
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_url(proc: subprocess.Popen, timeout_s: float) -> str:
    """The URL the app prints when its socket is bound (select on its stdout)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen = []
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        if not sel.select(left):
            break
        line = proc.stdout.readline()
        if not line:  # the server died
            break
        seen.append(line)
        m = re.search(r"serving (https?://\S+/)", line)
        if m:
            return m.group(1)
    raise RuntimeError(f"app server did not start (rc={proc.poll()}):\n{''.join(seen)[-3000:]}")


@contextmanager
def chromium():
    """A headless Debian Chromium under Playwright (never ``playwright install``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    """Full-page PNG in ``tests/artifacts/``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, url: str, user: str, password: str) -> None:
    """Through the app's "Log in" link and Panel's login form, back to the app."""
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("link", name="Log in").click()
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.locator("input[name=password]").press("Enter")
    expect(page.get_by_text(f"Signed in as {user}")).to_be_visible(timeout=30_000)


# ---- waiting and pages -------------------------------------------------------------------
def until(cond, timeout_s: float, what: str, poll_s: float = 0.1):
    """Poll ``cond()`` until truthy (engine-side waits; pages use ``expect``)."""
    deadline = time.monotonic() + timeout_s
    while not (value := cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)
    return value


def force_enable(page, label: str) -> int:
    """Enable a disabled button in the browser's Bokeh document (a crafted client)."""
    return page.evaluate(
        """(label) => { let n = 0;
            for (const doc of Bokeh.documents) for (const m of doc.all_models)
                if (m.label === label) { m.disabled = false; n++; }
            return n; }""", label)


def force_value(page, title: str, old, new) -> int:
    """Set the value of the inputs titled ``title`` holding ``old`` to ``new`` in the
    browser's Bokeh document, past the input's own checks (a crafted client)."""
    return page.evaluate(
        """([title, old, value]) => { let n = 0;
            for (const doc of Bokeh.documents) for (const m of doc.all_models)
                if (m.title === title && m.value === old) { m.value = value; n++; }
            return n; }""", [title, old, new])


def enter(locator, value: str) -> None:
    """Type ``value`` into an input and leave it (Bokeh sends the value on change)."""
    locator.fill(value)
    locator.press("Tab")


def param_input(page, strategy: int, field: str):
    """The input of a strategy parameter on the Backtest page."""
    return page.locator(f".gf-strategy-{strategy} .gf-param-{field}").locator("input, select")


def bundled_candles(symbols: list[str], start_ms: int, end_ms: int) -> int:
    """Bundled candles of ``symbols`` with open times in ``[start_ms, end_ms)``."""
    from gridflow.data import bundled_candle_files
    from gridflow.data.candle_files import parse_candle_file_name, read_candle_file

    n = 0
    for path in bundled_candle_files():
        if parse_candle_file_name(path.name)[1] in symbols:
            ts = read_candle_file(path)["ts"]
            n += int(((ts >= start_ms) & (ts < end_ms)).sum())
    return n


# ---- sweeps ------------------------------------------------------------------------------
SWEEP_GRID = {"sma_period": [12, 24, 48], "atr_start": [1.0, 1.5, 2.0, 2.5], "levels": [3, 5],
              "side": ["long", "short"]}
SWEEP_SYMBOLS = ["BTC/USDT", "ETH/USDT"]
SWEEP_WINDOWS = 3
DAY = 24 * H


def sweep_combos() -> list[dict]:
    """Every combination of :data:`SWEEP_GRID`; its index is the ``combo_id``."""
    import itertools

    return [dict(zip(SWEEP_GRID, v)) for v in itertools.product(*SWEEP_GRID.values())]


def sweep_metrics(p: dict, symbol: str, window: int = -1, phase: str = "full") -> dict:
    """Metrics as a pure function of the parameters and the row key: the Sharpe ratio
    peaks at sma_period 24, atr_start 1.5, levels 5, long; the net PnL at sma_period 48,
    atr_start 2.5, levels 3, short. Out-of-sample is 0.6 x in-sample minus a penalty."""
    shift = 0.05 * SWEEP_SYMBOLS.index(symbol) + 0.02 * max(window, 0)
    sharpe = (2.0 - abs(p["atr_start"] - 1.5) - abs(p["sma_period"] - 24) / 24
              + 0.1 * p["levels"] + (0.2 if p["side"] == "long" else 0.0) + shift)
    pnl = (100 * p["atr_start"] + 2 * p["sma_period"] - 10 * p["levels"]
           + (50.0 if p["side"] == "short" else 0.0) + 100 * shift)
    if phase == "oos":
        sharpe, pnl = 0.6 * sharpe - 0.1 * abs(p["levels"] - 4), 0.5 * pnl
    dd = 0.02 * p["atr_start"] + 0.001 * p["levels"]
    return {"net_pnl": pnl, "total_return": pnl / 10_000, "max_drawdown": dd, "sharpe": sharpe,
            "sortino": 1.4 * sharpe, "calmar": pnl / 10_000 / dd, "profit_factor": 1 + sharpe / 4,
            "win_rate": 0.5 + sharpe / 20, "trades": 100 - p["sma_period"],
            "max_consecutive_losses": p["levels"], "exposure": 0.1 * p["atr_start"],
            "fees": 0.1 * (100 - p["sma_period"]), "funding": 0.5, "score": sharpe - dd}


def _result_rows(sweep_id: str, symbol: str, window: int, phase: str) -> list[dict]:
    return [{"sweep_id": sweep_id, "symbol": symbol, "window": window, "phase": phase,
             "combo_id": i, "params": p, **sweep_metrics(p, symbol, window, phase)}
            for i, p in enumerate(sweep_combos())]


def write_demo_sweeps(db_url: str, wfo_id: str = "grid-wfo", sweep_id: str = "grid-sweep"
                      ) -> None:
    """A walk-forward run (3 windows, grades B for BTC and C for ETH) and, created after
    it, a plain sweep, both of :data:`SWEEP_GRID` on :data:`SWEEP_SYMBOLS`; every metric
    from :func:`sweep_metrics`."""
    from gridflow.journal.sweep_store import create_sweep, finish_sweep, write_results, write_wfo

    combos = sweep_combos()
    spec = {"grid": SWEEP_GRID, "start_ms": START_MS, "end_ms": START_MS + 60 * DAY}
    create_sweep(db_url, wfo_id, "wfo", "grid_atr", SWEEP_SYMBOLS, spec, len(combos),
                 created_at_ms=START_MS)
    create_sweep(db_url, sweep_id, "sweep", "grid_atr", SWEEP_SYMBOLS, spec, len(combos),
                 created_at_ms=START_MS + 1000)
    for grade, symbol in zip("BC", SWEEP_SYMBOLS):
        write_results(db_url, _result_rows(sweep_id, symbol, -1, "full"))
        windows = []
        for w in range(SWEEP_WINDOWS):
            for phase in ("is", "oos"):
                write_results(db_url, _result_rows(wfo_id, symbol, w, phase))
            best = max(range(len(combos)),
                       key=lambda i: sweep_metrics(combos[i], symbol, w, "is")["sharpe"])
            m_is, m_oos = (sweep_metrics(combos[best], symbol, w, ph) for ph in ("is", "oos"))
            start = START_MS + w * 10 * DAY
            windows.append({
                "window": w, "is_start_ms": start, "is_end_ms": start + 30 * DAY,
                "oos_start_ms": start + 30 * DAY, "oos_end_ms": start + 40 * DAY,
                "best_combo_id": best, "params": combos[best], "regime": "bull",
                "is_sharpe": m_is["sharpe"], "oos_sharpe": m_oos["sharpe"],
                "is_net_pnl": m_is["net_pnl"], "oos_net_pnl": m_oos["net_pnl"],
                "is_trades": m_is["trades"], "oos_trades": m_oos["trades"],
                "oos_max_drawdown": m_oos["max_drawdown"]})
        write_wfo(db_url, wfo_id, symbol, windows,
                  {"dsr": 0.91, "mc_p_value": 0.03, "consistency": 1.0, "oos_is_ratio": 0.55,
                   "stability": 0.8}, grade)
    finish_sweep(db_url, sweep_id, 4.2)
    finish_sweep(db_url, wfo_id, 9.5)


# ---- TLS and request logs ----------------------------------------------------------------
def self_signed_cert(d: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (valid one day) and its key, PEM files in
    ``d``: ``(cert.pem, key.pem)``. Made with ``cryptography`` (a ccxt dependency)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem, key_pem = d / "cert.pem", d / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return cert_pem, key_pem


def foreign_requests(urls: list[str], host: str = "127.0.0.1") -> list[str]:
    """The URLs of ``urls`` going anywhere but ``host`` (``data:`` and ``blob:`` are
    local)."""
    from urllib.parse import urlsplit

    return [u for u in urls if urlsplit(u).scheme not in ("data", "blob")
            and urlsplit(u).hostname != host]
