"""Bytewax source feeding the broker sink's outcomes back to the live account engines.

A Bytewax dataflow has no cycles, so what the broker did with an intent (sent,
rejected, skipped, cancelled) travels back through the store, like commands do: one
partition polls the ``broker_outcomes`` table of the run and emits each terminal
:class:`~gridflow.events.OrderOutcome` once (its resume state is the set of intent ids
already emitted, so Bytewax recovery neither loses nor repeats one). After its first
read it emits an :class:`~gridflow.events.OutcomesReplayed` marker per account: from then
on a live engine started without recovery state knows every order the broker placed.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from gridflow.dataflows.db_poller import BackgroundReader, next_polls, outcomes_key
from gridflow.events import OrderOutcome, OutcomesReplayed

PART = "broker_outcomes"
TERMINAL = {"sent", "duplicate", "rejected", "failed", "canceled", "not_found", "skipped"}
SLACK_MS = 2_000
"""A poll reads the rows whose outcome time is at most this much before the newest one
seen: the broker stamps each outcome with the time it journals it
(:class:`~gridflow.dataflows.broker_sink.BrokerWriter`), so rows appear in time order;
the slack covers rows of one millisecond and small clock steps."""
FULL_READ_S = 300.0
"""Wall seconds between two reads of the whole table (the first read, and a safety net
for an outcome committed more than ``SLACK_MS`` after its time)."""


class _Partition(StatefulSourcePartition):
    def __init__(self, url: str, run_id: str, poll_s: float, done: set[str] | None,
                 until_complete: bool, accounts: tuple[str, ...] = (),
                 background: bool = False) -> None:
        from gridflow.journal.schema import open_store

        self.url = open_store(url)
        self.run_id = run_id
        self.poll_s = poll_s
        self.done = set(done or ())  # emitted (the resume state; the worker's)
        self.until = until_complete
        self._awake: datetime | None = None
        self._announce = tuple(accounts)  # the markers, after the first read
        self._seen = set(self.done)  # read (the reader's)
        self._busy = False  # the last read found outcomes (the reader's)
        self._newest: int | None = None  # newest outcome time seen (ms); None: read all
        self._next_full = 0.0  # time.monotonic() of the next whole-table read
        self._reader = BackgroundReader(self._poll, poll_s, "outcome-reader",
                                        wake_on=outcomes_key(run_id)) if background else None

    def _complete(self) -> bool:
        from gridflow.journal.store import read_summaries

        rows = read_summaries(self.url, self.run_id)
        return bool(rows) and all(r.get("complete") for r in rows)

    def _poll(self) -> tuple[list[OrderOutcome], bool]:
        """One read of the table: the terminal outcomes not read before, and whether the
        run was complete before the read."""
        from gridflow.journal.broker_rows import broker_ids, read_broker

        # the summaries are read only after a read that found nothing new: woken at each
        # of the broker's commits, a busy run is not complete
        finished = self.until and not self._busy and self._complete()
        now = time.monotonic()
        full = self._newest is None or now >= self._next_full
        if full:
            self._next_full = now + FULL_READ_S
            rows = read_broker(self.url, self.run_id, statuses=frozenset(TERMINAL))
        else:  # the ids of the last moments first; whole rows only of the new ones
            fresh = [i for i, _ in broker_ids(self.url, self.run_id,
                                                self._newest - SLACK_MS, frozenset(TERMINAL))
                     if i not in self._seen]
            rows = read_broker(self.url, self.run_id, intent_ids=fresh) if fresh else []
        out = []
        for row in rows:
            self._newest = max(self._newest or 0, int(row.get("ts_ms") or 0))
            if row["intent_id"] in self._seen:
                continue
            self._seen.add(row["intent_id"])
            faults = row.get("faults") or []
            if isinstance(faults, str):
                faults = json.loads(faults or "[]")
            out.append(OrderOutcome(
                intent_id=row["intent_id"], client_order_id=row["client_order_id"],
                action=row["action"], account=row["account"], symbol=row["symbol"],
                tag=row.get("tag") or "", status=row["status"],
                exchange_order_id=row.get("exchange_order_id") or "",
                attempts=int(row.get("attempts") or 0), error=row.get("error") or "",
                faults=list(faults), ts_ms=int(row.get("ts_ms") or 0)))
        self._busy = bool(out)
        return out, finished

    def next_batch(self) -> list[OrderOutcome | OutcomesReplayed]:
        polls, self._awake = next_polls(self._reader, self._poll, self.poll_s)
        if not polls:
            return []
        out: list[OrderOutcome | OutcomesReplayed] = []
        for outcomes, _ in polls:
            for o in outcomes:
                if o.intent_id not in self.done:
                    self.done.add(o.intent_id)
                    out.append(o)
        finished = polls[-1][1]
        if self._announce:
            out += [OutcomesReplayed(account=a) for a in self._announce]
            self._announce = ()
        elif finished and not out:
            raise StopIteration
        return out

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> set[str]:
        return set(self.done)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


class OutcomeSource(FixedPartitionedSource):
    """Terminal broker outcomes of run ``run_id`` from the journal at ``url``.

    Parameters
    ----------
    url : str
    run_id : str
    poll_s : float
        Seconds between polls.
    until_run_complete : bool
        End once every account summary of the run is ``complete`` (live runs with an
        ``end_ms``); False polls forever.
    accounts : iterable of str
        Accounts that get an :class:`~gridflow.events.OutcomesReplayed` marker after the
        first read.
    background : bool
        Read on a thread of its own (:class:`~gridflow.dataflows.db_poller.BackgroundReader`,
        woken at once by the broker sink of this process after each commit of outcomes;
        ``poll_s`` is then only the safety net), the worker only taking what was read;
        False reads in ``next_batch`` (one read per call, at most every ``poll_s``).
    """

    def __init__(self, url: str, run_id: str, poll_s: float = 0.5,
                 until_run_complete: bool = True, accounts=(), background: bool = False) -> None:
        self.url = url
        self.background = bool(background)
        self.run_id = run_id
        self.poll_s = float(poll_s)
        self.until = bool(until_run_complete)
        self.accounts = tuple(sorted(accounts))

    def list_parts(self) -> list[str]:
        return [PART]

    def build_part(self, step_id: str, for_part: str, resume_state) -> _Partition:
        return _Partition(self.url, self.run_id, self.poll_s, resume_state, self.until,
                          self.accounts, self.background)
