"""Bytewax source of control commands: polls the command table in insertion order.

One partition (``"commands"``) reads every command registered after the last ``seq``
it emitted (:mod:`gridflow.journal.commands`: ``seq`` orders commands whatever their
ids); its resume state is ``{"seq": last}``, so Bytewax recovery neither loses nor
repeats a command. Every row becomes exactly one item and never an exception
(:func:`parse_command`): a valid :class:`~gridflow.events.Command` for an account this
flow runs, keyed by account for the account engine, or else a ``command_rejected``
journal event with the reason and the error. The partition moves its state past each
row as it reads it, so a bad row is acknowledged once and skipped for good: it cannot
stop the flow, nor stop it again after a restart.

A replay's command partition ends once every account engine of the run has journaled a
``complete`` summary (all candles processed): the replay then finishes as usual. Live
flows pass ``until_run_complete=None`` and poll forever.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from pydantic import ValidationError

from gridflow.chunks import JournalBatch
from gridflow.command_payloads import error_text, json_object
from gridflow.dataflows.db_poller import BackgroundReader, next_polls, run_complete_key
from gridflow.event_kinds import EventKind, Reason
from gridflow.events import Command, JournalEvent
from gridflow.journal.busy import is_locked
from gridflow.journal.commands import last_command_seq, read_commands, seq_after_id

PART = "commands"
MAX_ERROR_CHARS = 500
"""Longest error text (and payload text) journaled with a rejected command."""
MAX_NAME_CHARS = 64
"""Longest account or command-id text in a rejection's event id."""
_FIELDS = ("command_id", "account", "kind", "payload", "issued_at_ms", "issued_by")
_INT64 = (-(2**63), 2**63 - 1)

log = logging.getLogger(__name__)


def _text(value: Any, limit: int) -> str:
    """``value`` as printable UTF-8 text of at most ``limit`` characters; never raises."""
    if isinstance(value, str):
        s = value[: limit + 1]
    elif isinstance(value, (bytes, bytearray)):
        s = repr(bytes(value[: limit + 1]))
    else:
        try:
            s = repr(value)
        except Exception:  # noqa: BLE001 (deep nesting, huge ints, a broken __repr__)
            s = f"<{type(value).__name__}>"
    s = s.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _id(value: Any) -> int | str:
    """The command id as journaled: the int, or text when it is not a 64-bit int."""
    ok = type(value) is int and _INT64[0] <= value <= _INT64[1]
    return value if ok else _text(value, MAX_NAME_CHARS)


def parse_command(row: dict[str, Any], accounts: set[str]
                  ) -> tuple[str, Command | JournalBatch]:
    """One command-table row as ``("command", Command)`` or ``("rejected", JournalBatch)``.

    Parameters
    ----------
    row : dict
        ``command_id``, ``account``, ``kind``, ``payload``, ``issued_at_ms``,
        ``issued_by`` as the table holds them (any types; missing keys are None): the
        payload a dict or the JSON text of one.
    accounts : set of str
        Accounts of this flow.

    Returns
    -------
    tuple
        ``("command", Command)`` for a valid command of one of ``accounts``; else
        ``("rejected", JournalBatch)`` with one ``command_rejected`` event (event id
        ``command_ack:{account}:{command_id}``, ``ts_ms`` 0), reason ``BAD_PAYLOAD``
        (only the payload is wrong), ``BAD_COMMAND`` (any other field) or
        ``UNKNOWN_ACCOUNT``, and ``detail`` = ``command_id``, ``kind``, ``payload``
        (the JSON object, else its text), ``error`` (at most
        :data:`MAX_ERROR_CHARS` characters).

    Never raises: every conversion happens inside :class:`Command`'s validation, and
    an error of a validator itself is a ``BAD_COMMAND`` too.
    """
    get = row.get
    try:
        cmd = Command.model_validate({k: get(k) for k in _FIELDS})
    except ValidationError as exc:
        fields = {e["loc"][0] if e["loc"] else "" for e in exc.errors()}
        reason = Reason.BAD_PAYLOAD if fields == {"payload"} else Reason.BAD_COMMAND
        error = error_text(exc, MAX_ERROR_CHARS)
    except Exception as exc:  # noqa: BLE001 (a validator's own failure must not stop the flow)
        reason = Reason.BAD_COMMAND
        error = _text(f"{type(exc).__name__}: {exc}", MAX_ERROR_CHARS)
    else:
        if cmd.account in accounts:
            return "command", cmd
        reason = Reason.UNKNOWN_ACCOUNT
        error = _text(f"{cmd.account!r} not in {sorted(accounts)}", MAX_ERROR_CHARS)
    return "rejected", JournalBatch(events=[rejection(row, reason, error)])


