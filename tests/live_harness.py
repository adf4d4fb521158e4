"""Drive ``python -m bytewax.run dataflows.live:build(...)`` against the local exchange.

The exchange runs in the test process on a manual clock; the driver closes one candle at
a time once the flow has caught up (the engine journaled the last closed candle and the
broker has answered every intent), so runs are comparable candle by candle.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gridflow.data import CANDLES_DIR
from gridflow.data.candle_files import read_candle_file

H = 3_600_000
KEY, SECRET = "AKIA-GRIDFLOW-TEST-KEY", "SUPER-SECRET-VALUE-7f3a9c"
PASSPHRASE = "PASS-PHRASE-GRIDFLOW-2c9e"  # Bitget's third credential
MARKETS = {"BTC/USDT": {"price_tick": 0.1, "amount_step": 0.001, "min_amount": 0.001,
                        "min_notional": 5.0},
           "ETH/USDT": {"price_tick": 0.01, "amount_step": 0.001, "min_amount": 0.001,
                        "min_notional": 5.0},
           "SOL/USDT": {"price_tick": 0.01, "amount_step": 1.0, "min_amount": 1.0,
                        "min_notional": 5.0},
           "XRP/USDT": {"price_tick": 0.0001, "amount_step": 0.1, "min_amount": 0.1,
                        "min_notional": 5.0},
           "ADA/USDT": {"price_tick": 0.0001, "amount_step": 1.0, "min_amount": 1.0,
                        "min_notional": 5.0}}
"""Binance USDⓈ-M filters of the bundled symbols."""
FILES = {s: f"binance_{s.replace('/', '_')}_1h.csv.gz" for s in MARKETS}


def candles(symbol: str) -> np.ndarray:
    """Bundled 1h candles of ``symbol`` as (n, 6) ts, o, h, l, c, v."""
    c = read_candle_file(CANDLES_DIR / FILES[symbol])
    return np.column_stack([c["ts"].astype(float), c["open"], c["high"], c["low"], c["close"],
                            c["volume"]])


def start_exchange(start_ms: int, faults=None, symbols=("BTC/USDT", "ETH/USDT"), rows=None,
                   funding=None, leverage: int = 1, venue: str = "binanceusdm"):
    """The local exchange on a manual clock; ``rows``: symbol -> (n, 6) candles instead
    of the bundled ones; ``funding``: symbol -> (settlement times, rates); ``venue``:
    the dialect it speaks (``"binanceusdm"``, ``"bitget"`` or ``"binance"`` spot, whose
    real filters it keeps: :data:`MARKETS` are Binance USDⓈ-M's)."""
    from gridflow.fakex import FakeExchange

    rows = rows or {s: candles(s) for s in symbols}
    kw = ({"markets": {s: MARKETS[s] for s in symbols}} if venue == "binanceusdm"
          else {"dialect": venue, "passphrase": PASSPHRASE} if venue == "bitget"
          else {"dialect": venue})
    fx = FakeExchange(candles={s: rows[s] for s in symbols}, timeframe="1h",
                      start_ms=start_ms, api_key=KEY, secret=SECRET, balance_usdt=10_000.0,
                      faults=faults, clock="manual", funding=funding, leverage=leverage, **kw)
    fx.start()
    return fx


STREAMING: dict[Path, bool] = {}
"""Journal path -> whether its flow was configured with websocket streams."""

GRID = {"sma_period": 24, "atr_period": 14, "levels": 3, "atr_start": 0.5, "atr_step": 0.75,
        "sl_pct": 0.04}


def write_live_config(path: Path, db: Path, fx, end_ms: int, mode: str = "live",
                      warmup: int = 48, extra: str = "", symbols=("BTC/USDT", "ETH/USDT"),
                      run_id: str = "live-test", strategy: dict | None = None,
                      risk: dict | None = None, leverage: float = 1.0,
                      streams: str = "websocket", stream_opts: dict | None = None,
                      timeout_ms: int = 1500, venue: str = "binanceusdm",
                      markets: dict | None = None) -> Path:
    """A live (or paper) preset trading a grid_atr (:data:`GRID`, updated with
    ``strategy``) on ``symbols`` at ``fx``; ``risk`` adds ``[accounts.risk]`` fields;
    ``streams``: ``"websocket"`` (the exchange's streams, REST reconciliation every
    ``stream_opts["reconcile_s"]``) or ``"poll"`` for both the candles and the account
    (always on ``venue = "bitget"``: the local exchange streams Binance only);
    ``markets``: the replay's filters per symbol (default :data:`MARKETS`). Fees are
    left to the config's default, the venue's regular tier, which the local exchange's
    dialect charges too."""
    if venue != "binanceusdm":
        streams = "poll"
    markets = markets or MARKETS
    STREAMING[Path(db)] = streams == "websocket"
    strat = {"name": "grid_atr", **GRID, **(strategy or {})}
    grid = "".join(f"{k} = {v!r}\n" for k, v in strat.items()).replace("'", '"')
    limits = "".join(f"{k} = {v!r}\n" for k, v in {"max_margin_ratio": 0.9,
                                                     **(risk or {})}.items())
    urls = ", ".join(f'{k} = "{v}"' for k, v in fx.ccxt_urls().items())
    mk = "".join(f'[markets."{s}"]\namount_step = {markets[s]["amount_step"]}\n'
                 f'price_tick = {markets[s]["price_tick"]}\nmin_amount = '
                 f'{markets[s]["min_amount"]}\nmin_notional = {markets[s]["min_notional"]}\n'
                 for s in symbols)
    sy = ", ".join(f'"{s}"' for s in symbols)
    opts = {"candles": streams, "account": streams, "reconcile_s": 1.0, "stale_s": 10.0,
            "fill_lag_s": 2.0, "reconnect_max_s": 0.5, **(stream_opts or {})}
    st = "".join(f"{k} = {v!r}\n" for k, v in opts.items()).replace("'", '"')
    ws = ", ".join(f'{k} = "{v}"' for k, v in fx.ccxt_ws_urls().items()) \
        if streams == "websocket" else ""
    path.write_text(f"""
db_url = "sqlite:///{db}"
run_id = "{run_id}"
command_poll_s = 0.05
equity_every_ms = 3600000
{extra}
[fees]
slippage = 0.0
{mk}
[[accounts]]
name = "live"
capital_quote = 10000.0
leverage = {leverage}
symbols = [{sy}]
[accounts.strategy]
{grid}[accounts.risk]
{limits}[live]
mode = "{mode}"
allow_live = true
allow_beta_venue = {str(venue == "binance").lower()}
warmup_candles = {warmup}
candle_poll_s = 0.05
exchange_poll_s = 0.05
end_ms = {end_ms}
[live.streams]
{st}[live.retry]
base_delay_s = 0.01
max_delay_s = 0.1
[live.exchange]
id = "{venue}"
timeout_ms = {timeout_ms}
rate_limit_ms = 0
urls = {{ {urls} }}
ws_urls = {{ {ws} }}
""")
    return path


def live_env(db: Path) -> dict:
    return dict(os.environ, GRIDFLOW_LIVE__EXCHANGE__API_KEY=KEY,
                GRIDFLOW_LIVE__EXCHANGE__SECRET=SECRET,
                GRIDFLOW_LIVE__EXCHANGE__PASSWORD=PASSPHRASE, GRIDFLOW_DB_URL=f"sqlite:///{db}")


STARTED: list[LiveProcess] = []
"""Every live flow process started by a test (killed after each test, passed or not)."""


def kill_all() -> None:
    """SIGKILL every live flow process still running: a failed test must not leave a
    flow retrying against a stopped exchange and taking a core from the next tests."""
    while STARTED:
        STARTED.pop().kill()


class LiveProcess:
    """One ``python -m bytewax.run`` of the live flow, restartable with recovery."""

    def __init__(self, cfg: Path, db: Path, workdir: Path, recovery: bool = True) -> None:
        self.cfg, self.db, self.dir = cfg, db, workdir
        self.rec = workdir / "recovery"
        self.n = 0
        self.proc: subprocess.Popen | None = None
        if recovery and not self.rec.exists():
            self.rec.mkdir(parents=True)
            subprocess.run([sys.executable, "-m", "bytewax.recovery", str(self.rec), "1"],
                           check=True)
        self.recovery = recovery

    def start(self) -> None:
        args = [sys.executable, "-m", "bytewax.run", f"dataflows.live:build('{self.cfg}')"]
        if self.recovery:
            args += ["-r", str(self.rec), "-s", "1", "-b", "0"]
        self.n += 1
        if self not in STARTED:
            STARTED.append(self)
        log = open(self.dir / f"live-{self.n}.log", "w")
        self.proc = subprocess.Popen(args, env=live_env(self.db), stdout=log, stderr=log,
                                     cwd=Path(__file__).resolve().parents[1])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout)

    def logs(self) -> str:
        return "".join(p.read_text() for p in sorted(self.dir.glob("live-*.log")))


