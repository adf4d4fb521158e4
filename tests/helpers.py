"""Helpers shared by the tests (importable as ``helpers``; see pytest ``pythonpath``)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

from gridflow.data import CANDLES_DIR

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
HEADER = "timestamp,open,high,low,close,volume\n"


def write_candles(path: Path, rows) -> Path:
    """Write rows ``(ts, o, h, l, c, v)`` (or raw strings) as a gzip candle CSV."""
    lines = [HEADER]
    for r in rows:
        lines.append(r + "\n" if isinstance(r, str) else ",".join(repr(x) for x in r) + "\n")
    path.write_bytes(gzip.compress("".join(lines).encode()))
    return path


def subset_file(name: str, dst: Path, start_ts: int, n: int) -> Path:
    """The ``n`` bundled candles of ``name`` from ``start_ts`` on, as a new file."""
    text = gzip.decompress((CANDLES_DIR / name).read_bytes()).decode().splitlines()
    rows = [ln for ln in text[1:] if int(ln.split(",", 1)[0]) >= start_ts][:n]
    dst.write_bytes(gzip.compress((HEADER + "\n".join(rows) + "\n").encode()))
    return dst


def write_config(path: Path, files: list[Path], extra: str = "", account: str = "") -> Path:
    """A TOML preset over ``files`` (default strategy unless ``account`` is given)."""
    data = "".join(f'[[data]]\npath = "{f}"\n' for f in files)
    acct = account or (
        '[[accounts]]\nname = "t"\ncapital_quote = 10000.0\nleverage = 2.0\n'
        "[accounts.strategy]\nsma_period = 24\natr_period = 14\nlevels = 5\n"
        "atr_start = 1.0\natr_step = 0.5\nsl_pct = 0.1\n"
    )
    path.write_text(extra + "\n" + data + acct)
    return path


def run_bytewax(target: str, db: Path, *args: str, cwd: Path | None = None,
                timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    """``python -m bytewax.run TARGET ARGS`` with the journal at ``db``."""
    env = dict(os.environ, GRIDFLOW_DB_URL=f"sqlite:///{db}")
    return subprocess.run(
        [sys.executable, "-m", "bytewax.run", target, *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, **popen,
    )


def journal_all(db: Path) -> list[str]:
    """Every deterministic journal record of the latest run, as JSON lines."""
    from gridflow.control.report import journal_lines

    return journal_lines(f"sqlite:///{db}", None,
                         include=("order", "fill", "trade", "event", "equity"))


def report(db: Path) -> dict:
    from gridflow.control.report import compute_report

    return json.loads(json.dumps(compute_report(f"sqlite:///{db}")))



def indicator_chunk(symbol, rows, values, start=0, last=True):
    """1h candles ``rows`` [(open, high, low, close)] from hour ``start`` with hand-set
    indicator ``values`` (name -> scalar or per-candle list), for driving the engine."""
    import numpy as np

    from gridflow.chunks import CandleChunk, IndicatorChunk

    H = 3_600_000
    n = len(rows)
    a = np.array(rows, dtype=float).reshape(n, 4)
    ts = (np.arange(n, dtype=np.int64) + start) * H
    vals = {k: np.broadcast_to(np.asarray(v, float), (n,)).copy() for k, v in values.items()}
    c = CandleChunk(symbol, "1h", ts, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.ones(n), 0, last)
    return IndicatorChunk(c, vals)


def crash_candles(path: Path, n: int = 300, chop: float = 0.004) -> Path:
    """60 h of chop, a 60-hour -60 % crash, then chop of +/- ``chop`` per hour."""
    H, T0 = 3_600_000, 1_704_067_200_000  # from 2024-01-01 00:00 UTC
    rows, price = [], 100.0
    for i in range(n):
        price *= 0.985 if 60 <= i < 120 else 1.0 + chop * (1 if i % 2 else -1)
        rows.append((T0 + i * H, price, price * 1.003, price * 0.997, price, 1.0))
    return write_candles(path, rows)


def bundled_window(start_ms: int, before: int, after: int) -> dict:
    """Bundled BTC/USDT and ETH/USDT 1h candles around ``start_ms``: ``before`` history
    rows and ``after`` rows from it, as the local exchange takes them ((n, 6) arrays)."""
    import numpy as np

    from gridflow.fakex.__main__ import load_bundled

    out = {}
    for sym, arr in load_bundled(["BTC/USDT", "ETH/USDT"]).items():
        i = int(np.searchsorted(arr[:, 0], start_ms))
        out[sym] = arr[i - before:i + after].copy()
    return out
