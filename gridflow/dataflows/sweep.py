"""The sweep dataflow: spec partitions -> sweep kernel (or walk-forward window) -> store.

Run it with ``GRIDFLOW_SWEEP_SPEC=spec.toml python -m bytewax.run dataflows.sweep:flow``
(add ``-w N`` for threads, ``-i K -a "host:port;..."`` for processes) or
``"dataflows.sweep:build('spec.toml')"``; ``gridflow sweep`` / ``gridflow wfo`` wrap it.

Every worker derives the same partition list from the spec
(:meth:`~gridflow.dataflows.sweep_spec.SweepSpec.partitions`) and takes those whose index ``i``
satisfies ``i % worker_count == worker_index``, so threads of one process and workers of
several processes split the work, each partition run exactly once. A walk-forward run has
one partition per window of each symbol; the windows of a symbol meet in one worker
(keyed by symbol), which writes each window's rows as it arrives and, once it holds all
of them, assembles and writes the symbol's windows and report. Result writes are
idempotent upserts, so a rerun (or a crash and rerun) ends with the same rows. Candles
and indicators of a symbol are loaded once per process and shared by its workers (the
kernel releases the GIL, so threads run it in parallel).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import bytewax.operators as op
import tenacity
from bytewax.dataflow import Dataflow
from bytewax.inputs import DynamicSource, StatelessSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from gridflow.dataflows.heap import freeze_startup_heap
from gridflow.dataflows.sweep_spec import SweepSpec, load_sweep_spec
from gridflow.journal.store import connect
from gridflow.journal.sweep_store import (
    SweepResultRow,
    WfoSummaryRow,
    WfoWindowRow,
    create_sweep,
    finish_sweep,
    write_results,
    write_wfo,
)
from gridflow.sweep import METRICS, IndicatorTable, SweepData, run_sweep
from gridflow.wfo.config import Window, window_combos, windows

SPEC_ENV = "GRIDFLOW_SWEEP_SPEC"
"""Environment variable naming the spec file (TOML or JSON) of ``dataflows.sweep:flow``."""

_CACHE_SIZE = 16
_cache: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()


# --- per-process data cache -----------------------------------------------------------
def _entry(spec: SweepSpec, symbol: str) -> dict[str, Any]:
    """The cache slot of ``(spec identity, symbol)``, with its own lock (two symbols
    load in parallel, one symbol once)."""
    key = (spec.identity_hash(), symbol)
    with _cache_lock:
        slot = _cache.get(key)
        if slot is None:
            slot = _cache[key] = {"lock": threading.Lock()}
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        _cache.move_to_end(key)
        return slot


def symbol_data(spec: SweepSpec, symbol: str) -> SweepData:
    """``symbol``'s validated candles (and funding), read once per process."""
    slot = _entry(spec, symbol)
    with slot["lock"]:
        if "data" not in slot:
            path, tf = spec.candle_file(symbol)
            slot["data"] = SweepData.from_file(path, symbol, tf, spec.funding_file(symbol))
        return slot["data"]


def transfer_data(spec: SweepSpec, symbol: str) -> SweepData | None:
    """The candles of ``symbol`` on its live venue (``spec.wfo.transfer``: a file or a
    store spec), validated like the research data, with the same funding; None when
    none is given."""
    from gridflow.data.candle_files import resolve_data_files

    source = spec.wfo.transfer.get(symbol) if spec.wfo is not None else None
    if not source:
        return None
    ((path, _, tf),) = resolve_data_files([source])
    return SweepData.from_file(path, symbol, tf, spec.funding_file(symbol))


def first_candle(spec: SweepSpec, data: SweepData) -> int:
    """Index of the first candle read (indicator warm-up start): 0 without
    ``warmup_ms``, else the first candle at or after ``start_ms - warmup_ms``."""
    if spec.warmup_ms is None or spec.start_ms is None:
        return 0
    return data.index(spec.start_ms - spec.warmup_ms, 0)


def wfo_windows(spec: SweepSpec, symbol: str) -> list[Window]:
    """The walk-forward windows of ``symbol`` (:func:`windows` of its candles and
    ``spec.wfo``), computed once per process.

    Raises
    ------
    ValueError
        No window fits (the message starts with the symbol).
    """
    data = symbol_data(spec, symbol)
    slot = _entry(spec, symbol)
    with slot["lock"]:
        if "windows" not in slot:
            try:
                slot["windows"] = windows(data, spec.wfo)
            except ValueError as exc:
                raise ValueError(f"{symbol}: {exc}") from exc
        return slot["windows"]