def caught_up(db: Path, run_id: str, last_open_ms: int) -> bool:
    """The engine journaled candle ``last_open_ms`` and the broker answered every
    intent (no write-ahead row is still ``sending``)."""
    from gridflow.journal.broker_rows import read_broker
    from gridflow.journal.store import read_summaries

    url = f"sqlite:///{db}"
    try:
        summ = read_summaries(url, run_id)
        rows = read_broker(url, run_id)
    except Exception:  # the flow has not created the tables yet
        return False
    if not summ or summ[0]["last_ts_ms"] < last_open_ms:
        return False
    return all(r["status"] != "sending" for r in rows)


def settle(db: Path, run_id: str, last_open_ms: int, proc: LiveProcess | None = None,
           quiet_s: float = 0.3, timeout: float = 60.0, fx=None) -> None:
    """Wait until :func:`caught_up` holds and the broker table stops changing for
    ``quiet_s`` (protective orders after fills come one poll later). With ``fx`` (live
    mode), also until the flow completed two exchange-state polls after that and the
    broker is quiet again: the engine has seen the exchange as it stands and answered,
    however loaded the machine, so runs stay comparable step by step. An order the
    engine placed in answer may trade at once (a marketable take profit): then it waits
    until that fill is journaled and answered too, so the next step starts from the same
    exchange state in every run."""
    _quiet(db, run_id, last_open_ms, proc, quiet_s, timeout, drained=fx is not None)
    if fx is None:
        return
    t_end = time.monotonic() + timeout
    streaming = STREAMING.get(Path(db), False)
    while proc is None or proc.alive():
        traded = len(fx.trades())
        # polling: the one in flight, then two whole cycles; streaming: fills come as
        # they happen, the REST reconciliation runs on its own clock
        marks = _mark_polls(fx) + (0 if streaming else 3)
        while _mark_polls(fx) < marks and time.monotonic() < t_end:
            if proc is not None and not proc.alive():
                return
            time.sleep(0.01)
        while _unjournaled_fills(db, run_id, fx) and time.monotonic() < t_end:
            time.sleep(0.02)
        _quiet(db, run_id, last_open_ms, proc, quiet_s, timeout, drained=True)
        if len(fx.trades()) == traded or time.monotonic() >= t_end:
            return


