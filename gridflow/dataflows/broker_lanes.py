"""Broker lanes: a batch of order intents carried out on parallel lanes, one ordered
sequence per symbol.

A candle close can give a dozen intents per symbol; sent one after the other, the last
symbol's entries and a fill's take profit wait for every request before them. Lanes
run the symbols side by side, each lane with its own exchange client, under three rules:

* the intents of one order chain stay in their order, on one lane (a replacement after
  the order it replaces, a cancel after its place): a symbol's entries and market
  closes on one lane, its take profit's chain on another and its stop's on a third
  (:func:`lane_key`: the three are independent, and a fill's take profit and stop then
  go out side by side);
* an intent that opens new exposure (a place that is not reduce-only and replaces no
  order) never overtakes an earlier intent of the batch that frees margin (a cancel, a
  reduce-only place, a replacement, whose old order is cancelled first), on any lane:
  the exchange sees the margin the engine counted on when it decided.

* a market close (:func:`closes`) goes after the intents of its symbol's take-profit
  and stop chains submitted before it (the cancels of a flatten or a flip): the close
  never reaches the exchange while the take profit it cancels still rests.

A replacement itself does not wait for other lanes: its own cancel goes first and frees
about the margin it needs (a moved grid level, the same amount at a nearby price). So a
candle close that moves every level of every symbol runs its symbols side by side
instead of one after the other (before: the fifth symbol's first entry waited for
every request of the four before it). An account within a fraction of a percent of the
exchange's margin limit may see a larger replacement refused (``-2019``): journaled as
``order_rejected``, its slot is decided again at the next update.

:func:`plan_lanes` is the pure part (which intent goes where, and who waits for whom,
within one batch); :class:`LaneRunner` runs intents on lane threads by the same rules,
across batches: a batch is queued behind the lanes' earlier work, not behind the whole
earlier batch. Given a ``gather`` rule, a lane runs a run of its intents as one group (one
batch request: :mod:`gridflow.dataflows.broker_batch`); a group waits for what its
intents wait for, and what waits for one of them waits for the group.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from gridflow import latency_trace
from gridflow.events import OrderIntent

R = TypeVar("R")
T = TypeVar("T")


def frees_margin(intent: OrderIntent) -> bool:
    """A cancel, a reduce-only place, or a replacement (its old order is cancelled
    first): sent before a later opening intent of another symbol."""
    return intent.action == "cancel" or intent.reduce_only or intent.cancel_first is not None


def opens(intent: OrderIntent) -> bool:
    """A place that is not reduce-only: it needs margin."""
    return intent.action == "place" and not intent.reduce_only


def waits_for_margin(intent: OrderIntent) -> bool:
    """An opening place that replaces no order and whose margin the account does not
    hold already (``margin_held``): it waits for the margin-freeing intents before it
    on other lanes (see the module docstring)."""
    return opens(intent) and intent.cancel_first is None and not intent.margin_held


def protective(intent: OrderIntent) -> bool:
    """A resting reduce-only order's place or cancel (take profit, stop, their moves):
    served before the other intents queued on its lane (see :class:`LaneRunner`). A
    market close is not: it stays behind the cancels the engine emitted before it (on
    its lane, and on its take profit's and stop's lanes by :func:`chain_waits`)."""
    return intent.reduce_only and intent.type != "market"


def lane_key(intent: OrderIntent) -> str:
    """What picks an intent's lane: its symbol, or for a take profit or a stop (their
    chains are independent of each other and of the entries) the symbol and the slot."""
    return f"{intent.symbol}|{intent.tag}" if intent.tag in ("TP", "SL") else intent.symbol


def closes(intent: OrderIntent) -> bool:
    """A market close (a reduce-only market order: flatten, flip, time or kill-switch
    close): sent after the intents of its symbol's take-profit and stop chains submitted
    before it (their cancels), which run on lanes of their own."""
    return intent.reduce_only and intent.type == "market"


def chain_waits(last_of: dict[str, tuple[int, T]], lane: int, intent: OrderIntent,
                token: T) -> tuple[T, ...]:
    """The close rule, one intent at a time: what ``intent`` (on ``lane``, known by
    ``token``) waits for (if it :func:`closes`: the latest intent of its symbol's
    take-profit and stop chains, from ``last_of``: lane key -> (lane, token), when on
    another lane; on its own lane those are served first anyway), and ``last_of``
    updated with it. Those chains never wait themselves: no cycle."""
    waits: tuple[T, ...] = ()
    if closes(intent):
        waits = tuple(x[1] for x in (last_of.get(f"{intent.symbol}|{tag}") for tag in
                                     ("TP", "SL")) if x is not None and x[0] != lane)
    last_of[lane_key(intent)] = (lane, token)
    return waits


def margin_waits(last_freeing: dict[int, T], lane: int, intent: OrderIntent,
                 token: T) -> tuple[T, ...]:
    """The margin rule, one intent at a time: what ``intent`` (on ``lane``, known by
    ``token``) waits for (the latest margin-freeing intent of every other lane, from
    ``last_freeing``: lane -> token), and ``last_freeing`` updated with it."""
    waits = tuple(t for other, t in last_freeing.items()
                  if other != lane) if waits_for_margin(intent) else ()
    if frees_margin(intent):
        last_freeing[lane] = token
    return waits


@dataclass(frozen=True)
class LanePlan:
    """Where the intents of a batch run.

    Attributes
    ----------
    lanes : dict[int, tuple[int, ...]]
        Lane number -> indices (into the batch) of its intents, in batch order.
    waits : dict[int, tuple[int, ...]]
        Index of an opening intent that replaces no order -> the indices it waits
        for: on every other lane, the last margin-freeing intent that came before it
        in the batch; index of a market close -> the last intents of its symbol's
        take-profit and stop chains before it, on other lanes (:func:`chain_waits`).
    """

    lanes: dict[int, tuple[int, ...]]
    waits: dict[int, tuple[int, ...]]


def plan_lanes(intents: Sequence[OrderIntent], lane_of: Callable[[str], int]) -> LanePlan:
    """Split a batch by lane (``lane_of(symbol)``) and find the cross-lane waits.

    Parameters
    ----------
    intents : sequence of OrderIntent
        The batch, in the order the engine emitted it.
    lane_of : callable
        ``symbol -> lane number``; one symbol always maps to one lane.
    """
    lanes: dict[int, list[int]] = {}
    last_freeing: dict[int, int] = {}  # lane -> index of its latest margin-freeing intent
    last_of: dict[str, tuple[int, int]] = {}  # lane key -> (lane, index) of its latest
    waits: dict[int, tuple[int, ...]] = {}
    for i, intent in enumerate(intents):
        lane = lane_of(lane_key(intent))
        lanes.setdefault(lane, []).append(i)
        before = margin_waits(last_freeing, lane, intent, i) + chain_waits(
            last_of, lane, intent, i)
        if before:
            waits[i] = before
    return LanePlan({k: tuple(v) for k, v in lanes.items()}, waits)


class Batch:
    """A batch handed to :meth:`LaneRunner.submit`: its results once every lane ran its
    part (:meth:`wait`), or the first exception raised on a lane."""

    def __init__(self, n: int, on_done: Callable[[Batch], None] | None) -> None:
        self.results: list = [None] * n
        self.error: BaseException | None = None
        self.outcomes: list = []  # what ``on_done`` makes of the results, if anything
        self._left = n
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._on_done = on_done
        if n == 0:
            self._finish()

    def _one_done(self) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._finish()

    def _finish(self) -> None:
        try:
            if self._on_done is not None:
                self._on_done(self)
        except BaseException as exc:  # noqa: BLE001 - kept for the waiter
            self.error = self.error or exc
        finally:
            self._done.set()

    def done(self) -> bool:
        return self._done.is_set()

    def finished(self, timeout: float | None = None) -> bool:
        """Whether the batch ended within ``timeout`` wall seconds (None: wait for it)."""
        return self._done.wait(timeout)

    def wait(self) -> list:
        """The results in batch order, once every intent ran (or was skipped).

        Raises
        ------
        LaneError
            When ``work`` (or ``on_done``) raised; ``.results`` holds the results so
            far and ``__cause__`` the first exception.
        """
        self._done.wait()
        if self.error is not None:
            raise LaneError(self.results) from self.error
        return self.results


@dataclass
class _Group:
    """Intents of one batch that run together on a lane (one alone, or gathered)."""

    key: str
    most: int
    done: threading.Event
    idx: list[int] = field(default_factory=list)
    intents: list[OrderIntent] = field(default_factory=list)
    waits: tuple = ()


class LaneRunner:
    """Runs intents on up to ``max_lanes`` lane threads, a symbol on one lane, batch
    after batch without waiting for the batch before.

    Each lane is a queue served by its own thread, so a symbol's intents run in the
    order they were submitted, across batches; a fill's take profit submitted while an
    earlier batch still runs waits only for the requests of its own lane, and not even
    for those queued that are not :func:`protective`: a lane serves its protective
    intents first, each class in submission order (an order and its replacements and
    cancel are always of one class, so they keep their order). The margin
    rule of :func:`plan_lanes` holds across batches too: an opening intent that
    replaces no order waits for the latest margin-freeing intent submitted before it
    on every other lane.

    Parameters
    ----------
    max_lanes : int
        ≥ 1. Symbols take lanes in the order they first appear, round robin.

    Notes
    -----
    An exception on a lane fails its batch (:meth:`Batch.wait` raises it) and stops
    the runner: every intent not yet run, of any batch, is skipped (its result None) and
    the intents waiting for it are released; :meth:`submit` raises the exception from
    then on. The flow stops on it and recovers from the journal's write-ahead rows.
    """

    def __init__(self, max_lanes: int) -> None:
        if max_lanes < 1:
            raise ValueError(f"max_lanes must be >= 1, got {max_lanes}")
        self.max_lanes = max_lanes
        self._lane_of: dict[str, int] = {}
        self._queues: dict[int, queue.PriorityQueue] = {}
        self._seq = itertools.count()  # submission order within a priority class
        self._threads: dict[int, threading.Thread] = {}
        self._freeing: dict[int, threading.Event] = {}  # lane -> its latest freeing intent
        self._last_of: dict[str, tuple[int, threading.Event]] = {}  # lane key -> latest
        self._pending: set[Batch] = set()
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def lane_of(self, symbol: str) -> int:
        """The lane of ``symbol`` (assigned at its first appearance)."""
        lane = self._lane_of.get(symbol)
        if lane is None:
            lane = self._lane_of[symbol] = len(self._lane_of) % self.max_lanes
        return lane

    def submit(self, intents: Sequence[OrderIntent], work: Callable[[int, int, OrderIntent], R],
               on_done: Callable[[Batch], None] | None = None,
               gather: Callable[[int, OrderIntent], tuple[str, int] | None] | None = None,
               work_group: Callable[[int, list[int], list[OrderIntent]], list[R]] | None = None,
               ) -> Batch:
        """Queue ``work(lane, index, intent)`` for each intent of the batch; returns at
        once. ``on_done(batch)`` runs on the lane thread that ends the batch (before
        :meth:`Batch.wait` returns).

        With ``gather`` and ``work_group``: intents that follow each other on one lane
        with the same key ``gather(index, intent) -> (key, most)`` (None: alone) run as
        one ``work_group(lane, indices, intents)`` call (a batch request), at most
        ``most`` together; it returns one result per intent. A group waits for what any
        of its intents waits for, and what waits for one of them waits for the group.

        Raises
        ------
        LaneError
            The runner stopped on an earlier exception (``__cause__``).
        """
        if self.error is not None:
            raise LaneError([None] * len(intents)) from self.error
        keys = [gather(i, it) if gather is not None and work_group is not None else None
                for i, it in enumerate(intents)]  # before anything is queued: may raise
        batch = Batch(len(intents), self._forget(on_done))
        if not intents:  # ended already
            return batch
        with self._lock:
            self._pending.add(batch)
        open_groups: dict[int, _Group] = {}
        for i, (intent, key) in enumerate(zip(intents, keys)):
            lane = self.lane_of(lane_key(intent))
            g = open_groups.get(lane)
            if g is not None and (key is None or key[0] != g.key or len(g.idx) >= g.most):
                self._put(lane, batch, open_groups.pop(lane), work, work_group)
                g = None
            if g is None:
                g = _Group("" if key is None else key[0], 1 if key is None else key[1],
                           threading.Event())
            g.idx.append(i)
            g.intents.append(intent)
            g.waits += margin_waits(self._freeing, lane, intent, g.done) + chain_waits(
                self._last_of, lane, intent, g.done)
            if key is None:
                self._put(lane, batch, g, work, work_group)
            else:
                open_groups[lane] = g
        for lane, g in open_groups.items():
            self._put(lane, batch, g, work, work_group)
        return batch

    def _put(self, lane: int, batch: Batch, g: _Group, work: Callable, work_group: Callable | None
             ) -> None:
        self._queue(lane).put((0 if protective(g.intents[0]) else 1, next(self._seq),
                               (batch, g, work, work_group)))

    def _forget(self, on_done: Callable[[Batch], None] | None) -> Callable[[Batch], None]:
        def finish(batch: Batch) -> None:
            try:
                if on_done is not None:
                    on_done(batch)
            except BaseException as exc:  # the batch's journal commit: nobody may wait
                with self._lock:  # for the batch (a bounded or no wait), so the runner
                    self.error = self.error or exc  # stops and raises it next
                raise
            finally:
                with self._lock:
                    self._pending.discard(batch)

        return finish

    def run(self, intents: Sequence[OrderIntent],
            work: Callable[[int, int, OrderIntent], R]) -> list[R | None]:
        """:meth:`submit` and wait: ``work``'s results in batch order.

        Raises
        ------
        LaneError
            When ``work`` raised on a lane; ``.results`` holds the results (None for
            the intents not run) and ``__cause__`` the first exception.
        """
        return self.submit(intents, work).wait()

    def drain(self) -> None:
        """Wait until every batch submitted so far has ended.

        Raises
        ------
        LaneError
            The runner stopped on an exception (``__cause__``).
        """
        while True:
            with self._lock:
                left = list(self._pending)
            if not left:
                break
            for b in left:
                b._done.wait()
        if self.error is not None:
            raise LaneError([]) from self.error

    def _queue(self, lane: int) -> queue.PriorityQueue:
        q = self._queues.get(lane)
        if q is None:
            q = self._queues[lane] = queue.PriorityQueue()
            t = self._threads[lane] = threading.Thread(
                target=self._serve, args=(lane, q), daemon=True,
                name=f"broker-lane-{lane}")
            t.start()
        return q

    def _serve(self, lane: int, q: queue.PriorityQueue) -> None:
        while True:
            _, _, item = q.get()
            if item is None:
                return
            batch, g, work, work_group = item
            try:
                if latency_trace.enabled():
                    for it in g.intents:
                        latency_trace.mark("lane_start", f"{it.symbol}@{it.ts_ms}:{it.tag}")
                for e in g.waits:
                    e.wait()
                if g.waits and latency_trace.enabled():
                    for it in g.intents:
                        latency_trace.mark("lane_go", f"{it.symbol}@{it.ts_ms}:{it.tag}")
                if self.error is None:
                    if len(g.idx) == 1:
                        batch.results[g.idx[0]] = work(lane, g.idx[0], g.intents[0])
                    else:
                        results = work_group(lane, list(g.idx), list(g.intents))
                        for i, r in zip(g.idx, results, strict=True):
                            batch.results[i] = r
            except BaseException as exc:  # noqa: BLE001 - handed to the waiters
                with self._lock:
                    self.error = self.error or exc
                batch.error = batch.error or exc
            finally:
                if self.error is not None and batch.error is None:
                    batch.error = self.error  # skipped after another batch failed
                g.done.set()
                for _ in g.idx:
                    batch._one_done()

    def close(self) -> None:
        """Stop the lane threads after the intents queued so far."""
        for q in self._queues.values():
            q.put((2, next(self._seq), None))  # after everything queued
        for t in self._threads.values():
            t.join()
        self._queues.clear()
        self._threads.clear()


class LaneError(RuntimeError):
    """A lane raised; ``results`` are the batch's results so far (None where not run)."""

    def __init__(self, results: list) -> None:
        super().__init__("a broker lane failed")
        self.results = results


__all__ = ["Batch", "LaneError", "LanePlan", "LaneRunner", "frees_margin", "margin_waits",
           "chain_waits", "closes", "opens", "plan_lanes", "protective", "waits_for_margin"]