def partitions(spec: SweepSpec) -> list[tuple[str, int]]:
    """:meth:`SweepSpec.partitions` of ``spec``, given the window count of each symbol
    of a walk-forward run (:func:`wfo_windows`, which reads the candles)."""
    if spec.kind == "wfo":
        return spec.partitions({s: len(wfo_windows(spec, s)) for s in spec.symbols})
    return spec.partitions()


def indicator_table(spec: SweepSpec, symbol: str) -> IndicatorTable:
    """The shared indicator table of ``symbol`` with every indicator of the whole grid
    (and, for a walk-forward run, of every stability neighbour, warmed up from the first
    candle) computed up front, so :func:`run_sweep` only reads it (safe across threads)."""
    from gridflow.operators.strategies import strategy_indicators

    data = symbol_data(spec, symbol)
    slot = _entry(spec, symbol)
    with slot["lock"]:
        if "table" not in slot:
            combos, _ = spec.grid()
            if spec.kind == "wfo":
                table = IndicatorTable(data, 0)
                combos = window_combos(combos, spec.space, spec.wfo)
            else:
                table = IndicatorTable(data, first_candle(spec, data))
            table.ensure([n for p in combos for n in strategy_indicators(spec.account, p)])
            table.prepare(combos)  # the gate and input rows too: run_sweep only reads
            slot["table"] = table
        return slot["table"]


def clear_cache() -> None:
    """Forget every cached symbol (frees memory in long-lived processes)."""
    with _cache_lock:
        _cache.clear()


def plan_steps(spec: SweepSpec) -> dict[tuple[str, int, str], int]:
    """Candles traded by one result row of each ``(symbol, window, phase)``: the
    progress unit (combinations x candles) and a check that every window holds candles.

    Raises
    ------
    ValueError
        A symbol with no candle in ``[start_ms, end_ms)``, or no walk-forward window.
    """
    out: dict[tuple[str, int, str], int] = {}
    for s in spec.symbols:
        data = symbol_data(spec, s)
        if spec.kind == "sweep":
            t0 = max(data.index(spec.start_ms, 0), first_candle(spec, data))
            t1 = data.index(spec.end_ms, len(data))
            if t1 <= t0:
                raise ValueError(f"{s}: no candle between start_ms {spec.start_ms} and "
                                 f"end_ms {spec.end_ms}")
            out[(s, -1, "full")] = t1 - t0
            continue
        for w in wfo_windows(spec, s):
            for phase, lo, hi in (("is", w.is_start_ms, w.is_end_ms),
                                  ("oos", w.oos_start_ms, w.oos_end_ms)):
                out[(s, w.index, phase)] = data.index(hi, len(data)) - data.index(lo, 0)
    return out


# --- one partition --------------------------------------------------------------------
def run_partition(spec: SweepSpec, part: tuple[str, int]) -> dict[str, Any]:
    """Run one partition ``(symbol, k)``: chunk ``k`` of the grid on ``symbol``, or
    walk-forward window ``k`` of ``symbol``.

    Returns
    -------
    dict
        ``symbol``, ``chunk`` (``k``), ``rows`` (:func:`write_results` rows), ``wfo``
        (None here, see :func:`collect_windows`), ``steps`` (candles x combinations),
        ``seconds`` (kernel time) and, for a window, ``window``: its
        :class:`~gridflow.wfo.walkforward.WindowResult` without rows.
    """
    symbol, k = part
    if spec.kind == "wfo":
        return _run_window(spec, symbol, k)
    from gridflow.wfo.grade import window_score
    from gridflow.wfo.walkforward import WfoConfig

    data, table = symbol_data(spec, symbol), indicator_table(spec, symbol)
    combos, params = spec.grid()
    ids = spec.chunk(k)
    res = run_sweep(data, spec.account, combos[ids.start:ids.stop], spec.fees,
                    spec.market(symbol), start_ms=spec.start_ms, end_ms=spec.end_ms,
                    first=table.first, table=table)
    m = res.metrics
    score = window_score(m["total_return"], m["max_drawdown"], m["trades"], m["sharpe"],
                         WfoConfig().min_trades)
    cols = {name: m[name].tolist() for name in METRICS}
    cols["score"] = list(map(float, score))
    rows = [{"sweep_id": spec.sweep_id, "symbol": symbol, "window": -1, "phase": "full",
             "combo_id": cid, "params": dict(params[cid]),
             **{name: v[j] for name, v in cols.items()}} for j, cid in enumerate(ids)]
    return {"symbol": symbol, "chunk": k, "rows": rows, "wfo": None, "steps": res.steps,
            "seconds": res.seconds}