def rejection(row: dict[str, Any], reason: Reason, error: str) -> JournalEvent:
    """The ``command_rejected`` event of ``row`` (see :func:`parse_command`); every
    field is bounded text or a plain JSON value, so the journal can always write it."""
    raw = row.get("account")
    account = "" if raw is None or (isinstance(raw, str) and not raw) else _text(
        raw, MAX_NAME_CHARS)
    cid = _id(row.get("command_id"))
    try:
        payload: Any = json_object(row.get("payload"))
    except ValueError:
        payload = _text(row.get("payload"), MAX_ERROR_CHARS)
    return JournalEvent(
        event_id=f"command_ack:{account or '-'}:{cid}", kind=EventKind.COMMAND_REJECTED,
        reason=reason, ts_ms=0, account=account,
        detail={"command_id": cid, "kind": _text(row.get("kind"), MAX_NAME_CHARS),
                "payload": payload, "error": _text(error, MAX_ERROR_CHARS)},
    )


class _Partition(StatefulSourcePartition):
    def __init__(self, url: str, accounts: set[str], poll_s: float, after_seq: int,
                 until_run_complete: str | None, limit: int, background: bool = False) -> None:
        from gridflow.journal.schema import open_store

        self.url = open_store(url)  # one SQLAlchemy engine for every poll
        self.accounts = accounts
        self.poll_s = poll_s
        self.after_seq = after_seq  # emitted up to here (the resume state; the worker's)
        self._cursor = after_seq  # read up to here (the reader's)
        self.until = until_run_complete
        self.limit = limit
        self.rejected = 0
        self.locked_polls = 0
        self._awake: datetime | None = None
        wake = None if until_run_complete is None else run_complete_key(until_run_complete)
        self._reader = BackgroundReader(self._poll, poll_s, "command-reader", wake_on=wake) \
            if background else None

    def _complete(self) -> bool:
        from gridflow.journal.store import complete_accounts

        return self.accounts <= complete_accounts(self.url, self.until)

    def _poll(self) -> tuple[list[dict[str, Any]], bool]:
        """One read: the rows after the last one read, and whether the run was complete
        before it (nothing, not complete, when another writer holds the lock)."""
        try:
            finished = self.until is not None and self._complete()
            rows = read_commands(self.url, self._cursor, self.limit)
        except Exception as exc:
            if not is_locked(exc):
                raise
            self.locked_polls += 1  # another writer holds the lock: poll again later
            if self.locked_polls == 1 or self.locked_polls % 100 == 0:
                log.warning("command source: database locked (%d polls so far): %s",
                            self.locked_polls, exc)
            return [], False
        if rows:
            self._cursor = int(rows[-1]["seq"])
        return rows, finished

    def next_batch(self) -> list:
        polls, self._awake = next_polls(self._reader, self._poll, self.poll_s)
        if not polls:
            return []
        out = []
        for rows, _ in polls:
            for row in rows:
                self.after_seq = int(row["seq"])  # past the row before looking at it
                item = parse_command(row, self.accounts)
                if item[0] == "rejected":
                    self.rejected += 1
                    ev = item[1].events[0]
                    log.warning("command %s rejected: %s %s", ev.detail["command_id"],
                                ev.reason, ev.detail["error"])
                out.append(item)
        if polls[-1][1] and not out:
            raise StopIteration
        return out

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> dict[str, int]:
        return {"seq": self.after_seq}

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


class CommandSource(FixedPartitionedSource):
    """Commands for ``accounts`` from the journal at ``url``.

    Parameters
    ----------
    url : str
        Journal (and command table) URL.
    accounts : iterable of str
        Accounts this flow runs; commands for others are rejected (``UNKNOWN_ACCOUNT``).
    poll_s : float
        Seconds between polls (the command round trip is about this plus one engine
        batch).
    until_run_complete : str or None
        Run id whose completion ends the source (replays); None polls forever (live).
    limit : int
        Most rows read per poll (one Bytewax batch).
    background : bool
        Poll on a thread of its own (:class:`~gridflow.dataflows.db_poller.BackgroundReader`),
        the worker only taking what was read: a slow or locked journal never holds up
        the flow's other inputs. False polls in ``next_batch``.

    Notes
    -----
    A fresh start reads only commands issued after the flow was built (older rows were
    meant for earlier runs); a resumed one continues after its snapshot. A snapshot of
    a version that kept the last command id (a bare int) resumes after that id's
    ``seq``. A poll that finds the database locked reads nothing and polls again.
    """

    def __init__(self, url: str, accounts, poll_s: float = 0.05,
                 until_run_complete: str | None = None, limit: int = 1000,
                 background: bool = False) -> None:
        self.url = url
        self.background = bool(background)
        self.accounts = set(accounts)
        self.poll_s = float(poll_s)
        self.until = until_run_complete
        self.limit = int(limit)
        self.start_after = last_command_seq(url)

    def list_parts(self) -> list[str]:
        return [PART]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: dict[str, int] | int | None) -> _Partition:
        if resume_state is None:
            after = self.start_after
        elif isinstance(resume_state, dict):
            after = int(resume_state["seq"])
        else:  # the last command id, as snapshotted before commands had a seq
            after = seq_after_id(self.url, int(resume_state))
        return _Partition(self.url, self.accounts, self.poll_s, after, self.until,
                          self.limit, self.background)
