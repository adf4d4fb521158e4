"""Download candles and funding rates from an exchange into the market-data store.

``gridflow data download`` calls :func:`download_candles` / :func:`download_funding`
with a ccxt exchange (its rate limiter on): pages of ``fetch_ohlcv`` /
``fetch_funding_rate_history`` over the ranges the store lacks, each request retried on
network errors only (:func:`gridflow.exchange.retry.retry_call`).

Candles (:func:`download_candles`):

* only what is missing is asked for: the open times of ``[since, until)`` on the
  timeframe's grid that the series neither holds nor lists as a known gap;
* the forming candle (``open + timeframe > now``) is never stored;
* every candle passes the replay's validator
  (:func:`gridflow.operators.validation.validate_chunk`, over the series with the new
  rows in place); refusals are counted by reason in the report and the manifest, and
  not stored;
* a hole still there after a second request is the venue's own (maintenance, the
  symbol not yet listed): recorded as a known gap, never fetched again. A hole at the
  end is not (the venue may publish it late).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridflow.chunks import CandleChunk
from gridflow.config.candles import CandleRules
from gridflow.config.live import RetryConfig
from gridflow.data.store import CandleStore, Gap, Provenance, SeriesKey
from gridflow.event_kinds import EventKind
from gridflow.exchange.retry import error_text, retry_call
from gridflow.operators.validation import NO_TS, validate_chunk
from gridflow.series_spec import FUNDING
from gridflow.timeframes import timeframe_to_ms

log = logging.getLogger(__name__)

__all__ = ["DownloadReport", "download_candles", "download_funding", "funding_pages",
           "load_markets", "missing_runs", "validate_new_rows"]

#: Rows per request: every Binance market type serves 1,000 (USDⓈ-M up to 1,500).
PAGE_LIMIT = 1000
_FUNDING_MS = 8 * 3_600_000  # the usual settlement period; only for the funding paging


@dataclass
class DownloadReport:
    """What one download of one series did.

    Attributes
    ----------
    spec : str
        ``exchange:symbol@timeframe``.
    requests : int
        Page requests that answered (retries not counted).
    received : int
        Rows the exchange returned inside the wanted ranges.
    added : int
        New open times stored.
    refused : dict[str, int]
        Rows the validator refused, by reason (not stored).
    known_gaps : list[Gap]
        Gaps found to be the venue's in this run (recorded in the manifest).
    wanted : int
        Open times missing from the store when the run started.
    """

    spec: str
    requests: int = 0
    received: int = 0
    added: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    known_gaps: list[Gap] = field(default_factory=list)
    wanted: int = 0


def missing_runs(have: np.ndarray, skip: np.ndarray, start: int, end: int, step: int
                 ) -> list[tuple[int, int]]:
    """The ranges ``[a, b)`` of open times on the grid ``start + k * step`` in
    ``[start, end)`` that are neither in ``have`` nor in ``skip`` (int64 arrays)."""
    if end <= start:
        return []
    grid = np.arange(start, end, step, dtype=np.int64)
    need = grid[~np.isin(grid, have) & ~np.isin(grid, skip)]
    if need.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(need) != step)
    firsts = np.r_[need[0], need[breaks + 1]]
    lasts = np.r_[need[breaks], need[-1]]
    return [(int(a), int(b) + step) for a, b in zip(firsts, lasts)]


def _call(ex: Any, retry: RetryConfig, what: str, fn: Callable[[], Any],
          sleep: Callable[[float], None]) -> Any:
    def warn(exc: BaseException, wait_s: float) -> None:
        log.warning("%s: %s (again in %.2f s)", what, error_text(exc), wait_s)

    return retry_call(fn, retry, sleep=sleep, on_retry=warn)


def load_markets(ex: Any, retry: RetryConfig | None = None,
                 sleep: Callable[[float], None] | None = None) -> dict:
    """``ex.load_markets()`` with the page requests' retries (network errors only,
    ``retry.max_attempts`` attempts, backoff in seconds; ``sleep`` default
    ``time.sleep``); the markets by symbol.

    Raises
    ------
    ccxt.BaseError
        A non-network error at once, a network error after the last attempt.
    """
    return _call(ex, retry or RetryConfig(), f"{ex.id} load_markets", ex.load_markets,
                 sleep if sleep is not None else time.sleep)


def _fetch_range(ex: Any, key: SeriesKey, a: int, b: int, step: int, limit: int,
                 retry: RetryConfig, sleep, report: DownloadReport,
                 progress: Callable[[int], None] | None) -> list[list]:
    """Pages of ``fetch_ohlcv`` over ``[a, b)``: the rows inside it. ``progress`` gets
    ``(b - a) // step`` open times in all, the part the venue has no candle for too."""
    rows: list[list] = []
    cursor = a
    while cursor < b:
        page = _call(ex, retry, f"fetch_ohlcv {key.spec} from {cursor}",
                     lambda c=cursor: ex.fetch_ohlcv(key.symbol, key.timeframe, since=c,
                                                     limit=limit, params={"until": b - 1}),
                     sleep)
        report.requests += 1
        inside = [r for r in page if cursor <= int(r[0]) < b]
        if not inside:
            break
        rows += inside
        last = max(int(r[0]) for r in inside)
        if progress is not None:
            progress((last + step - cursor) // step)
        cursor = last + step
    if progress is not None and cursor < b:  # the venue has nothing after cursor
        progress((b - cursor) // step)
    return rows


def validate_new_rows(store_cols: dict[str, np.ndarray], new: dict[str, np.ndarray], key: SeriesKey,
              rules: CandleRules) -> tuple[np.ndarray, Counter]:
    """Which new rows the replay's validator accepts, run over the stored series with
    the new rows in place (its stream rules, order and price jumps, see neighbours)."""
    n_old = store_cols["ts"].size
    both = {k: np.concatenate([store_cols[k], new[k]]) for k in new}
    order = np.argsort(both["ts"], kind="stable")
    cols = {k: v[order] for k, v in both.items()}
    chunk = CandleChunk(key.symbol, key.timeframe, cols["ts"], cols["open"], cols["high"],
                        cols["low"], cols["close"], cols["volume"], first_row=0)
    accepted, events, _ = validate_chunk(chunk, NO_TS, rules=rules)
    ok_ts = set(accepted.ts.tolist())
    is_new = order >= n_old
    keep = np.zeros(new["ts"].size, dtype=bool)
    pos = order[is_new] - n_old
    keep[pos] = np.fromiter((t in ok_ts for t in cols["ts"][is_new].tolist()), bool,
                            count=int(is_new.sum()))
    refused = Counter(str(e.reason) for e in events if e.kind == EventKind.CANDLE_REJECTED
                      and 0 <= int(e.seq) < cols["ts"].size and is_new[int(e.seq)])
    return keep, refused


def download_candles(ex: Any, store: CandleStore, key: SeriesKey, since_ms: int,
                     until_ms: int | None = None, *, retry: RetryConfig | None = None,
                     rules: CandleRules | None = None, limit: int = PAGE_LIMIT,
                     now_ms: int | None = None, sleep: Callable[[float], None] = time.sleep,
                     progress: Callable[[int], None] | None = None,
                     progress_total: Callable[[int], None] | None = None) -> DownloadReport:
    """Fetch the candles of ``key`` the store lacks in ``[since_ms, until_ms)`` (open
    times, ms UTC; ``until_ms`` None: up to the last closed candle) and store them.

    Parameters
    ----------
    ex : ccxt.Exchange
        Synchronous, rate limiter on, markets loadable.
    now_ms : int, optional
        The exchange's time (default: asked, ``fetch_time``; the local clock when the
        venue has no time endpoint): candles opening after ``now_ms - timeframe`` are
        still forming and never stored.
    progress : callable, optional
        ``progress(n)`` with the number of open times (candles) each page covered
        (tqdm's ``update``); they add up to the ``progress_total``.
    progress_total : callable, optional
        ``progress_total(n)`` once, before the first request, with the number of open
        times to ask for (:attr:`DownloadReport.wanted`: what the store lacks in the
        range, known gaps left out; tqdm's ``reset(total=n)``).

    Returns
    -------
    DownloadReport

    Raises
    ------
    ccxt.BaseError
        A non-network error (bad symbol, authentication), or a network error after
        ``retry.max_attempts`` attempts.
    ValueError
        ``limit < 1`` or a funding key.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if key.timeframe == FUNDING:
        raise ValueError("funding rates: download_funding")
    retry = retry or RetryConfig()
    rules = rules or CandleRules()
    step = timeframe_to_ms(key.timeframe)
    now = _exchange_now(ex, retry, sleep) if now_ms is None else int(now_ms)
    start = -(-int(since_ms) // step) * step
    end = (now // step) * step  # the forming candle opens here: never stored
    if until_ms is not None:
        end = min(end, -(-int(until_ms) // step) * step)
    report = DownloadReport(key.spec)
    m = store.manifest(key)
    known = m.known_missing() if m is not None else np.empty(0, np.int64)
    held = store.read(key) if m is not None else None  # read once: gaps, then validation
    stored = held["ts"] if held is not None else np.empty(0, np.int64)
    runs = missing_runs(stored, known, start, end, step)
    report.wanted = sum((b - a) // step for a, b in runs)
    if progress_total is not None:
        progress_total(report.wanted)
    rows: list[list] = []
    for attempt in (1, 2):  # a hole left after the second ask is the venue's
        for a, b in runs:
            rows += _fetch_range(ex, key, a, b, step, limit, retry, sleep, report,
                                 progress if attempt == 1 else None)
        got = np.array(sorted({int(r[0]) for r in rows}), dtype=np.int64)
        runs = missing_runs(np.union1d(stored, got), known, start, end, step)
        if not runs:
            break
    report.received = len({int(r[0]) for r in rows})
    if rows:
        arr = np.array([r[:6] for r in rows], dtype=np.float64)
        ts = arr[:, 0].astype(np.int64)
        _, first = np.unique(ts, return_index=True)  # one row per open time
        arr, ts = arr[first], ts[first]
        new = {"ts": ts, "open": arr[:, 1], "high": arr[:, 2], "low": arr[:, 3],
               "close": arr[:, 4], "volume": arr[:, 5]}
        old = held if held is not None else {k: v[:0] for k, v in new.items()}
        keep, refused = validate_new_rows(old, new, key, rules)
        report.refused = dict(refused)
        good = {k: v[keep] for k, v in new.items()}
        prov = Provenance(source=f"ccxt:{ex.id} fetch_ohlcv", at_ms=int(time.time() * 1000),
                          first_ts=int(ts[0]), last_ts=int(ts[-1]), rows=int(keep.sum()),
                          version=_ccxt_version())
        report.added = store.write(key, good, prov, report.refused)
    have = store.read(key)["ts"] if store.manifest(key) is not None else np.empty(0, np.int64)
    refused_ts = np.setdiff1d(np.array([int(r[0]) for r in rows], np.int64), have)
    gaps = []
    for a, b in missing_runs(have, known, start, end, step) if have.size else []:
        if a > have[-1]:
            continue  # after the last candle: the venue may still publish it
        reason = ("refused" if ((refused_ts >= a) & (refused_ts < b)).any()
                  else "before_first" if b <= have[0] else "exchange")
        gaps.append(Gap(start_ms=a, end_ms=b, missing=(b - a) // step, reason=reason))
    if gaps:
        store.add_known_gaps(key, gaps)
        report.known_gaps = gaps
    return report


def download_funding(ex: Any, store: CandleStore, key: SeriesKey, since_ms: int,
                     until_ms: int | None = None, *, retry: RetryConfig | None = None,
                     limit: int = PAGE_LIMIT, now_ms: int | None = None,
                     sleep: Callable[[float], None] = time.sleep) -> DownloadReport:
    """Fetch the funding rates of ``key`` (timeframe :data:`~gridflow.series_spec.
    FUNDING`) settled in ``[since_ms, until_ms)`` after the last stored one, and store
    them. Rates must be finite and within ±5 % a settlement (else refused, counted).

    Raises
    ------
    ccxt.BaseError
        As :func:`download_candles`.
    """
    from gridflow.data.funding import rate_ok

    retry = retry or RetryConfig()
    now = _exchange_now(ex, retry, sleep) if now_ms is None else int(now_ms)
    end = now + 1 if until_ms is None else min(now + 1, int(until_ms))  # settled by now
    ts_old, _ = store.read_funding(key)
    cursor = max(int(since_ms), int(ts_old[-1]) + 1 if ts_old.size else int(since_ms))
    report = DownloadReport(key.spec)
    ts, rate, report.requests = funding_pages(
        ex, key.symbol, cursor, end, limit,
        lambda c: _call(ex, retry, f"fetch_funding_rate_history {key.spec} from {c}",
                        lambda: ex.fetch_funding_rate_history(
                            key.symbol, since=c, limit=limit, params={"until": end - 1}),
                        sleep))
    report.received = len(ts)
    if len(ts):
        ok = rate_ok(rate)
        if (~ok).any():
            report.refused = {"BAD_FUNDING_RATE": int((~ok).sum())}
        prov = Provenance(source=f"ccxt:{ex.id} fetch_funding_rate_history",
                          at_ms=int(time.time() * 1000), first_ts=int(ts[0]),
                          last_ts=int(ts[-1]), rows=int(ok.sum()), version=_ccxt_version())
        report.added = store.write_funding(key, ts[ok], rate[ok], prov, report.refused)
    return report


def funding_pages(ex: Any, symbol: str, cursor: int, end: int, limit: int = PAGE_LIMIT,
                  fetch: Callable[[int], list] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """The funding settlements of ``symbol`` with ``cursor <= timestamp < end`` (ms UTC),
    page after page of ccxt ``fetch_funding_rate_history`` (``limit`` rows each).

    ``fetch(cursor)`` makes one request (default: a plain call, its errors raised). A
    row without a timestamp is skipped.

    Returns
    -------
    (ts, rate, requests) : int64 (m,), float64 (m,), int
        Settlement times ascending and unique, their ``fundingRate`` as the venue gave
        it (NaN where missing: not checked here, see
        :func:`gridflow.data.funding.rate_ok`), and the number of requests made.

    Raises
    ------
    ccxt.BaseError
        Whatever ``fetch`` raises (rows of earlier pages are lost with it).
    """
    if fetch is None:
        def fetch(c: int) -> list:
            return ex.fetch_funding_rate_history(symbol, since=c, limit=limit,
                                                 params={"until": end - 1})
    out: dict[int, float | None] = {}
    requests = 0
    while cursor < end:
        page = fetch(cursor)
        requests += 1
        inside = [(int(r["timestamp"]), r.get("fundingRate")) for r in page
                  if r.get("timestamp") is not None and cursor <= int(r["timestamp"]) < end]
        if not inside:
            break
        out.update(inside)
        cursor = max(t for t, _ in inside) + 1
    ts = np.array(sorted(out), dtype=np.int64)
    rate = np.array([np.nan if out[t] is None else float(out[t]) for t in ts.tolist()],
                    dtype=np.float64)
    return ts, rate, requests


def _exchange_now(ex: Any, retry: RetryConfig, sleep) -> int:
    """The exchange's clock (ms UTC): ``fetch_time`` where the venue has it."""
    if ex.has.get("fetchTime"):
        return int(_call(ex, retry, "fetch_time", ex.fetch_time, sleep))
    return int(ex.milliseconds())


def _ccxt_version() -> str:
    import ccxt

    return f"ccxt {ccxt.__version__}"
