"""Bytewax source of control commands: polls the command table in id order.

One partition (``"commands"``) reads every new row after the last id it emitted (its
resume state, so Bytewax recovery neither loses nor repeats a command). Rows that are
not valid :class:`~gridflow.events.Command` objects, or name an account this flow does
not run, become ``command_rejected`` journal events with the reason; valid ones are
keyed by account for the account engine.

A replay's command partition ends once every account engine of the run has journaled a
``complete`` summary (all candles processed): the replay then finishes as usual. Live
flows pass ``until_run_complete=None`` and poll forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from pydantic import ValidationError

from gridflow.chunks import JournalBatch
from gridflow.event_kinds import EventKind, Reason
from gridflow.events import Command, JournalEvent
from gridflow.journal.commands import last_command_id, read_commands

PART = "commands"


def parse_command(row: dict, accounts: set[str]) -> tuple[str, Command | JournalBatch]:
    """``("command", Command)`` or ``("rejected", JournalBatch)`` for one table row."""
    cid = int(row["command_id"])
    account = str(row.get("account") or "")
    try:
        cmd = Command(command_id=cid, account=account, kind=row["kind"],
                      payload=row["payload"] or {}, issued_at_ms=int(row["issued_at_ms"]),
                      issued_by=row["issued_by"])
        if account not in accounts:
            reason, error = Reason.UNKNOWN_ACCOUNT, f"{account!r} not in {sorted(accounts)}"
        else:
            return "command", cmd
    except ValidationError as exc:
        reason = Reason.BAD_COMMAND
        error = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    ev = JournalEvent(
        event_id=f"command_ack:{account or '-'}:{cid}", kind=EventKind.COMMAND_REJECTED,
        reason=reason,
        ts_ms=0, account=account, detail={"command_id": cid, "kind": str(row.get("kind")),
                                          "payload": row.get("payload"), "error": error},
    )
    return "rejected", JournalBatch(events=[ev])


class _Partition(StatefulSourcePartition):
    def __init__(self, url: str, accounts: set[str], poll_s: float, after_id: int,
                 until_run_complete: str | None) -> None:
        from gridflow.journal.schema import open_store

        self.url = open_store(url)  # one SQLAlchemy engine for every poll
        self.accounts = accounts
        self.poll_s = poll_s
        self.after_id = after_id
        self.until = until_run_complete
        self._awake: datetime | None = None

    def _complete(self) -> bool:
        from gridflow.journal.store import read_summaries

        rows = read_summaries(self.url, self.until)
        done = {r["account"] for r in rows if r.get("complete")}
        return self.accounts <= done

    def next_batch(self) -> list:
        finished = self.until is not None and self._complete()
        rows = read_commands(self.url, self.after_id)
        out = []
        for row in rows:
            self.after_id = max(self.after_id, int(row["command_id"]))
            out.append(parse_command(row, self.accounts))
        if finished and not rows:
            raise StopIteration
        self._awake = datetime.now(timezone.utc) + timedelta(seconds=self.poll_s)
        return out

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int:
        return self.after_id


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

    Notes
    -----
    A fresh start reads only commands issued after the flow was built (older rows were
    meant for earlier runs); a resumed one continues after its snapshot.
    """

    def __init__(self, url: str, accounts, poll_s: float = 0.05,
                 until_run_complete: str | None = None) -> None:
        self.url = url
        self.accounts = set(accounts)
        self.poll_s = float(poll_s)
        self.until = until_run_complete
        self.start_after = last_command_id(url)

    def list_parts(self) -> list[str]:
        return [PART]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _Partition:
        after = self.start_after if resume_state is None else int(resume_state)
        return _Partition(self.url, self.accounts, self.poll_s, after, self.until)
