"""Live latency and REST budget against the local exchange, websocket vs polling mode.

A live flow (``python -m bytewax.run dataflows.live:build(...)``, live mode, real ccxt /
ccxt.pro) trades a grid on the 5 bundled symbols at the in-process local exchange
(:mod:`gridflow.fakex`). The benchmark walks the exchange's clock through each candle in
``--sub`` pieces, ``--pause`` wall seconds apart, and records the wall time at which each
piece was published (fills, kline closes and mark prices go out on the websockets then).
The exchange logs the wall time at which each REST request arrived. Measured:

(a) candle close -> the first entry order of that candle and symbol received;
(b) entry fill -> both its take profit and its stop received (the later of the two; the
    first of each decided at the fill or later in the same piece: a burst of fills of one
    symbol in one update is answered by one move, timed from each fill's publication;
    an entry that filled as it arrived, a limit placed through the price at a candle
    close, is timed from its arrival, when the exchange filled it);
(c) mark price crossing a kill-switch limit (``session_loss_grid``; the benchmark resets
    the switch ``--ks-reset-s`` after each trip, once the walk of the candle then has
    passed its high) -> every resting entry's cancel received (the
    last of them, over all symbols). Trips are rare on market candles, so (c) has its
    own runs on :func:`sawtooth` candles: every hour falls 20 % and comes back, fills
    entries on each symbol and trips the switch with entries still resting. The
    session PnL is the take profits realized since the last reset plus the open loss;
    an hour's take profits (about 3,600 USDT here) outweigh the loss at a low (about
    1,250), so once one hour goes by without a reset (its reset landed late, as when
    resets waited for the trip's candle to close, or the low came before the entries
    were back) the account never trips again (one 1,700-hour run: every hour at first,
    then every second hour, none after hour 650; 5 of 16 100-hour accounts tripped at
    most once). The benchmark resets once the walk has passed a candle's high, and
    pools ``--ks-runs`` runs of ``--ks-candles`` hours, each a fresh account.

p50 / p99 / max (ms) and counts per mode. The REST budget: Binance USDⓈ-M request weight
per minute of wall time in the steady state, at 5 symbols here and at ``--budget-symbols``
(20) symbols in a quiet run (no fill: what each mode costs to know the market and the
account; order requests counted apart), from the exchange's request counter
(:mod:`gridflow.fakex.weights`), against Binance's 2,400 per minute. JSON in ``benchmarks/results/live_latency.json``.

    python benchmarks/live_latency.py [--candles 600] [--ks-candles 100] [--ks-runs 20] [--poll-candles 40]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psutil
from _env import AT_START
from latency_stages import breakdown, fill_wall

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from live_harness import (  # noqa: E402  (the tests' live harness)
    H,
    MARKETS,
    LiveProcess,
    caught_up,
    candles,
    start_exchange,
    write_live_config,
)

from gridflow import latency_trace  # noqa: E402
from gridflow.config.live import LiveConfig  # noqa: E402
from gridflow.fakex.faults import is_order_write  # noqa: E402
from gridflow.journal.store import read_orders  # noqa: E402

START = int(datetime(2024, 3, 4, tzinfo=timezone.utc).timestamp() * 1000)
SYMBOLS = tuple(MARKETS)
RUN = "live-test"
BINANCE_WEIGHT_PER_MIN = 2400
ORDER_POSTS = ("/fapi/v1/order", "/fapi/v1/algoOrder", "/fapi/v1/batchOrders")
BROKER_WAIT = True  # --broker-wait: live.broker_wait of the flows started
HUB = "process"  # --hub: live.streams.hub of the flows started
WAIT_MAX_S: float | None = None  # --broker-wait-max-ms: live.broker_wait_max_s
PROCS: int | None = None  # --broker-processes: live.broker_processes
TRACE = False  # --trace: the flow marks its stages, the results break the time down
GRID = {"levels": 5, "atr_start": 0.2, "atr_step": 0.4, "sl_pct": 0.03, "sma_period": 12}


def stats(ms: list[float]) -> dict:
    if not ms:
        return {"n": 0}
    a = np.asarray(ms)
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "max_ms": round(float(a.max()), 2)}


class Clock:
    """Walks the exchange through candles in pieces and remembers when each piece was
    published: exchange ms -> wall s."""

    def __init__(self, fx, sub: int, pause: float, piece: list[int] | None = None) -> None:
        self.fx, self.sub, self.pause = fx, sub, pause
        self.walls: dict[int, float] = {}
        self.closes: dict[int, float] = {}  # candle open ms -> wall of its close
        self.piece = piece if piece is not None else [0]  # pieces of the current candle
        # walked (shared by the clocks of a run, read by the resetter)

    def candle(self) -> None:
        opened = self.fx.now_ms() // H * H
        for k in range(self.sub):
            self.fx.substep(1, self.sub)
            now = self.fx.now_ms()
            self.walls[now] = time.time()
            self.piece[0] = k + 1
            time.sleep(self.pause)
        self.closes[opened] = self.walls[opened + H]
        self.piece[0] = 0

    def wall_at(self, ts: int) -> float | None:
        """Wall time of the piece whose walk reached exchange time ``ts``."""
        later = [t for t in self.walls if t >= ts]
        return self.walls[min(later)] if later else None


def sawtooth(symbol: str, n_before: int, n_after: int, depth: float) -> np.ndarray:
    """Hourly candles that fall ``depth`` (a fraction) from the open to the low in the
    first third of each hour and come back to the open (the fake exchange walks open ->
    low -> high -> close): every hour fills entries and trips a session-loss switch.
    Around the bundled price of ``symbol`` at ``START``."""
    real = candles(symbol)
    base = float(real[np.searchsorted(real[:, 0], START), 1])
    ts = START + np.arange(-n_before, n_after, dtype=np.float64) * H
    n = ts.size
    return np.column_stack([ts, np.full(n, base), np.full(n, base * 1.002),
                            np.full(n, base * (1.0 - depth)), np.full(n, base),
                            np.full(n, 100.0)])


def trip_times(db: Path) -> list[int]:
    """Exchange times (ms) of the kill-switch trips journaled so far, one per moment
    (several switches tripping on one mark are one trip)."""
    with sqlite3.connect(db, timeout=5) as conn:
        rows = conn.execute("SELECT DISTINCT ts_ms FROM events WHERE run_id = ? AND kind = ?"
                            " ORDER BY ts_ms", (RUN, "kill_switch_tripped")).fetchall()
    return [int(r[0]) for r in rows]


def resetter(db: Path, stop: threading.Event, resets: list[float], after_s: float,
             piece: list[int], sub: int) -> None:
    """Reset every kill switch once a trip is journaled, ``after_s`` later, when the walk
    of the current candle has passed its high (the walk goes open -> low -> high ->
    close; ``piece[0]``: pieces of the current candle walked, ``sub`` a candle): the
    session restarts after the hour's take profits and before the
    next hour's entries, so the next fall trips again (see the module docstring, (c)).
    ``resets`` gets the wall time of the reset of each trip (in :func:`trip_times`
    order)."""
    from gridflow.journal.commands import issue_command

    url, seen, high = f"sqlite:///{db}", 0, -(-2 * sub // 3)
    while not stop.wait(0.02):
        try:
            n = len(trip_times(db))
        except sqlite3.Error:  # tables not created yet
            continue
        if n > seen:
            time.sleep(after_s)
            while piece[0] < high and not stop.wait(0.005):  # past a candle's high
                pass
            resets.extend([time.time()] * (n - seen))
            seen = n
            issue_command(url, "live", "reset_kill_switch", {}, "bench")


def run_mode(mode: str, n_candles: int, sub: int, pause: float, workdir: Path,
             scenario: str = "market", reset_after_s: float = 0.3, tag: str = "",
             settle: int = 0) -> dict:
    """One live flow in ``mode`` over ``n_candles`` measured candles, after ``settle``
    unmeasured ones (the flow's first seconds: streams subscribing, the start's
    reconciliation and garbage collections of a fresh process): on the bundled candles
    (``scenario="market"``) or on :func:`sawtooth` candles (``"sawtooth"``: a
    kill-switch trip every hour)."""
    if scenario == "sawtooth":
        # leverage 10, levels sized on the capital (``equal``: no compounding): the
        # unrealized loss at each low (20 % under the open, two levels filled on every
        # symbol) is many times the session-loss limit (1 % of the capital), and each
        # reset restarts the session. (Sized on equity, the hourly take profits
        # compounded the levels to millions of ETH within a few hundred hours; at a 12 %
        # fall the first low only came to about the limit.)
        rows, lev = {s: sawtooth(s, 300, settle + n_candles + 5, 0.20) for s in SYMBOLS}, 10
    else:
        rows, lev = {s: candles(s) for s in SYMBOLS}, 3
    fx = start_exchange(START, symbols=SYMBOLS, rows=rows, leverage=lev)
    name = f"{mode}-{scenario}{tag}"
    db = workdir / f"{name}.db"
    cfg = write_live_config(workdir / f"{name}.toml", db, fx, START + (settle + n_candles) * H,
                            symbols=SYMBOLS, streams=mode, leverage=float(lev),
                            strategy=GRID if scenario == "market" else {**GRID, "sl_pct": 0.2},
                            risk={"session_loss_grid": 0.01, "max_margin_ratio": 0.9},
                            stream_opts={"reconcile_s": 60.0, "stale_s": 30.0, "hub": HUB})
    if not BROKER_WAIT:  # the flow decides on while the lanes send
        cfg.write_text(cfg.read_text().replace("[live]\n", "[live]\nbroker_wait = false\n", 1))
    if PROCS is not None:
        cfg.write_text(cfg.read_text().replace(
            "[live]\n", f"[live]\nbroker_processes = {PROCS}\n", 1))
    if WAIT_MAX_S is not None:
        cfg.write_text(cfg.read_text().replace(
            "[live]\n", f"[live]\nbroker_wait_max_s = {WAIT_MAX_S}\n", 1))
    if mode == "poll":  # the defaults of a real deployment, not the tests' fast polls
        text = cfg.read_text()
        text = text.replace("candle_poll_s = 0.05", "candle_poll_s = 5.0")
        text = text.replace("exchange_poll_s = 0.05", "exchange_poll_s = 2.0")
        cfg.write_text(text)
    (workdir / name).mkdir()
    trace = workdir / f"{name}.trace" if TRACE else None
    proc = LiveProcess(cfg, db, workdir / name, recovery=False)
    piece = [0]  # pieces of the current candle walked, by either clock (for the resetter)
    clock = Clock(fx, sub, pause, piece)
    stop, resets = threading.Event(), []
    watcher = threading.Thread(target=resetter,
                               args=(db, stop, resets, reset_after_s, piece, sub),
                               daemon=True)
    try:
        if trace is not None:  # the flow process marks its stages (gridflow.latency_trace)
            os.environ[latency_trace.ENV] = str(trace)
        proc.start()
        os.environ.pop(latency_trace.ENV, None)
        t0 = time.monotonic()
        while not caught_up(db, RUN, fx.now_ms() - H):  # warm-up done, engine up
            if time.monotonic() - t0 > 120:
                raise SystemExit("the live flow did not start:\n" + proc.logs()[-3000:])
            time.sleep(0.05)
        time.sleep(1.0)
        watcher.start()
        warm = Clock(fx, sub, pause, piece)
        for _ in range(settle):
            warm.candle()
        since = fx.now_ms()  # measured from here
        w0, n0 = time.time(), len(fx.request_log)
        for _ in range(n_candles):
            clock.candle()
        wall = time.time() - w0
        weight = fx.rest_weight(n0)
        time.sleep(3.0)
        stop.set()
        proc.kill()
        log = list(fx.request_log[n0:])
        trades = [t for t in fx.trades() if int(t["time"]) >= since]
    finally:
        stop.set()
        proc.kill()
        fx.stop()
    result = {"scenario": scenario, "settle_candles": settle,
              **measure(db, clock, log, trades, resets, wall, weight, mode, since)}
    if trace is not None and trace.exists():
        result["breakdown"] = breakdown(trace, read_orders(f"sqlite:///{db}", RUN), clock,
                                        log, trades, since, SYMBOLS, trip_times(db))
    return result


def measure(db, clock, log, trades, resets, wall, weight, mode, since_ms: int = 0) -> dict:
    url = f"sqlite:///{db}"
    orders = read_orders(url, RUN)
    by_cid = {o["client_order_id"]: o for o in orders}
    arrival: dict[str, float] = {}
    deletes: list[tuple[float, str]] = []
    for r in log:  # a batch request names its orders in client_order_ids
        for cid in r.get("client_order_ids") or [r.get("client_order_id")]:
            if not cid:
                continue
            if r["method"] == "POST" and r["path"] in ORDER_POSTS:
                arrival.setdefault(cid, r["wall"])
            elif r["method"] == "DELETE":
                deletes.append((r["wall"], cid))
    # (a) candle close -> first entry of (candle, symbol)
    first: dict[tuple[int, str], float] = {}
    for o in orders:
        if o["tag"].startswith("L") and o["client_order_id"] in arrival:
            key = (o["ts_ms"], o["symbol"])
            first[key] = min(first.get(key, 1e18), arrival[o["client_order_id"]])
    a_at = sorted(((w - clock.closes[ts - H]) * 1000, ts, sym) for (ts, sym), w in first.items()
                  if ts - H in clock.closes)
    a = [ms for ms, _, _ in a_at]
    # (b) entry fill -> the TP and stop that cover it received: the first of each
    # decided at the fill's time or later within one piece (several fills of a symbol
    # in one update are answered by one move, decided at the last of them: each fill
    # counts from its own publication)
    answers: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for o in orders:
        if o["tag"] in ("TP", "SL") and o["client_order_id"] in arrival:
            answers.setdefault((o["symbol"], o["tag"]), []).append(
                (o["ts_ms"], arrival[o["client_order_id"]]))
    for v in answers.values():
        v.sort()
    piece = H // clock.sub

    def covering(sym: str, tag: str, t: int) -> float | None:
        got = answers.get((sym, tag), [])
        k = bisect.bisect_left(got, (t, -1.0))
        return got[k][1] if k < len(got) and got[k][0] < t + piece else None

    b_at = []
    for t in trades:
        o = by_cid.get(t["clientOrderId"])
        if o is None or not o["tag"].startswith("L"):
            continue
        ts = int(t["time"])
        tp, sl, w = covering(o["symbol"], "TP", ts), covering(o["symbol"], "SL", ts), \
            fill_wall(clock, arrival, t)
        if w is not None and tp is not None and sl is not None:
            b_at.append(((max(tp, sl) - w) * 1000, ts, o["symbol"]))
    b_at.sort()
    b = [ms for ms, _, _ in b_at]
    # (c) kill-switch trip -> the cancels of the entries resting at it (placed at or
    # before it) received, before its reset and before the next trip (whose cancels of
    # the next hour's entries are its own)
    placed = {c: o["ts_ms"] for c, o in by_cid.items() if o["tag"].startswith("L")}
    trips = trip_times(db)
    c = []
    for i, ts in enumerate(trips):
        if ts < since_ms:  # tripped while settling
            continue
        w = clock.wall_at(ts)
        if w is None:
            continue
        nxt = clock.wall_at(trips[i + 1]) if i + 1 < len(trips) else None
        until = min(resets[i] if i < len(resets) else float("inf"),
                    nxt if nxt is not None else float("inf"))
        got = [t for t, cid in deletes if cid in placed and placed[cid] <= ts
               and w <= t < until]
        if got:
            c.append((max(got) - w) * 1000)
    return {"mode": mode, "candle_close_to_entry": stats(a), "fill_to_tp_and_stop": stats(b),
            "mark_to_kill_switch_cancels": stats(c), "trips": sum(t >= since_ms for t in trips),
            "wall_s": round(wall, 1), "rest_weight": weight,
            "rest_weight_per_min": round(weight / wall * 60, 1),
            "requests_per_min": round(len(log) / wall * 60, 1),
            "samples": {"a": a, "b": b, "c": c},  # popped by main (pooled over runs)
            # the slowest (a) events: a pattern (one symbol, one moment) names the cause
            "slowest_entries": [[round(ms, 1), ts, sym] for ms, ts, sym in a_at[-8:]],
            # the slowest (b) events, with the piece of its candle the fill came in
            # (1 = the first piece after the candle's open, when its entries go out)
            "slowest_fills": [[round(ms, 1), ts, sym, -(-(ts % H) * clock.sub // H)]
                              for ms, ts, sym in b_at[-max(8, len(b_at) // 50):]]}


def pooled(results: list[dict]) -> dict:
    """Several runs of one scenario as one: the events of all pooled into the
    percentiles, the trips and walls listed per run."""
    out = {k: v for k, v in results[0].items() if k in ("scenario", "mode")}
    for key, name in (("a", "candle_close_to_entry"), ("b", "fill_to_tp_and_stop"),
                      ("c", "mark_to_kill_switch_cancels")):
        out[name] = stats([x for r in results for x in r["samples"][key]])
    out["runs"] = [{k: r[k] for k in ("trips", "wall_s", "rest_weight_per_min")}
                   for r in results]
    out["trips"] = sum(r["trips"] for r in results)
    if any("breakdown" in r for r in results):  # --trace: per run
        out["breakdown"] = [r.get("breakdown") for r in results]
    return out


def quiet_budget(mode: str, n_symbols: int, seconds: float, workdir: Path) -> dict:
    """REST weight per minute of a quiet account at ``n_symbols`` symbols (live mode, no
    fill: entries far below the price; the clock walks one exchange minute per wall
    second): the market-data and account requests' weight against Binance's limit, and
    the order requests (placing and cancelling the resting levels) counted apart."""
    base = {s: candles(s) for s in SYMBOLS}
    names = [f"S{i:02d}/USDT" for i in range(n_symbols)]
    rows = {n: base[SYMBOLS[i % len(SYMBOLS)]] for i, n in enumerate(names)}
    specs = {n: MARKETS[SYMBOLS[i % len(SYMBOLS)]] for i, n in enumerate(names)}
    MARKETS.update(specs)
    try:
        fx = start_exchange(START, symbols=tuple(names), rows=rows)
        db = workdir / f"quiet-{mode}.db"
        cfg = write_live_config(workdir / f"quiet-{mode}.toml", db, fx, START + 1000 * H,
                                symbols=tuple(names), streams=mode,
                                strategy={"atr_start": 50.0},
                                stream_opts={"reconcile_s": 60.0, "stale_s": 30.0, "hub": HUB})
        text = cfg.read_text()
        if mode == "poll":
            text = text.replace("candle_poll_s = 0.05", "candle_poll_s = 5.0")
            text = text.replace("exchange_poll_s = 0.05", "exchange_poll_s = 2.0")
        cfg.write_text(text)
        (workdir / f"quiet-{mode}").mkdir()
        proc = LiveProcess(cfg, db, workdir / f"quiet-{mode}", recovery=False)
        proc.start()
        t0 = time.monotonic()
        while not caught_up(db, RUN, fx.now_ms() - H):
            if time.monotonic() - t0 > 180:
                raise SystemExit("the quiet flow did not start:\n" + proc.logs()[-3000:])
            time.sleep(0.1)
        time.sleep(5.0)  # past the start's catch-up
        n0, w0 = len(fx.request_log), time.time()
        ps = psutil.Process(proc.proc.pid)
        cpu0 = ps.cpu_times()
        end = time.time() + seconds
        while time.time() < end:
            fx.advance_ms(60_000)  # one exchange minute per wall second
            time.sleep(1.0)
        wall = time.time() - w0
        cpu1 = ps.cpu_times()
        cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
        log = list(fx.request_log[n0:])
        proc.kill()
        fx.stop()
    finally:
        for n in specs:
            MARKETS.pop(n, None)
    orders = [r for r in log if is_order_write(r["method"], r["path"])]
    data = [r for r in log if not is_order_write(r["method"], r["path"])]
    per_min = sum(r.get("weight", 0) for r in data) / wall * 60
    return {"mode": mode, "symbols": n_symbols, "wall_s": round(wall, 1),
            "data_weight_per_min": round(per_min, 1),
            "share_of_binance_limit": round(per_min / BINANCE_WEIGHT_PER_MIN, 4),
            "data_requests_per_min": round(len(data) / wall * 60, 1),
            "order_requests_per_min": round(len(orders) / wall * 60, 1),
            "flow_cpu_share_of_one_core": round(cpu, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candles", type=int, default=600, help="websocket mode")
    ap.add_argument("--poll-candles", type=int, default=40, help="polling mode")
    ap.add_argument("--sub", type=int, default=12, help="pieces per candle")
    ap.add_argument("--pause", type=float, default=0.03, help="wall s between pieces (ws)")
    ap.add_argument("--poll-pause", type=float, default=1.0, help="wall s between pieces")
    ap.add_argument("--ks-candles", type=int, default=100,
                    help="sawtooth candles per run (most trip the switch), websocket mode")
    ap.add_argument("--ks-runs", type=int, default=20,
                    help="sawtooth runs, each a fresh account (their events pooled)")
    ap.add_argument("--ks-sub", type=int, default=6)
    ap.add_argument("--ks-pause", type=float, default=0.05)
    ap.add_argument("--ks-reset-s", type=float, default=0.12,
                    help="wall s from a trip to its reset")
    ap.add_argument("--settle", type=int, default=10,
                    help="candles walked before measuring (each run)")
    ap.add_argument("--budget-symbols", type=int, default=20)
    ap.add_argument("--budget-s", type=float, default=90.0)
    ap.add_argument("--parts", default="websocket,websocket_kill_switch,poll,budget",
                    help="comma-separated runs to make")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="keep the journals and logs here (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "live_latency.json")
    ap.add_argument("--trace", action="store_true",
                    help="break (a) and (b) down by the flow's stages (gridflow.latency_trace)")
    ap.add_argument("--broker-wait", choices=("true", "false"), default="true",
                    help="live.broker_wait of the flows (false: decide on while sending)")
    ap.add_argument("--hub", choices=("process", "thread"), default="process",
                    help="live.streams.hub of the flows (where ccxt.pro parses the streams)")
    ap.add_argument("--broker-wait-max-ms", type=float, default=None,
                    help="live.broker_wait_max_s of the flows, in ms (default: the config's)")
    ap.add_argument("--broker-processes", type=int, default=None,
                    help="live.broker_processes of the flows (default: the config's)")
    args = ap.parse_args()
    global TRACE, BROKER_WAIT, HUB, WAIT_MAX_S, PROCS
    TRACE, BROKER_WAIT, HUB = args.trace, args.broker_wait == "true", args.hub
    WAIT_MAX_S = None if args.broker_wait_max_ms is None else args.broker_wait_max_ms / 1000
    PROCS = args.broker_processes
    parts = set(args.parts.split(","))
    out = {"environment": AT_START, "symbols": list(SYMBOLS), "pieces_per_candle": args.sub,
           "broker_lanes": LiveConfig().broker_lanes, "broker_wait": BROKER_WAIT,
           "hub": HUB, "broker_wait_max_s": WAIT_MAX_S,
           "broker_processes": LiveConfig().broker_processes if PROCS is None else PROCS}
    with tempfile.TemporaryDirectory() as d:
        work = args.workdir or Path(d)
        work.mkdir(parents=True, exist_ok=True)
        runs = {
            "websocket": lambda: run_mode("websocket", args.candles, args.sub, args.pause,
                                          work, settle=args.settle),
            "websocket_kill_switch": lambda: pooled([run_mode(
                "websocket", args.ks_candles, args.ks_sub, args.ks_pause, work, "sawtooth",
                args.ks_reset_s, tag=f"-{k}", settle=args.settle)
                for k in range(args.ks_runs)]),
            "poll": lambda: run_mode("poll", args.poll_candles, args.sub, args.poll_pause,
                                     work, settle=min(args.settle, 2)),
            "budget": lambda: [quiet_budget(m, args.budget_symbols, args.budget_s, work)
                               for m in ("websocket", "poll")],
        }
        for name, run in runs.items():
            if name in parts:
                out[name] = run()
                if isinstance(out[name], dict):
                    out[name].pop("samples", None)
                print(json.dumps(out[name], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
