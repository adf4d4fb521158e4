"""Broker lanes: a batch of order intents carried out on parallel lanes, one ordered
sequence per symbol.

A candle close can give a dozen intents per symbol; sent one after the other, the last
symbol's entries and a fill's take profit wait for every request before them. Lanes
run the symbols side by side, each lane with its own exchange client, under two rules:

* the intents of one symbol stay in their order, on one lane (a replacement after the
  order it replaces, a cancel after its place);
* an intent that opens new exposure (a place that is not reduce-only and replaces no
  order) never overtakes an earlier intent of the batch that frees margin (a cancel, a
  reduce-only place, a replacement, whose old order is cancelled first), on any lane:
  the exchange sees the margin the engine counted on when it decided.

A replacement itself does not wait for other lanes: its own cancel goes first and frees
about the margin it needs (a moved grid level, the same amount at a nearby price). So a
candle close that moves every level of every symbol runs its symbols side by side
instead of one after the other (before: the fifth symbol's first entry waited for
every request of the four before it). An account within a fraction of a percent of the
exchange's margin limit may see a larger replacement refused (``-2019``): journaled as
``order_rejected``, its slot is decided again at the next update.

:func:`plan_lanes` is the pure part (which intent goes where, and who waits for whom);
:class:`LaneRunner` runs a plan on threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from gridflow.events import OrderIntent

R = TypeVar("R")


def frees_margin(intent: OrderIntent) -> bool:
    """A cancel, a reduce-only place, or a replacement (its old order is cancelled
    first): sent before a later opening intent of another symbol."""
    return intent.action == "cancel" or intent.reduce_only or intent.cancel_first is not None


def opens(intent: OrderIntent) -> bool:
    """A place that is not reduce-only: it needs margin."""
    return intent.action == "place" and not intent.reduce_only


def waits_for_margin(intent: OrderIntent) -> bool:
    """An opening place that replaces no order: it waits for the margin-freeing intents
    before it on other lanes (see the module docstring)."""
    return opens(intent) and intent.cancel_first is None


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
        in the batch.
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
    waits: dict[int, tuple[int, ...]] = {}
    for i, intent in enumerate(intents):
        lane = lane_of(intent.symbol)
        lanes.setdefault(lane, []).append(i)
        if waits_for_margin(intent):
            before = tuple(j for other, j in last_freeing.items() if other != lane)
            if before:
                waits[i] = before
        if frees_margin(intent):
            last_freeing[lane] = i
    return LanePlan({k: tuple(v) for k, v in lanes.items()}, waits)


class LaneRunner:
    """Runs batches of intents on up to ``max_lanes`` threads, a symbol on one lane.

    Parameters
    ----------
    max_lanes : int
        ≥ 1. Symbols take lanes in the order they first appear, round robin.

    Notes
    -----
    A batch whose intents all fall on one lane runs on the caller's thread. An
    exception on a lane stops that lane (its later intents are not run), releases the
    intents waiting for it, and is raised by :meth:`run` after every lane has ended;
    the results of the lanes that did run are returned with it (see :class:`LaneError`).
    """

    def __init__(self, max_lanes: int) -> None:
        if max_lanes < 1:
            raise ValueError(f"max_lanes must be >= 1, got {max_lanes}")
        self.max_lanes = max_lanes
        self._lane_of: dict[str, int] = {}
        self._pool: ThreadPoolExecutor | None = None

    def lane_of(self, symbol: str) -> int:
        """The lane of ``symbol`` (assigned at its first appearance)."""
        lane = self._lane_of.get(symbol)
        if lane is None:
            lane = self._lane_of[symbol] = len(self._lane_of) % self.max_lanes
        return lane

    def run(self, intents: Sequence[OrderIntent],
            work: Callable[[int, int, OrderIntent], R]) -> list[R | None]:
        """Run ``work(lane, index, intent)`` for each intent of the batch.

        Returns
        -------
        list
            ``work``'s results in batch order.

        Raises
        ------
        LaneError
            When ``work`` raised on a lane; ``.results`` holds the results (None for
            the intents not run) and ``__cause__`` the first exception.
        """
        plan = plan_lanes(intents, self.lane_of)
        results: list[R | None] = [None] * len(intents)
        done = {j: threading.Event() for js in plan.waits.values() for j in js}
        errors: list[BaseException] = []

        def run_lane(lane: int, indices: tuple[int, ...]) -> None:
            try:
                for i in indices:
                    for j in plan.waits.get(i, ()):
                        done[j].wait()
                    if errors:  # another lane failed: stop at the next intent
                        return
                    results[i] = work(lane, i, intents[i])
                    if i in done:
                        done[i].set()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                errors.append(exc)
            finally:
                for i in indices:  # nobody waits forever on a stopped lane
                    if i in done:
                        done[i].set()

        if len(plan.lanes) <= 1:
            for lane, indices in plan.lanes.items():
                run_lane(lane, indices)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_lanes, thread_name_prefix="broker-lane")
            futures = [self._pool.submit(run_lane, lane, idx) for lane, idx in plan.lanes.items()]
            for f in futures:
                f.result()
        if errors:
            raise LaneError(results) from errors[0]
        return results

    def close(self) -> None:
        """Stop the lane threads (after the running batch)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class LaneError(RuntimeError):
    """A lane raised; ``results`` are the batch's results so far (None where not run)."""

    def __init__(self, results: list) -> None:
        super().__init__("a broker lane failed")
        self.results = results


__all__ = ["LaneError", "LanePlan", "LaneRunner", "frees_margin", "opens", "plan_lanes",
           "waits_for_margin"]