def _run_window(spec: SweepSpec, symbol: str, k: int) -> dict[str, Any]:
    from gridflow.wfo.walkforward import run_window

    data, table = symbol_data(spec, symbol), indicator_table(spec, symbol)
    combos, params = spec.grid()
    res = run_window(data, spec.account, spec.strategy, spec.space, spec.wfo,
                     wfo_windows(spec, symbol)[k], combos, params, table, spec.fees,
                     spec.market(symbol), spec.base)
    rows = [{"sweep_id": spec.sweep_id, "symbol": symbol, **r} for r in res.rows]
    return {"symbol": symbol, "chunk": k, "rows": rows, "wfo": None, "steps": res.steps,
            "seconds": res.seconds, "window": dataclasses.replace(res, rows=[])}


def collect_windows(spec: SweepSpec, state: dict[int, Any] | None, item: dict[str, Any]
                    ) -> tuple[dict[int, Any] | None, list[dict[str, Any]]]:
    """The stateful step of a walk-forward run, keyed by symbol: passes each window's
    rows on to the store at once and keeps its result; when every window of the symbol
    has arrived, :func:`~gridflow.wfo.walkforward.assemble` them and emit the windows
    and report (then the state is dropped).

    Parameters
    ----------
    state : dict[int, WindowResult] or None
        The symbol's windows so far, by index.
    item : dict
        A :func:`run_partition` result.

    Returns
    -------
    (state, items)
        Items for the sink: the window's rows, then (last window) the summary
        ``{"symbol", "chunk": -1, "rows": [], "wfo": (windows, report, grade), "steps",
        "seconds"}``.
    """
    from gridflow.wfo.walkforward import assemble

    symbol, state = item["symbol"], {} if state is None else state
    res = item["window"]
    state[res.window["index"]] = res
    out = [{k: v for k, v in item.items() if k != "window"}]
    if len(state) < len(wfo_windows(spec, symbol)):
        return state, out
    wfo = assemble(symbol_data(spec, symbol), spec.wfo, list(state.values()), spec.account,
                   spec.strategy, spec.grid()[1], spec.invalid_combos,
                   live=transfer_data(spec, symbol), fees=spec.fees,
                   market=spec.market(symbol), base=spec.base)
    keep = set(WfoWindowRow.model_fields) - {"sweep_id", "symbol"}
    wins = [{k: v for k, v in w.items() if k in keep} for w in wfo.windows]
    out.append({"symbol": symbol, "chunk": -1, "rows": [],
                "wfo": (wins, wfo.report, wfo.report["grade"]),
                "steps": wfo.report["steps"], "seconds": wfo.report["seconds"]})
    return None, out


# --- store progress -------------------------------------------------------------------
def count_results(url: str | Engine, sweep_id: str) -> dict[tuple[str, int, str], int]:
    """Stored result rows of ``sweep_id`` per ``(symbol, window, phase)``."""
    t = SweepResultRow.__table__
    q = (select(t.c.symbol, t.c.window, t.c.phase, func.count())
         .where(t.c.sweep_id == sweep_id).group_by(t.c.symbol, t.c.window, t.c.phase))
    with connect(url) as conn:
        return {(s, int(w), p): int(n) for s, w, p, n in conn.execute(q)}


def is_complete(url: str | Engine, spec: SweepSpec) -> bool:
    """Whether the store holds every result of the run: ``symbols x combos`` rows of a
    sweep, or the summary of every symbol of a walk-forward run (written after its
    rows)."""
    with connect(url) as conn:
        if spec.kind == "sweep":
            t = SweepResultRow.__table__
            n = conn.execute(select(func.count()).where(t.c.sweep_id == spec.sweep_id)).scalar()
            return int(n) == spec.expected_results()
        t = WfoSummaryRow.__table__
        n = conn.execute(select(func.count()).where(t.c.sweep_id == spec.sweep_id)).scalar()
        return int(n) == len(spec.symbols)


