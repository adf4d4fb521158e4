"""The command table read in insertion order whatever the ids, and bad rows skipped for
good: a poison row survives restarts of a flow with Bytewax recovery."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import run_main
from risk_helpers import BTC, atr_params, make_engine
from sqlalchemy import Column, Integer, MetaData, String, Table, inspect

from gridflow.chunks import JournalBatch
from gridflow.dataflows.command_source import CommandSource
from gridflow.dataflows.sinks import JournalSink
from gridflow.event_kinds import EventKind, Reason
from gridflow.events import AccountSummary, Command
from gridflow.journal.commands import (
    issue_command,
    last_command_id,
    last_command_seq,
    read_commands,
    register_commands,
)
from gridflow.journal.store import Journal, read_events

MAX_ID = 2**63 - 1
RUN = "cmd-rows"


def db(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "j.db"
    return f"sqlite:///{path}", path


def raw_insert(path: Path, *rows) -> None:
    """Rows ``(command_id, account, kind, payload, issued_at_ms, issued_by)`` written
    straight into the table by another writer (no seq)."""
    with sqlite3.connect(path) as con:
        con.executemany("INSERT INTO commands VALUES (?, ?, ?, ?, ?, ?)", rows)


def pause(cid: int, account: str = "t", symbol: str = BTC):
    return (cid, account, "pause", f'{{"symbol": "{symbol}"}}', 1, "raw")


def read_ids(url: str, after: int = 0) -> list[int]:
    return [r["command_id"] for r in read_commands(url, after)]


def test_ids_of_any_value_are_read_once_in_insertion_order(tmp_path) -> None:
    url, path = db(tmp_path)
    start = last_command_seq(url)
    a = issue_command(url, "t", "pause", {}, "u")
    raw_insert(path, pause(MAX_ID))  # SQLite now hands out random rowids
    b = issue_command(url, "t", "resume", {}, "u")
    raw_insert(path, pause(-7), pause(-(2**63)))  # one batch: read in id order
    raw_insert(path, pause(10**12))
    c = issue_command(url, "t", "flatten", {}, "u")
    d = issue_command(url, "t", "pause", {}, "u")
    assert b not in (a + 1, MAX_ID) and len({a, b, c, d}) == 4
    order = [a, MAX_ID, b, -(2**63), -7, 10**12, c, d]
    assert read_ids(url, start) == order
    seqs = [r["seq"] for r in read_commands(url, start)]
    assert seqs == list(range(start + 1, start + 9))
    # resuming after any of them reads exactly the rest
    for k, s in enumerate(seqs):
        assert read_ids(url, s) == order[k + 1:]
    assert read_commands(url, seqs[-1]) == []
    assert last_command_id(url) == MAX_ID  # the highest id, not the last one


def test_a_journal_with_the_old_commands_table_is_read(tmp_path) -> None:
    """A journal written before ``command_order`` existed: its rows are registered in
    id order on first use; a source built now reads only newer commands."""
    url, path = db(tmp_path)
    meta = MetaData()
    Table("commands", meta, Column("command_id", Integer, primary_key=True),
          Column("account", String), Column("kind", String), Column("payload", String),
          Column("issued_at_ms", Integer), Column("issued_by", String))
    from sqlalchemy import create_engine

    old = create_engine(url)
    meta.create_all(old)
    old.dispose()
    raw_insert(path, pause(3), pause(1), pause(40))
    assert read_ids(url) == [1, 3, 40]
    assert "command_order" in inspect(Journal(url).engine).get_table_names()
    src = CommandSource(url, {"t"})
    new = issue_command(url, "t", "resume", {}, "u")
    part = src.build_part("commands", "commands", None)
    assert [item[1].command_id for item in part.next_batch()] == [new]
    # a snapshot of the old source (the last id read) resumes after that id's seq
    part = src.build_part("commands", "commands", 3)
    assert [item[1].command_id for item in part.next_batch()] == [40, new]
    assert part.snapshot() == {"seq": 4}


def test_concurrent_writers_lose_no_command(tmp_path) -> None:
    """Four threads issue while another writes raw rows: every command is read once."""
    url, path = db(tmp_path)
    start = last_command_seq(url)
    ids: list[int] = []
    lock = threading.Lock()

    def issue(k: int) -> None:
        for j in range(15):
            cid = issue_command(url, f"a{k}", "pause", {}, "u")
            with lock:
                ids.append(cid)

    def foreign() -> None:
        for j in range(15):
            raw_insert(path, pause(-1000 - j))

    threads = [threading.Thread(target=issue, args=(k,)) for k in range(4)]
    threads.append(threading.Thread(target=foreign))
    got: list[int] = []
    after = start
    for t in threads:
        t.start()
    while True:  # poll while they write, then until nothing is left
        writing = any(t.is_alive() for t in threads)
        rows = read_commands(url, after, limit=7)
        got += [r["command_id"] for r in rows]
        after = rows[-1]["seq"] if rows else after
        if not rows and not writing:
            break
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids + [-1000 - j for j in range(15)])
    by_account = {}
    for r in read_commands(url, start):
        by_account.setdefault(r["account"], []).append(r["command_id"])
    for k in range(4):  # each writer's commands in the order it issued them
        assert by_account[f"a{k}"] == [i for i in ids if i in set(by_account[f"a{k}"])]


# ---------------------------------------------------- poison rows and Bytewax recovery
class _Engine:
    """The account engine step of the test flow: the real engine's command path, and a
    crash on each "crash" command the first time it is seen (a stand-in for anything
    that kills a flow); ``resume`` ends the run (a complete summary)."""

    def __init__(self, crashed: set[int]) -> None:
        self.crashed = crashed
        self.engine = make_engine(atr_params())

    def __call__(self, cmd: Command) -> JournalBatch:
        if cmd.args.symbol == "CRASH" and cmd.command_id not in self.crashed:
            self.crashed.add(cmd.command_id)
            raise RuntimeError(f"simulated crash at command {cmd.command_id}")
        out = self.engine.apply_command(cmd, 0)
        if cmd.kind == "resume":
            s = self.engine.summary().model_dump()
            out.summaries = [AccountSummary(**{**s, "complete": True})]
        return out


def poison_flow(url: str, seen: list, crashed: set[int]) -> Dataflow:
    flow = Dataflow("poison_commands")
    cmds = op.input("commands", flow, CommandSource(url, {"t"}, poll_s=0.005,
                                                    until_run_complete=RUN, limit=1))
    op.inspect("seen", cmds, lambda _step, item: seen.append(item))
    ok = op.filter_map("valid", cmds, lambda t: t[1] if t[0] == "command" else None)
    bad = op.filter_map("bad", cmds, lambda t: t[1] if t[0] == "rejected" else None)
    acks = op.map("engine", ok, _Engine(crashed))
    journal = op.key_on("key", op.merge("journal", bad, acks), lambda _b: "journal")
    op.output("out", journal, JournalSink(url, RUN))
    return flow


def _chain(exc: BaseException | None) -> str:
    """The messages of ``exc`` and its causes (Bytewax wraps a step's error)."""
    out = []
    while exc is not None:
        out.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return " | ".join(out)


def _id(item) -> int:
    kind, x = item
    return x.command_id if kind == "command" else x.events[0].detail["command_id"]


def test_poison_rows_survive_three_restarts_with_recovery(tmp_path) -> None:
    url, path = db(tmp_path)
    with Journal(url) as j:
        j.upsert_run(RUN, "h", "{}", "{}", "replay")
    rec = tmp_path / "recovery"
    rec.mkdir()
    init_db_dir(rec, 1)
    seen: list = []
    crashed: set[int] = set()
    flow = poison_flow(url, seen, crashed)  # built before the rows: they are new to it
    poison = {
        101: (101, "t", "reset_kill_switch", '{"reason": ["MAX_DRAWDOWN"]}', 1, "x"),
        102: (102, "t", "reset_kill_switch", '{"reason": {"a": 1}}', 1, "x"),
        103: (103, "t", "pause", "{not json", 1, "x"),
        104: (104, "t", "pause", b'{"symbol": "BTC/USDT"}', 1, "x"),
        105: (105, "t", "pause", "{}", "soon", "x"),
        106: (-106, "t", "pause", "{}", 1, "x"),
    }
    rows = [[poison[i] for i in range(101, 106)], [poison[106]], [pause(MAX_ID)]]
    fill = 200
    crash_ids = []
    for k in range(3):  # a few valid commands, then one that crashes the flow
        for _ in range(4):
            fill += 1
            rows.append([pause(fill)])
        fill += 1
        rows.append([pause(fill, symbol="CRASH")])
        crash_ids.append(fill)
    for group in rows:  # registered after each insert (as a poll would): read in this order
        raw_insert(path, *group)
        register_commands(url)
    end = issue_command(url, "t", "resume", {}, "u")  # a random id after MAX_ID
    runs = []
    for k in range(4):
        before = len(seen)
        if k < 3:
            with pytest.raises(Exception) as err:
                run_main(flow, epoch_interval=timedelta(0),
                         recovery_config=RecoveryConfig(str(rec)))
            assert f"simulated crash at command {crash_ids[k]}" in _chain(err.value)
        else:
            run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(rec)))
        runs.append([_id(item) for item in seen[before:]])
    assert crashed == set(crash_ids)
    bad_ids = [101, 102, 103, 104, 105]
    # the bad rows and the huge / negative ids were read in the first run only
    assert runs[0][:7] == [*bad_ids, -106, MAX_ID]
    assert all(i not in r for r in runs[1:] for i in [*bad_ids, -106, MAX_ID])
    assert runs[3][-1] == end
    events = read_events(url, RUN)
    acks = {}
    for e in events:
        if e["event_id"].startswith("command_ack:"):
            acks.setdefault(e["detail"]["command_id"], []).append(e)
    for cid in [*bad_ids, -106, MAX_ID, *range(201, fill + 1), end]:
        assert len(acks[cid]) == 1, cid  # acknowledged exactly once
    reasons = {cid: (acks[cid][0]["kind"], acks[cid][0]["reason"]) for cid in acks}
    rejected = EventKind.COMMAND_REJECTED
    assert reasons[101] == reasons[102] == (rejected, Reason.BAD_PAYLOAD)
    assert reasons[103] == reasons[104] == (rejected, Reason.BAD_PAYLOAD)
    assert reasons[105] == (rejected, Reason.BAD_COMMAND)
    assert "issued_at_ms" in acks[105][0]["detail"]["error"]
    assert "not JSON" in acks[103][0]["detail"]["error"]
    assert reasons[-106] == reasons[MAX_ID] == (EventKind.COMMAND_APPLIED, "pause")
    assert reasons[end] == (EventKind.COMMAND_APPLIED, "resume")
