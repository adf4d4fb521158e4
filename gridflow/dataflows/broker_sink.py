"""The broker sink: sends :class:`~gridflow.events.OrderIntent` items to the exchange,
exactly once per intent, and journals each :class:`~gridflow.events.OrderOutcome`.

Bytewax recovery is at-least-once: after a crash the intents since the last snapshot
come again. The sink is idempotent by construction, through a write-ahead row per
intent in the journal's ``broker_outcomes`` table
(:func:`gridflow.journal.store.broker_begin`):

* row absent: write ``sending``, send, store the outcome;
* row terminal (``sent``, ``duplicate``, ``rejected``, ``failed``, ``canceled``,
  ``not_found``, ``skipped``): already done, nothing is sent;
* row ``sending`` (crashed mid-flight, outcome unknown): the order is looked up by its
  client id first and sent only if the exchange does not have it.

The deterministic client id is the second guard: an exchange that refuses a reused id
(Binance ``-4116``) turns any leftover race into a ``duplicate`` outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from sqlalchemy import Engine

from gridflow import latency_trace
from gridflow.config.live import LiveConfig
from gridflow.events import OrderIntent, OrderOutcome
from gridflow.dataflows.broker_batch import carry_gathered, gather_keys
from gridflow.dataflows.broker_carry import NOT_BEGUN, Carrier, merge, sending
from gridflow.dataflows.broker_lanes import Batch, LaneError, LaneRunner, lane_key
from gridflow.dataflows.broker_procs import BrokerProcesses
from gridflow.dataflows.broker_sweep import ABANDON_AFTER_S, abandoned, resolve
from gridflow.dataflows.db_poller import notify, outcomes_key
from gridflow.exchange.client import SharedThrottle, make_exchange
from gridflow.exchange.gateway import OrderGateway
from gridflow.exchange.retry import error_text, retry_call
from gridflow.journal.broker_rows import BROKER_TERMINAL, broker_begin_many, broker_finish_many
from gridflow.journal.store import open_store

log = logging.getLogger(__name__)

BROKER_PART = "broker"


class BrokerSinkConfig(Protocol):
    """What the sink needs of :class:`~gridflow.config.models.GridflowConfig`."""

    db_url: str
    run_id: str
    live: LiveConfig


def build_gateway(live: LiveConfig, sleep: Any = time.sleep,
                  markets_from: OrderGateway | None = None,
                  markets: tuple[dict, dict | None] | None = None) -> OrderGateway:
    """A ccxt exchange from ``live.exchange`` with its markets loaded, in a gateway.

    ``load_markets`` is retried on transport errors like orders are. With
    ``markets_from`` (another lane's gateway of the same account) the markets are
    copied from it instead of loaded, and both clients pace their requests through one
    :class:`~gridflow.exchange.client.SharedThrottle` (the venue's budget is the
    account's, not the client's). With ``markets`` (``(markets, currencies)`` of a
    loaded client, as a broker process gets them from the flow) they are set, not
    loaded, and the client paces itself.

    Raises
    ------
    RuntimeError
        When the markets cannot be loaded (message redacted, no chained ccxt error).
    ValueError
        Unknown ccxt exchange id.
    """
    cfg = live.exchange
    secrets = tuple(cfg.credentials())
    exchange = make_exchange(cfg)
    if markets_from is not None:
        source = markets_from.exchange
        exchange.set_markets_from_exchange(source)
        exchange.throttle = source.throttle
    elif markets is not None:
        exchange.set_markets(*markets)
        SharedThrottle(exchange.rateLimit, cfg.burst()).attach(exchange)
    else:
        SharedThrottle(exchange.rateLimit, cfg.burst()).attach(exchange)

        def warn(exc: BaseException, _wait_s: float) -> None:
            log.warning("load_markets failed (%s), retrying", error_text(exc, secrets))

        try:
            retry_call(exchange.load_markets, live.retry, sleep=sleep, on_retry=warn)
        except Exception as exc:  # noqa: BLE001 - ccxt errors and transport failures
            text = error_text(exc, secrets)
            raise RuntimeError(f"cannot load the markets of {cfg.id}: {text}") from None
    return OrderGateway(exchange, cfg.market_type, live.retry, secrets=secrets, sleep=sleep,
                        stop_limit_offset=live.stop_limit_offset)


def _one_per_intent(outcomes: list[OrderOutcome]) -> list[OrderOutcome]:
    """One outcome per intent id, at its first place: a cancel met twice in a batch (its
    own intent and a replacement of the same order, whose cancel then only looks it up)
    keeps the last status and every attempt and fault of both, so the row records each
    request the exchange saw."""
    by_id: dict[str, OrderOutcome] = {}
    for o in outcomes:
        seen = by_id.get(o.intent_id)
        by_id[o.intent_id] = o if seen is None else merge(seen, o)
    return list(by_id.values())


def _trace(stage: str, intents: list[OrderIntent]) -> None:
    """Latency marks of ``intents`` (:mod:`gridflow.latency_trace`)."""
    if latency_trace.enabled():
        for it in intents:
            latency_trace.mark(stage, f"{it.symbol}@{it.ts_ms}:{it.tag}")


class BrokerWriter:
    """Carries intents out idempotently and journals their outcomes (the body of the
    sink partition; usable without Bytewax).

    A batch costs two journal commits whatever its size: the write-ahead rows of all
    its intents (and of the replacements' cancels) before anything is sent, and the
    outcomes after. In between, the intents run on lanes
    (:mod:`gridflow.dataflows.broker_lanes`): a symbol's intents in order on one lane,
    symbols side by side, each lane with its own exchange client.

    Parameters
    ----------
    store : str or sqlalchemy.Engine
        Journal URL or engine; the ``broker_outcomes`` table is created if missing.
    run_id : str
    gateway : OrderGateway, optional
        Ready gateway (tests): one lane.
    gateway_factory : callable, optional
        ``(markets_from: OrderGateway | None) -> OrderGateway``: the first lane's
        gateway (``None``), then each further lane's from the first; called lazily.
    lanes : int
        Most lanes (≥ 1) when built by ``gateway_factory``.
    procs_factory : callable, optional
        ``(first lane's gateway) -> BrokerProcesses``: the lanes' requests carried in
        child processes (:mod:`gridflow.dataflows.broker_procs`), started at once on a
        thread of their own (the first lane's gateway built there too), awaited by the
        first batch; without it, on the lanes' own gateways in this process.
    abandon_after_s : float
        Wall seconds after the start before the rows an earlier process left
        ``sending``, whose intents did not come again, are resolved
        (:mod:`gridflow.dataflows.broker_sweep`); swept again at that period while any
        remain, at the start of a batch.

    Raises
    ------
    ValueError
        Neither ``gateway`` nor ``gateway_factory`` given.
    """

    def __init__(self, store: str | Engine, run_id: str, gateway: OrderGateway | None = None,
                 gateway_factory: Any = None, lanes: int = 1, procs_factory: Any = None,
                 abandon_after_s: float = ABANDON_AFTER_S) -> None:
        if gateway is None and gateway_factory is None:
            raise ValueError("BrokerWriter needs a gateway or a gateway_factory")
        self._own_engine = not isinstance(store, Engine)
        self.engine: Engine = open_store(store) if self._own_engine else store
        self.run_id = run_id
        self._gateways: dict[int, OrderGateway] = {} if gateway is None else {0: gateway}
        self._factory = gateway_factory
        self._runner = LaneRunner(1 if gateway is not None else lanes)
        self._started_ms = time.time_ns() // 1_000_000
        self._abandon_after_s = float(abandon_after_s)
        self._sweep_at: float | None = time.monotonic() + self._abandon_after_s
        self._finish_lock = threading.Lock()
        self._carrier = Carrier(self.engine, run_id)
        self._procs: BrokerProcesses | None = None
        self._procs_error: BaseException | None = None
        self._procs_start: threading.Thread | None = None
        if procs_factory is not None:  # the children start while the flow warms up
            self._procs_start = threading.Thread(target=self._start_procs,
                                                 args=(procs_factory,), daemon=True,
                                                 name="broker-procs-start")
            self._procs_start.start()

    def _start_procs(self, factory: Any) -> None:
        try:
            self._procs = factory(self.gateway)
        except BaseException as exc:  # noqa: BLE001 - raised by the first batch
            self._procs_error = exc

    def _await_procs(self) -> None:
        """Wait for the broker processes' start; raise what stopped it (at every batch:
        the lanes never fall back to this process)."""
        if self._procs_start is not None:
            self._procs_start.join()
            self._procs_start = None
        if self._procs_error is not None:
            raise self._procs_error

    @property
    def gateway(self) -> OrderGateway:
        """The first lane's gateway, built on first access."""
        return self._lane_gateway(0)

    def _lane_gateway(self, lane: int) -> OrderGateway:
        gw = self._gateways.get(lane)
        if gw is None:
            first = self._lane_gateway(0) if lane else None
            gw = self._gateways[lane] = self._factory(first)
        return gw

    def handle(self, intent: OrderIntent) -> list[OrderOutcome]:
        """:meth:`handle_batch` of one intent."""
        return self.handle_batch([intent])

    def handle_batch(self, intents: list[OrderIntent],
                     timeout: float | None = None) -> list[OrderOutcome]:
        """Carry out the intents whose journal rows do not say they were done, and wait
        for them (:meth:`submit_batch`, then the batch's end), at most ``timeout`` wall
        seconds (None: until it ends).

        Returns
        -------
        list[OrderOutcome]
            The outcomes journaled for this batch, in batch order (empty for an intent
            already done): a replacement's cancel before its place. An intent given
            twice in the batch (a replay) runs at its first place only. Empty when the
            batch had not ended within ``timeout``: it ends on its lanes (its outcomes
            journaled then, a lane's exception raised at the next batch or
            :meth:`drain`).

        Raises
        ------
        sqlalchemy.exc.SQLAlchemyError
            The journal cannot be written: nothing is sent without its write-ahead row.
        RuntimeError
            From the lazy gateway build (markets cannot be loaded).
        """
        batch = self.submit_batch(intents)
        if not batch.finished(timeout):
            return []
        try:
            batch.wait()
        except LaneError as err:
            raise err.__cause__ from None
        return batch.outcomes

    def submit_batch(self, intents: list[OrderIntent]) -> Batch:
        """Write the intents' write-ahead rows (on the caller's thread: nothing is sent
        without one) and queue the pending ones on the lanes; returns at once. When the
        batch has ended its outcomes are journaled, in one commit, and set as
        ``batch.outcomes``.

        Raises
        ------
        sqlalchemy.exc.SQLAlchemyError
            The write-ahead rows cannot be written (nothing queued).
        RuntimeError
            From the lazy gateway build (markets cannot be loaded), or the broker
            processes did not start.
        Exception
            What stopped the lanes in an earlier batch (the flow must stop and recover).
        """
        if self._runner.error is not None:
            raise self._runner.error
        self._await_procs()
        self.sweep()
        firsts: dict[str, OrderIntent] = {}
        for it in intents:
            firsts.setdefault(it.intent_id, it)
        intents = list(firsts.values())
        pending: list[int] = []
        statuses: list[str | None] = []
        cancel_rows: dict[int, str | None] = {}
        if intents:
            follows = {i: sending(OrderGateway.replaced_cancel(it))
                       for i, it in enumerate(intents) if it.replaces is not None}
            _trace("broker_in", intents)
            statuses, cancel_rows = broker_begin_many(
                self.engine, self.run_id, [sending(it) for it in intents], follows)
            _trace("broker_wa", intents)
            pending = [i for i, st in enumerate(statuses) if st not in BROKER_TERMINAL]
        procs = self._procs
        if procs is None:  # built here, in order, not on the lane threads
            for lane in sorted({self._runner.lane_of(lane_key(intents[i])) for i in pending}):
                self._lane_gateway(lane)

        def work(lane: int, k: int, intent: OrderIntent) -> list[OrderOutcome]:
            i = pending[k]
            if procs is not None:
                return procs.carry(lane, intent, statuses[i], cancel_rows.get(i, NOT_BEGUN))
            return self._carrier.carry(self._gateways[lane], intent, statuses[i],
                                       cancel_rows.get(i, NOT_BEGUN))

        def journal(batch: Batch) -> None:  # a lane thread, at the batch's end
            outs = [o for r in batch.results if r for o in r]
            batch.outcomes = self._finish(outs) if outs else []

        keys = gather_keys(self.gateway, [intents[i] for i in pending],
                           [statuses[i] is None and cancel_rows.get(i) is None
                            for i in pending]) if pending else []

        def gather(k: int, _intent: OrderIntent) -> tuple[str, int] | None:
            return keys[k]

        def work_group(lane: int, _ks: list[int], group: list[OrderIntent]
                       ) -> list[list[OrderOutcome]]:
            if procs is not None:
                return procs.carry_group(lane, group)
            return carry_gathered(self._gateways[lane], group)

        try:
            return self._runner.submit([intents[i] for i in pending], work, journal,
                                       gather, work_group)
        except LaneError as err:
            raise err.__cause__ from None

    def drain(self) -> None:
        """Wait until every submitted batch has ended and been journaled.

        Raises
        ------
        Exception
            What stopped a lane (from its batch's ``work`` or journal commit).
        """
        try:
            self._runner.drain()
        except LaneError as err:
            raise err.__cause__ from None

    def sweep(self, now: float | None = None) -> list[OrderOutcome]:
        """Resolve the rows an earlier process left ``sending`` whose intents did not
        come again, when a sweep is due (``now``: ``time.monotonic()``); the outcomes
        journaled."""
        now = time.monotonic() if now is None else now
        if self._sweep_at is None or now < self._sweep_at:
            return []
        rows = abandoned(self.engine, self.run_id, self._started_ms)
        outs = [o for o in (resolve(self.gateway, r) for r in rows) if o is not None]
        self._sweep_at = now + self._abandon_after_s if len(outs) < len(rows) else None
        return self._finish(outs) if outs else []

    def _finish(self, outcomes: list[OrderOutcome]) -> list[OrderOutcome]:
        """Journal the outcomes, each stamped with the time it is journaled (``ts_ms``,
        ms UTC, never earlier than its own): rows become visible in the order of their
        times, so a reader polling the table reads only the newest
        (:mod:`gridflow.dataflows.outcome_source`), woken at once in this process."""
        with self._finish_lock:  # lanes end batches side by side: stamp and commit in turn
            now = time.time_ns() // 1_000_000
            outcomes = [o if o.ts_ms >= now else o.model_copy(update={"ts_ms": now})
                        for o in _one_per_intent(outcomes)]
            broker_finish_many(self.engine, self.run_id, outcomes)
        notify(outcomes_key(self.run_id))  # the outcome source of this process reads now
        return outcomes

    def close(self) -> None:
        """Stop the lanes (after the batches queued); release the journal engine if this
        writer opened it."""
        self._runner.close()
        if self._procs_start is not None:
            self._procs_start.join()
        if self._procs is not None:
            self._procs.close()
        if self._own_engine:
            self.engine.dispose()


class _BrokerPartition(StatefulSinkPartition[OrderIntent, None]):
    """The single broker partition: the intents of a batch on the writer's lanes;
    with ``background``, queued there without waiting for the requests (each epoch's
    snapshot waits for them); else waited for, at most ``wait_s`` wall seconds (None:
    until answered)."""

    def __init__(self, writer: BrokerWriter, background: bool = False,
                 wait_s: float | None = None) -> None:
        self._writer = writer
        self._background = background
        self._wait_s = wait_s

    def write_batch(self, values: list[OrderIntent]) -> None:
        if self._background:
            self._writer.submit_batch(values)
        else:
            self._writer.handle_batch(values, self._wait_s)

    def snapshot(self) -> None:
        self._writer.drain()  # an epoch ends once its intents were sent and journaled
        return None

    def close(self) -> None:
        try:
            self._writer.drain()
        finally:
            self._writer.close()


class BrokerSink(FixedPartitionedSink[OrderIntent, None]):
    """Send ``(key, OrderIntent)`` items to the exchange, exactly once per intent.

    Parameters
    ----------
    cfg : GridflowConfig or alike
        ``db_url`` (journal), ``run_id``, ``live`` (exchange, retry,
        ``stop_limit_offset``).
    gateway : OrderGateway, optional
        A ready gateway (tests; one lane). Without it the partition makes its ccxt
        exchanges lazily, on the first batch, with :func:`build_gateway`: one per lane
        (``live.broker_lanes`` at most, one per symbol until then), the markets loaded
        once and the rate limit shared; with ``live.broker_processes`` the lanes'
        clients live in that many child processes
        (:class:`~gridflow.dataflows.broker_procs.BrokerProcesses`), this process keeping
        one client for the markets and the pacing.
    run_id : str, optional
        The run's id when ``cfg.run_id`` is empty (the default id of the plan).
    background : bool
        ``write_batch`` returns once the batch's write-ahead rows are committed and its
        intents queued on the lanes: the dataflow goes on deciding while requests run,
        so a fill's take profit and stop wait only for their own lane's requests, not
        for a whole earlier batch; each epoch's ``snapshot`` waits until every queued
        intent was sent and journaled, and an exception on a lane is raised on the
        worker at the next batch or snapshot. Without it (the live flow's choice)
        ``write_batch`` waits for its batch: measured on a 2-core machine against the
        local exchange, the worker deciding while the lanes send made every request
        wait for the GIL (candle close -> entry p50 36 -> 64 ms, fill -> protection
        41 -> 93 ms) and the fill tail did not shrink.

    Notes
    -----
    One partition, ``"broker"``: every item goes to one worker, in order, so the
    journal's broker rows have one writer (like
    :class:`~gridflow.dataflows.sinks.JournalSink`) and each batch is planned whole
    (:mod:`gridflow.dataflows.broker_lanes`). The routing key is ignored.
    ``snapshot`` returns None: the journal rows are the state (see the module
    docstring), so replayed intents are recognised there, not by a resume position.
    """

    def __init__(self, cfg: BrokerSinkConfig, gateway: OrderGateway | None = None,
                 run_id: str | None = None, background: bool = False) -> None:
        self.background = background
        self.db_url = cfg.db_url
        self.run_id = run_id or cfg.run_id
        self.live = cfg.live
        self.gateway = gateway

    def __repr__(self) -> str:
        return f"BrokerSink(run_id={self.run_id!r})"

    def list_parts(self) -> list[str]:
        """The single partition, ``["broker"]``."""
        return [BROKER_PART]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: None) -> StatefulSinkPartition[OrderIntent, None]:
        """Open the journal; the gateway is built on the first batch."""
        live, db_url, run_id = self.live, self.db_url, self.run_id

        def procs(first: OrderGateway) -> BrokerProcesses:
            ex = first.exchange
            return BrokerProcesses(live, db_url, run_id, live.broker_processes,
                                   live.broker_lanes, throttle=ex.throttle,
                                   markets=(ex.markets, ex.currencies))

        return _BrokerPartition(BrokerWriter(
            db_url, run_id, gateway=self.gateway, lanes=live.broker_lanes,
            gateway_factory=lambda first: build_gateway(live, markets_from=first),
            procs_factory=procs if live.broker_processes and self.gateway is None else None),
            background=self.background, wait_s=live.broker_wait_max_s)


__all__ = ["BROKER_PART", "BrokerSink", "BrokerSinkConfig", "BrokerWriter", "build_gateway"]