# --- bytewax source and sink ----------------------------------------------------------
class _Partitions(StatelessSourcePartition):
    def __init__(self, parts: list[tuple[str, int]]) -> None:
        self._parts = iter(parts)

    def next_batch(self) -> list[tuple[str, int]]:
        return [next(self._parts)]  # StopIteration when done ends the input


class SweepInput(DynamicSource):
    """This worker's partitions of the spec: ``partitions()[i]`` with
    ``i % worker_count == worker_index``, one per batch."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partitions:
        parts = partitions(self.spec)
        return _Partitions([p for i, p in enumerate(parts) if i % worker_count == worker_index])


class _Writer(StatelessSinkPartition):
    def __init__(self, spec: SweepSpec, started: float) -> None:
        from gridflow.journal.schema import open_store

        self._spec, self._started = spec, started
        self._engine = open_store(spec.db_url)

    def write_batch(self, items: list[dict[str, Any]]) -> None:
        rows = [r for it in items for r in it["rows"]]
        write_results(self._engine, rows)
        for it in items:
            if it["wfo"] is not None:
                wins, report, grade = it["wfo"]
                write_wfo(self._engine, self._spec.sweep_id, it["symbol"], wins, report, grade)

    def close(self) -> None:
        try:
            if is_complete(self._engine, self._spec):
                finish_sweep(self._engine, self._spec.sweep_id,
                             time.perf_counter() - self._started)
        finally:
            self._engine.dispose()


class SweepSink(DynamicSink):
    """Writes each batch of partition results to the store (idempotent upserts); on
    close, marks the sweep done when the store holds all of its results."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.started = time.perf_counter()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Writer:
        return _Writer(self.spec, self.started)


# --- the flow -------------------------------------------------------------------------
def register(spec: SweepSpec, attempts: int = 5) -> None:
    """Register the sweep in the store (:func:`create_sweep`, idempotent). Retried when
    processes starting together race to create the SQLite tables.

    Raises
    ------
    ValueError
        ``SWEEP_SPEC_MISMATCH``: the id exists with another spec.
    """
    # tenacity, the retry loop of gridflow (gridflow.exchange.retry); waits 0.2, 0.4, ... s
    tenacity.Retrying(stop=tenacity.stop_after_attempt(attempts),
                      wait=tenacity.wait_incrementing(start=0.2, increment=0.2),
                      retry=tenacity.retry_if_exception_type(OperationalError), reraise=True)(
        create_sweep, spec.db_url, spec.sweep_id, spec.kind, spec.strategy,
        list(spec.symbols), spec.store_spec(), spec.n_combos)


def build_flow(spec: SweepSpec) -> Dataflow:
    """The sweep dataflow of a validated spec (nothing is registered or read)."""
    flow = Dataflow("gridflow_sweep")
    parts = op.input("partitions", flow, SweepInput(spec))
    # (symbol, chunk index | window index)
    results = op.map("run", parts, lambda part: run_partition(spec, part))
    # {"symbol", "chunk", "rows", "wfo", "steps", "seconds"[, "window"]}
    if spec.kind == "wfo":
        keyed = op.key_on("by_symbol", results, lambda item: item["symbol"])
        done = op.stateful_flat_map("collect", keyed,
                                    lambda state, item: collect_windows(spec, state, item))
        results = op.key_rm("unkey", done)  # window rows, then the symbol's summary
    op.output("store", results, SweepSink(spec))
    freeze_startup_heap()  # dataflows.heap
    return flow


def build(spec: str | Path | dict | SweepSpec) -> Dataflow:
    """Load the spec (a TOML/JSON path, a dict or a :class:`SweepSpec`), register the
    sweep in its store and build the flow; every process of a run may call it."""
    s = load_sweep_spec(spec)
    register(s)
    return build_flow(s)


def __getattr__(name: str) -> Dataflow:
    # ``python -m bytewax.run gridflow.dataflows.sweep:flow`` builds the flow of the spec
    # named by GRIDFLOW_SWEEP_SPEC lazily, so importing this module has no side effects.
    if name == "flow":
        path = os.environ.get(SPEC_ENV)
        if not path:
            raise RuntimeError(f"set {SPEC_ENV} to the path of a sweep spec (TOML or JSON)")
        return build(path)
    raise AttributeError(name)
