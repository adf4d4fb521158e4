"""The control app's responsiveness while a paced replay runs.

Starts a paced replay of the bundled BTC/ETH/SOL 1h candles in a child process (one
candle per chunk, 0.05 s apart: the journal changes at every app poll), serves the app
(``python -m gridflow.control.app``) in another, opens its Live page in Debian's
Chromium and measures:

- ``login_s``: "Log in" click to "Signed in as" shown, through Panel's login form, in a
  fresh browser context each time (``--logins``);
- ``http_ms``: latency of ``GET /login`` every 0.25 s while the Live page polls (a
  blocked server event loop shows here first);
- ``ack_s``: a Pause / Resume / Reset kill switch click (in turn, ``--clicks`` in all) to
  the engine's acknowledgement shown in the page, per action and over all clicks;
- ``journal_s``: the same click to the acknowledgement event in the journal (a thread
  polls the events table every 5 ms), and ``shown_after_journal_s``, the ack shown in
  the page minus that: what the app adds after the engine journaled the answer.

``--load N`` adds N busy-looping processes (a shared, noisy machine). Prints medians,
p95 and max and writes ``benchmarks/results/app_responsiveness.json``.

    python benchmarks/app_responsiveness.py [--seconds 20] [--clicks 9] [--logins 5] [--load 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from _env import AT_START  # benchmarks/ is the script's folder

from gridflow.config.models import AccountConfig, DataFile, GridAtrParams
from gridflow.control.client import GridflowClient
from gridflow.data import CANDLES_DIR

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("GRIDFLOW_CHROMIUM", "/usr/bin/chromium")


def _spin() -> None:
    while True:
        pass


def _serve(db: str) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, GRIDFLOW_APP_USERS="bench:bench-pw", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "gridflow.control.app", "--db", db,
                             "--port", "0"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        m = re.search(r"serving (http://\S+/)", line)
        if m:
            return proc, m.group(1)
    raise SystemExit(f"the app did not start (rc={proc.wait()})")


def _stats(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "median": statistics.median(xs),
            "p95": xs[min(len(xs) - 1, int(0.95 * len(xs)))], "max": xs[-1]}


ACTIONS = (("Pause", "pause"), ("Resume", "resume"), ("Reset kill switch", "reset kill switch"))


def _ack_ids(db: str) -> set[str]:
    from sqlalchemy import select

    from gridflow.journal.schema import EventRow
    from gridflow.journal.store import connect

    t = EventRow.__table__
    with connect(db) as conn:
        return set(conn.execute(select(t.c.event_id).where(
            t.c.kind.in_(["command_applied", "command_rejected"]))).scalars())


class AckWatch(threading.Thread):
    """Polls the journal every 5 ms; ``seen`` is the perf_counter time the first
    acknowledgement not in ``before`` appeared."""

    def __init__(self, db: str) -> None:
        super().__init__(daemon=True)
        self.db, self.before, self.seen = db, _ack_ids(db), None

    def run(self) -> None:
        deadline = time.monotonic() + 120
        while self.seen is None and time.monotonic() < deadline:
            if _ack_ids(self.db) - self.before:
                self.seen = time.perf_counter()
            time.sleep(0.005)


def _log_in(page, url: str) -> float:
    from playwright.sync_api import expect

    page.goto(url)
    link = page.get_by_role("link", name="Log in")
    link.wait_for(timeout=120_000)
    t0 = time.perf_counter()
    link.click()
    page.locator("input[name=username]").fill("bench")
    page.locator("input[name=password]").fill("bench-pw")
    page.locator("input[name=password]").press("Enter")
    expect(page.get_by_text("Signed in as bench")).to_be_visible(timeout=120_000)
    return time.perf_counter() - t0


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clicks", type=int, default=9)
    ap.add_argument("--logins", type=int, default=5)
    ap.add_argument("--load", type=int, default=0, help="busy-looping processes")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "app_responsiveness.json")
    args = ap.parse_args()
    hogs = [mp.Process(target=_spin, daemon=True) for _ in range(args.load)]
    with tempfile.TemporaryDirectory() as d:
        db = f"sqlite:///{d}/app.db"
        client = GridflowClient(db, user="bench")
        files = tuple(DataFile(path=str(CANDLES_DIR / f"binance_{s}_USDT_1h.csv.gz"))
                      for s in ("BTC", "ETH", "SOL"))
        acct = AccountConfig(name="app", symbols=("BTC/USDT", "ETH/USDT", "SOL/USDT"),
                             strategy=GridAtrParams())
        job = client.launch_replay(None, data=files, accounts=(acct,), start_ms="2024-01-01",
                                   pace_s=0.05, chunk_size=1)
        proc, url = _serve(db)
        for h in hogs:
            h.start()
        try:
            while job.progress < 0.001:
                if job.done:
                    raise SystemExit(job.errors())
                time.sleep(0.05)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM,
                                            args=["--headless", "--no-sandbox"])
                login_s = []
                for _ in range(args.logins):
                    with browser.new_context(viewport={"width": 1280, "height": 800}) as ctx:
                        login_s.append(_log_in(ctx.new_page(), url))
                ctx = browser.new_context(viewport={"width": 1280, "height": 800})
                page = ctx.new_page()
                _log_in(page, url)
                http_ms = []
                end = time.monotonic() + args.seconds
                while time.monotonic() < end:
                    t = time.perf_counter()
                    with urllib.request.urlopen(url + "login", timeout=60) as r:
                        r.read()
                    http_ms.append(1000 * (time.perf_counter() - t))
                    time.sleep(0.25)
                ack = page.locator(".gf-ack")
                acks: dict[str, list[float]] = {label: [] for _, label in ACTIONS}
                journal_s, after_s = [], []
                for i in range(args.clicks):
                    name, label = ACTIONS[i % len(ACTIONS)]
                    button = page.get_by_role("button", name=name)
                    expect(button).to_be_enabled(timeout=120_000)
                    watch = AckWatch(db)
                    watch.start()
                    t = time.perf_counter()
                    button.click()
                    expect(ack).to_contain_text(f"{label} (app): applied", timeout=120_000)
                    shown = time.perf_counter()
                    watch.join()
                    acks[label].append(shown - t)
                    if watch.seen is not None:
                        journal_s.append(watch.seen - t)
                        after_s.append(shown - watch.seen)
                ctx.close()
                browser.close()
            candles = client.status("app")["candles"]
        finally:
            for h in hogs:
                h.terminate()
            proc.terminate()
            proc.wait()
            job.stop()
    every = [x for xs in acks.values() for x in xs]
    res = {"login_s": _stats(login_s), "http_ms": _stats(http_ms), "ack_s": _stats(every),
           "ack_s_by_action": {k: _stats(v) for k, v in acks.items() if v},
           "journal_s": _stats(journal_s), "shown_after_journal_s": _stats(after_s),
           "load_processes": args.load, "candles_replayed": candles, "cpus": os.cpu_count()}
    by = ", ".join(f"{k} {v['median']:.2f} s" for k, v in res["ack_s_by_action"].items())
    print(f"login median {res['login_s']['median']:.2f} s (max {res['login_s']['max']:.2f} s, "
          f"n={len(login_s)}); GET /login median {res['http_ms']['median']:.1f} ms, "
          f"p95 {res['http_ms']['p95']:.1f} ms, max {res['http_ms']['max']:.1f} ms")
    print(f"click -> ack shown median {res['ack_s']['median']:.2f} s, max "
          f"{res['ack_s']['max']:.2f} s ({by}); click -> journaled median "
          f"{res['journal_s']['median']:.2f} s; journaled -> shown median "
          f"{res['shown_after_journal_s']['median']:.2f} s, max "
          f"{res['shown_after_journal_s']['max']:.2f} s (load {args.load})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**res, "environment": AT_START}, indent=2))


if __name__ == "__main__":
    main()
