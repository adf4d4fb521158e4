"""Resolve a config into the concrete plan of a run (files, accounts, indicators)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gridflow.config.loader import config_hash, default_run_id
from gridflow.config.models import AccountConfig, GridflowConfig
from gridflow.data.candle_files import resolve_data_files
from gridflow.data.store import source_name
from gridflow.operators.engine import AccountEngine
from gridflow.operators.indicators import parse_indicator
from gridflow.data.funding import FUNDING_RATE
from gridflow.operators.strategies import INPUTS, strategy_indicators

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunPlan:
    """Everything a replay flow needs, derived once from the config.

    Attributes
    ----------
    cfg : GridflowConfig
    run_id : str
        ``cfg.run_id`` or :func:`~gridflow.config.loader.default_run_id` (same config,
        data and window -> same id).
    files : list of (Path, symbol, timeframe)
    timeframes : dict[str, str]
        Timeframe of each symbol with data.
    account_symbols : dict[str, tuple[str, ...]]
        Symbols each account trades (those of its list that have data; all data
        symbols when its list is empty).
    indicators : dict[str, tuple[str, ...]]
        Canonical indicator names to compute per symbol: the union of what every
        account trading it asks for (its strategy's and its ``indicators`` list), so
        each is computed once per symbol.
    """

    cfg: GridflowConfig
    run_id: str
    files: list[tuple[Path, str, str]]
    timeframes: dict[str, str]
    account_symbols: dict[str, tuple[str, ...]]
    indicators: dict[str, tuple[str, ...]] = field(default_factory=dict)
    restored: dict[str, dict] = field(default_factory=dict)
    mode: str = "replay"
    """``"replay"`` (candle files), ``"paper"`` (live candles, paper matcher) or
    ``"live"`` (live candles, exchange orders: :class:`LiveAccountEngine`)."""
    funding: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """Symbol -> (settlement ms UTC, rate) of the symbols traded as perpetuals."""
    funding_feed: tuple[str, ...] = ()
    """Paper / live: symbols whose live candles carry their settled funding rates (an
    account's strategy there reads them: :mod:`gridflow.dataflows.funding_feed`)."""
    config_hash: str = ""  # set by plan_run
    """:func:`~gridflow.config.loader.config_hash` of ``cfg`` in ``mode``, computed once
    (a store series' part reads the store: the run id and the run row agree)."""

    def routes(self) -> dict[str, tuple[str, ...]]:
        """Symbol -> accounts trading it (sorted)."""
        out: dict[str, list[str]] = {s: [] for s in self.timeframes}
        for acct, syms in self.account_symbols.items():
            for s in syms:
                out[s].append(acct)
        return {s: tuple(sorted(a)) for s, a in out.items()}

    def account(self, name: str) -> AccountConfig:
        return next(a for a in self.cfg.accounts if a.name == name)

    def new_engine(self, name: str) -> AccountEngine:
        """A fresh account engine for account ``name`` (continued from the journal when
        the config asks for it and the run has a summary for the account)."""
        args = (self.account(name), self.account_symbols[name], self.timeframes,
                self.cfg.fees, self.cfg.markets, self.cfg.equity_every_ms)
        if self.mode == "live":
            from gridflow.operators.live_engine import LiveAccountEngine

            eng: AccountEngine = LiveAccountEngine(*args, live=self.cfg.live,
                                                   await_outcomes=True)
        else:
            eng = AccountEngine(*args, funding=self.funding)
        if name in self.restored:
            eng.restore(self.restored[name])
        return eng

    def expected_candles(self) -> int:
        """Candles the account engines will see (file rows in the replay window, times
        the accounts trading each symbol): the total of a progress bar. Reads the files."""
        from gridflow.data.candle_files import read_candle_file

        lo = self.cfg.start_ms if self.cfg.start_ms is not None else -1
        hi = self.cfg.end_ms if self.cfg.end_ms is not None else 2**62
        routes = self.routes()
        total = 0
        for path, sym, _ in self.files:
            ts = read_candle_file(path)["ts"]
            inside = (ts >= lo) & (ts < hi)
            warm = min(self.cfg.warmup_candles, int(np.argmax(inside))) if inside.any() else 0
            total += (int(inside.sum()) + warm) * len(routes[sym])
        return total

    def run_row(self) -> dict:
        """The journal's run record (config and data as JSON)."""
        return {
            "run_id": self.run_id,
            "config_hash": self.config_hash,
            "config_json": self.cfg.model_dump_json(),
            "data_json": json.dumps(
                [{"file": source_name(p), "symbol": s, "timeframe": tf}
                 for p, s, tf in self.files]
            ),
            "mode": self.mode,
        }


def plan_run(cfg: GridflowConfig, mode: str = "replay") -> RunPlan:
    """Build the :class:`RunPlan` of ``cfg``.

    ``mode`` ``"paper"`` or ``"live"`` reads no files: every symbol an account names
    (its ``symbols``, else its strategies' allow-lists) streams ``cfg.live.timeframe``
    candles from the exchange.

    Raises
    ------
    FileNotFoundError
        If a data file is missing.
    ValueError
        If an account ends up with no symbol that has data, or (paper / live) a regime
        filter's window is longer than the warm-up a start fetches, or a symbol is
        assigned ``grid_funding`` without funding rates: in a replay without its
        funding file, in paper / live on a spot market.
    """
    if mode == "replay":
        files = resolve_data_files(cfg.data)
        timeframes = {sym: tf for _, sym, tf in files}
    else:
        files = []
        timeframes = {s: cfg.live.timeframe for a in cfg.accounts
                      for s in (a.symbols or [x for st in a.strategies for x in st.symbols])}
    account_symbols: dict[str, tuple[str, ...]] = {}
    fed: set[str] = set()  # paper / live: symbols whose candles carry funding rates
    indicators: dict[str, set[str]] = {s: set() for s in timeframes}
    for acct in cfg.accounts:
        allowed = [s for st in acct.strategies for s in st.symbols]
        wanted = acct.symbols or (
            tuple(sorted(timeframes)) if any(not st.symbols for st in acct.strategies)
            else tuple(allowed)
        )
        missing = [s for s in wanted if s not in timeframes]
        if missing:
            log.warning("account %s: no candle data for %s; not traded", acct.name, missing)
        assigned = acct.assignment(sorted(s for s in wanted if s in timeframes))
        not_allowed = sorted(s for s in wanted if s in timeframes and s not in assigned)
        if not_allowed:
            log.warning("account %s: no strategy allows %s; not traded", acct.name, not_allowed)
        syms = tuple(sorted(assigned))
        if not syms:
            raise ValueError(
                f"account {acct.name!r}: none of its symbols {list(wanted)} has candle data "
                f"and a strategy allowing it (data symbols: {sorted(timeframes)})"
            )
        account_symbols[acct.name] = syms
        for name in acct.indicators:  # config checked the grammar; the ranges are checked here
            try:
                parse_indicator(name)
            except ValueError as exc:
                raise ValueError(f"account {acct.name!r}: indicators: {exc}") from None
        for s in syms:
            indicators[s].update(strategy_indicators(acct, assigned[s]))
            indicators[s].update(acct.indicators)
            if mode != "replay" and FUNDING_RATE in INPUTS[assigned[s].name](assigned[s]):
                if cfg.live.exchange.market_type != "swap":
                    raise ValueError(
                        f"account {acct.name!r}: {s}: {assigned[s].name} reads the settled "
                        "funding rates of a perpetual; live.exchange.market_type is "
                        f"{cfg.live.exchange.market_type!r}, which has none")
                fed.add(s)
            rf = assigned[s].regime_filter
            if mode != "replay" and rf is not None and rf.window - 1 > cfg.live.warmup_candles:
                raise ValueError(
                    f"account {acct.name!r}: {s}: regime_filter.window = {rf.window} candles "
                    f"needs live.warmup_candles >= {rf.window - 1} (it is "
                    f"{cfg.live.warmup_candles}): with less, every entry stays blocked "
                    f"for {rf.window - 1 - cfg.live.warmup_candles} candles after a start")
    traded = {s for syms in account_symbols.values() for s in syms}
    unused = sorted(set(timeframes) - traded)
    if unused:  # no account trades them: do not read, validate or compute them at all
        log.warning("data for %s is not traded by any account; skipped", unused)
        files = [f for f in files if f[1] in traded]
        timeframes = {s: tf for s, tf in timeframes.items() if s in traded}
        indicators = {s: v for s, v in indicators.items() if s in traded}
    digest = config_hash(cfg, mode)
    run_id = cfg.run_id or default_run_id(cfg, mode, digest=digest)
    restored = {}
    if cfg.restore_from_journal:
        from gridflow.journal.store import read_summaries

        restored = {r["account"]: r for r in read_summaries(cfg.db_url, run_id)}
    funding = load_funding(cfg, set(timeframes))
    for acct in cfg.accounts:  # a funding grid without its funding series never trades
        for s, p in acct.assignment(list(account_symbols.get(acct.name, ()))).items():
            if mode == "replay" and p.name == "grid_funding" and s not in funding:
                raise ValueError(f"account {acct.name!r}: {s}: grid_funding needs the "
                                 "symbol's funding file ([[funding]] path = ...)")
    return RunPlan(
        cfg,
        run_id,
        files,
        timeframes,
        account_symbols,
        {s: tuple(sorted(v)) for s, v in indicators.items()},
        restored,
        mode,
        funding,
        tuple(sorted(fed & set(timeframes))),
        digest,
    )


def load_funding(cfg: GridflowConfig, symbols: set[str]
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read the funding files of ``cfg`` for the ``symbols`` traded.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing or invalid file (:func:`~gridflow.data.funding.read_funding`), or two
        files for one symbol.
    """
    from gridflow.data.funding import funding_file_symbol, read_funding

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for f in cfg.funding:
        sym = f.symbol or funding_file_symbol(f.path)
        if sym in out:
            raise ValueError(f"funding: two files for {sym}")
        if sym in symbols:
            out[sym] = read_funding(f.path)
    return out