def _unjournaled_fills(db: Path, run_id: str, fx) -> bool:
    """The exchange traded an order of the run that the journal has no fill of yet."""
    from gridflow.journal.store import read_fills, read_orders

    url = f"sqlite:///{db}"
    ours = {o["client_order_id"] for o in read_orders(url, run_id)}
    have = {f["report_id"] for f in read_fills(url, run_id)}
    return any(t["clientOrderId"] in ours and f"trade-{t['id']}" not in have
               for t in fx.trades())


def _mark_polls(fx) -> int:
    """Exchange-state poll cycles served so far (each ends with the mark prices:
    Binance USDⓈ-M's premium index, Bitget's and Binance spot's tickers)."""
    return sum(1 for r in list(fx.request_log)
               if "premiumIndex" in r["path"] or r["path"].endswith(
                   ("/mix/market/tickers", "/api/v3/ticker/24hr")))


def _quiet(db: Path, run_id: str, last_open_ms: int, proc, quiet_s: float,
           timeout: float, drained: bool = False) -> None:
    """Caught up and the broker table unchanged for ``quiet_s``; with ``drained`` also
    every order decided since ``last_open_ms`` placed or refused by the broker (none
    queued behind a request the exchange holds, none ``sending``)."""
    from gridflow.journal.broker_rows import read_broker
    from gridflow.journal.store import read_orders

    url = f"sqlite:///{db}"
    t_end = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < t_end:
        if proc is not None and not proc.alive():
            return
        if caught_up(db, run_id, last_open_ms):
            rows = read_broker(url, run_id)
            busy = sum(r["status"] == "sending" for r in rows)
            if drained:
                done = {r["client_order_id"] for r in rows if r["action"] == "place"}
                busy += sum(o["client_order_id"] not in done and o["ts_ms"] >= last_open_ms
                            for o in read_orders(url, run_id))
            sig = (len(rows), busy)
            if busy:
                last, since = None, time.monotonic()
            elif sig != last:
                last, since = sig, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
        time.sleep(0.05)
    raise TimeoutError(f"live flow did not catch up with candle {last_open_ms}"
                       + ("" if proc is None else "\n" + proc.logs()[-3000:]))


