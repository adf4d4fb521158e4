"""Candle files into the market-data store, and what a stored series is worth.

:func:`import_candle_file` takes a candle file (the bundled ones among them) into the
store through the replay's validator; the file's holes are recorded as known gaps (the
file's source had no candle there). :func:`check_series` reports a series' coverage,
its holes (known or not), the rows refused when it was written (the manifest's count)
and whether every stored candle still passes the validator.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from gridflow.config.candles import CandleRules
from gridflow.data.candle_files import (
    parse_candle_file_name,
    read_candle_file,
    resolve_data_files,
)
from gridflow.data.store import CandleStore, Gap, Provenance
from gridflow.exchange.history import missing_runs, validate_new_rows
from gridflow.isotime import iso_utc
from gridflow.series_spec import FUNDING, SeriesKey
from gridflow.timeframes import timeframe_to_ms

__all__ = ["DEFAULT_EXCHANGE", "check_series", "file_exchange", "import_candle_file"]

DEFAULT_EXCHANGE = "binance"
"""Exchange of a candle file whose name does not start with a ccxt exchange id."""


def _holes(ts: np.ndarray, known: np.ndarray, step: int) -> list[tuple[int, int]]:
    """Missing open times between the first and the last of ``ts``, as ranges."""
    if ts.size < 2:
        return []
    return missing_runs(ts, known, int(ts[0]), int(ts[-1]), step)


def file_exchange(path: str | Path) -> str:
    """The exchange a candle file's name starts with (``binanceusdm_ETH_USDT_1h.csv.gz``
    -> ``"binanceusdm"``) when that is a ccxt exchange id, else :data:`DEFAULT_EXCHANGE`
    (a name that does not parse is left to the import to refuse)."""
    import ccxt

    try:
        exchange = parse_candle_file_name(path)[0]
    except ValueError:
        return DEFAULT_EXCHANGE
    return exchange if exchange in ccxt.exchanges else DEFAULT_EXCHANGE


def import_candle_file(store: CandleStore, path: str | Path, exchange: str | None = None,
                       rules: CandleRules | None = None) -> dict[str, Any]:
    """Validate and store the candles of ``path`` as ``exchange:symbol@timeframe`` (the
    symbol and timeframe from the file name; ``exchange`` None: :func:`file_exchange`);
    returns what was done. Rows at open times the series already holds are left as
    stored and counted as ``already_stored``, not refused: importing a file again
    changes nothing and leaves ``gridflow data check`` passing.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`~gridflow.data.candle_files.resolve_data_files` and
        :func:`~gridflow.data.candle_files.read_candle_file`.
    """
    ((p, symbol, tf),) = resolve_data_files([path])
    key = SeriesKey(exchange or file_exchange(p), symbol, tf)
    cols = read_candle_file(p)
    m = store.manifest(key)
    old = store.read(key) if m is not None else {k: v[:0] for k, v in cols.items()}
    held_before = np.isin(cols["ts"], old["ts"])  # imported before: kept as stored, and
    cols = {k: v[~held_before] for k, v in cols.items()}  # no refusal (DUPLICATE_TS)
    keep, refused = validate_new_rows(old, cols, key, rules or CandleRules())
    good = {k: v[keep] for k, v in cols.items()}
    ts = good["ts"]
    prov = Provenance(source=f"file:{p.name}", at_ms=int(time.time() * 1000),
                      first_ts=int(ts[0]) if ts.size else 0,
                      last_ts=int(ts[-1]) if ts.size else 0, rows=int(ts.size))
    added = store.write(key, good, prov, dict(refused))
    step = timeframe_to_ms(tf)
    held = store.read(key)["ts"]
    gaps = [Gap(start_ms=a, end_ms=b, missing=(b - a) // step, reason="source_file")
            for a, b in _holes(held, store.manifest(key).known_missing(), step)]
    if gaps:
        store.add_known_gaps(key, gaps)
    return {"series": key.spec, "file": p.name, "added": added, "refused": dict(refused),
            "already_stored": int(held_before.sum()), "known_gaps": len(gaps)}


def check_series(store: CandleStore, key: SeriesKey,
                 rules: CandleRules | None = None) -> dict[str, Any]:
    """Coverage, holes and validator refusals of one series.

    ``refused`` are the rows refused when the series was written (download or import,
    by reason, from its manifest: never stored, their open times known gaps);
    ``stored_refused`` the stored rows the validator refuses now (by reason).
    ``ok``: no unknown hole and no refusal of either kind.

    Raises
    ------
    FileNotFoundError
        The store has no such series.
    """
    m = store.manifest(key)
    if m is None:
        raise store.missing(key)
    if key.timeframe == FUNDING:
        from gridflow.data.funding import rate_ok

        ts, rate = store.read_funding(key)
        bad = int((~rate_ok(rate)).sum())
        now = {"BAD_FUNDING_RATE": bad} if bad else {}
        return {"series": key.spec, "rows": int(ts.size), "refused": dict(m.refused),
                "stored_refused": now, "ok": not m.refused and not now}
    cols = store.read(key)
    step = timeframe_to_ms(key.timeframe)
    known = m.known_missing()
    unknown = _holes(cols["ts"], known, step)
    empty = {k: v[:0] for k, v in cols.items()}
    keep, refused = validate_new_rows(empty, cols, key, rules or CandleRules())
    span = (int(cols["ts"][-1]) - int(cols["ts"][0])) // step + 1 if cols["ts"].size else 0
    return {"series": key.spec, "rows": int(cols["ts"].size),
            "first": iso_utc(int(cols["ts"][0])) if span else "-",
            "last": iso_utc(int(cols["ts"][-1])) if span else "-",
            "coverage": round(cols["ts"].size / span, 6) if span else 0.0,
            "known_gaps": len(m.known_gaps),
            "unknown_gaps": [[iso_utc(a), (b - a) // step] for a, b in unknown],
            "refused": dict(m.refused), "stored_refused": dict(refused),
            "ok": not unknown and not m.refused and not refused}