def unprotected(fx) -> list[str]:
    """Symbols whose exchange position is not covered by open reduce-only stops (spot:
    stop-limits) or the unfilled rest of a triggered stop's market order; a position
    below the market's minimum amount or notional is dust no order can sell."""
    stops: dict[str, float] = {}
    for o in fx.orders():
        if o.get("algo") and o["status"] in ("NEW", "new") and (
                o.get("reduceOnly", True) or o["type"] == "STOP_LOSS_LIMIT"):  # spot: no
            # reduce-only; its stop-limit waits as a conditional order
            stops[o["symbol"]] = stops.get(o["symbol"], 0.0) + float(o["origQty"])
        elif (not o.get("algo") and o["type"] == "MARKET" and o.get("reduceOnly")
              and o["status"] in ("NEW", "PARTIALLY_FILLED")):
            # a triggered stop whose market order was partly filled: the rest closes at
            # the next price, which protects more than a resting stop
            left = float(o["origQty"]) - float(o.get("executedQty") or 0.0)
            stops[o["symbol"]] = stops.get(o["symbol"], 0.0) + left
    out = []
    for s, p in fx.positions().items():
        spec, amt = fx.spec(s), abs(p["amount"])
        if amt < spec.min_amount or (fx.dialect == "binance"
                                     and amt * fx.price(s) < spec.min_notional):
            continue  # dust (spot: a buy's commission left below a step): no order sells it
        if amt - stops.get(s, 0.0) > 1e-9 and (fx.dialect != "binance" or amt - stops.get(
                s, 0.0) >= max(spec.amount_step, spec.min_amount)):  # spot: a rest below a
            out.append(s)  # step (a commission in base) cannot be in any order
    return out


def wait_until(cond, timeout: float, what: str, logs=None):
    """Poll ``cond()`` every 50 ms until it returns a truthy value (returned) or
    ``timeout`` wall seconds pass: AssertionError naming ``what``, the last value and
    the tail of ``logs()`` (e.g. ``LiveProcess.logs``)."""
    t_end, last = time.monotonic() + timeout, None
    while time.monotonic() < t_end:
        last = cond()
        if last:
            return last
        time.sleep(0.05)
    tail = logs()[-3000:] if logs is not None else ""
    raise AssertionError(f"{what} not within {timeout} s (last: {last!r})\n{tail}")
