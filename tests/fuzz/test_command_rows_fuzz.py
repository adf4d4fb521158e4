"""Fuzz of command rows: any row becomes a valid Command or a journaled rejection with a
reason, never an exception; a valid command goes through a real engine and every
resulting event is written to a real journal."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from risk_helpers import BTC, atr_params, make_engine

from gridflow.chunks import JournalBatch
from gridflow.command_payloads import MAX_PAYLOAD_CHARS, MAX_PAYLOAD_DEPTH
from gridflow.dataflows.command_source import MAX_ERROR_CHARS, parse_command
from gridflow.event_kinds import CommandKind, EventKind, Reason
from gridflow.events import Command
from gridflow.journal.commands import read_commands
from gridflow.journal.store import Journal, read_events

ACCOUNTS = {"t"}
EXAMPLES = 3000
I64 = 2**63

# ---------------------------------------------------------------- row strategies
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                        st.text(max_size=20))
json_value = st.recursive(json_scalar, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=12)
odd = st.one_of(st.binary(max_size=20), st.tuples(st.integers()), st.sets(st.integers()),
                st.just(object()), st.complex_numbers(), st.just(float("nan")))
name = st.one_of(st.just(BTC), st.just("MAX_DRAWDOWN"), st.just("NOPE"),
                 st.text(max_size=80), json_value, odd)
payload_dict = st.one_of(
    st.fixed_dictionaries({}, optional={"reason": name}),
    st.fixed_dictionaries({}, optional={"symbol": name}),
    st.fixed_dictionaries({"params": st.one_of(
        st.dictionaries(st.sampled_from(["side", "levels", "sl_frac", "atr_start", "x"]),
                        json_value, max_size=3), json_value)},
        optional={"symbol": name, "strategy": st.one_of(st.integers(-2, 3), json_value)}),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.none()),
                    st.one_of(json_value, odd), max_size=4),
)


def deep(n: int):
    v: object = 1
    for _ in range(n):
        v = {"a": v} if n % 2 else [v]
    return v


payload = st.one_of(
    payload_dict,
    payload_dict.map(lambda d: json.dumps(d, default=repr)),  # the table's JSON text
    json_value,
    json_value.map(lambda v: json.dumps(v)),
    st.text(max_size=40), st.binary(max_size=40), odd,
    st.integers(0, 3 * MAX_PAYLOAD_DEPTH).map(deep),
    st.integers(0, 3 * MAX_PAYLOAD_DEPTH).map(lambda n: json.dumps(deep(n))),
    st.just("[" * 100_000), st.just({"reason": "x" * (2 * MAX_PAYLOAD_CHARS)}),
)
#: Any value of each column (the table is SQLite's: another writer may store anything).
WILD = {
    "command_id": st.one_of(st.integers(), st.sampled_from([I64, -I64 - 1, 2**200]),
                            st.booleans(), st.floats(), st.text(max_size=5), st.none()),
    "account": st.one_of(st.just(""), st.just("other"), st.text(max_size=300),
                         st.binary(max_size=8), st.integers(), st.none(),
                         st.just("\ud800lone")),
    "kind": st.one_of(st.text(max_size=20), st.none(), st.integers(), st.binary(max_size=8)),
    "payload": payload,
    "issued_at_ms": st.one_of(st.integers(), st.sampled_from([-1, I64]), st.floats(),
                              st.text(max_size=8), st.binary(max_size=8), st.none(),
                              st.booleans()),
    "issued_by": st.one_of(st.just(""), st.text(max_size=300), st.binary(max_size=8),
                           st.integers(), st.none()),
}


symbol = st.fixed_dictionaries({}, optional={"symbol": st.sampled_from([BTC, "NOPE/USDT"])})
#: Payloads of each kind's shape (the engine applies or rejects them on its own rules).
PLAUSIBLE = {
    CommandKind.RESET_KILL_SWITCH: st.fixed_dictionaries({}, optional={"reason": st.sampled_from(
        ["MAX_DRAWDOWN", "DAILY_LOSS", "SESSION_LOSS_GRID", "NOPE"])}),
    CommandKind.PAUSE: symbol, CommandKind.RESUME: symbol, CommandKind.FLATTEN: symbol,
    CommandKind.SET_PARAMS: st.fixed_dictionaries({"params": st.fixed_dictionaries({}, optional={
        "side": st.sampled_from(["long", "short"]), "levels": st.integers(1, 3),
        "sl_frac": st.floats(0.01, 0.9), "atr_start": st.floats(0, 5)}).filter(bool)},
        optional={"strategy": st.integers(-1, 2)}),
}


@st.composite
def rows(draw) -> dict:
    """A plausible row (any id, a known kind, a payload of that kind's shape or any
    payload), then each column, with probability 1/10, replaced by anything at all."""
    kind = draw(st.sampled_from(list(CommandKind)))
    r = {"command_id": draw(st.one_of(st.integers(-I64, I64 - 1),
                                      st.sampled_from([0, -1, I64 - 1, -I64]))),
         "account": "t", "kind": kind, "payload": draw(st.one_of(PLAUSIBLE[kind], payload)),
         "issued_at_ms": draw(st.integers(0, I64 - 1)), "issued_by": "ops"}
    for field, wild in WILD.items():
        if draw(st.integers(0, 9)) == 0:
            r[field] = draw(wild)
    return r


# ---------------------------------------------------------------- the checks
REJECT_REASONS = {Reason.BAD_COMMAND, Reason.BAD_PAYLOAD, Reason.UNKNOWN_ACCOUNT}


@pytest.fixture(scope="module")
def world():
    """One real engine and one real (in-memory SQLite) journal for every example."""
    journal = Journal("sqlite://")
    journal.upsert_run("fuzz", "h", "{}", "{}", "replay")
    return {"engine": make_engine(atr_params()), "journal": journal, "n": 0,
            "verdicts": {}}


def check_row(world, row: dict) -> tuple[str, str]:
    """parse -> (engine) -> journal, asserting every rule; returns (kind, reason)."""
    tag, out = parse_command(row, ACCOUNTS)
    if tag == "command":
        assert isinstance(out, Command) and out.account == "t"
        assert json.loads(json.dumps(out.payload, allow_nan=False)) == out.payload
        batch = world["engine"].apply_command(out, 0)  # the engine never raises either
        (ack,) = [e for e in batch.events if e.event_id.startswith("command_ack:")]
        assert ack.event_id == f"command_ack:t:{out.command_id}"
    else:
        assert tag == "rejected" and isinstance(out, JournalBatch)
        (ack,) = out.events
        batch = out
        assert ack.kind == EventKind.COMMAND_REJECTED and ack.reason in REJECT_REASONS
        assert ack.detail["error"] and len(ack.detail["error"]) <= MAX_ERROR_CHARS
        json.dumps(ack.detail, allow_nan=False)  # plain JSON: PostgreSQL takes it too
        assert ack.event_id.startswith("command_ack:") and len(ack.event_id) < 200
    for e in batch.events:
        e.event_id.encode("utf-8")  # no lone surrogate reaches the database
        e.account.encode("utf-8")
    world["journal"].write("fuzz", batch)
    return ack.kind, ack.reason


def test_any_row_is_a_command_or_a_rejection_with_a_reason(world) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(row=rows())
    def run(row: dict) -> None:
        world["n"] += 1
        verdict = check_row(world, row)
        world["verdicts"][verdict] = world["verdicts"].get(verdict, 0) + 1

    run()
    print(f"{world['n']} rows: {sorted(world['verdicts'].items())}")
    assert world["n"] >= EXAMPLES
    kinds = {k for k, _ in world["verdicts"]}
    # the fuzz reached both outcomes, and the engine saw valid commands
    assert kinds == {EventKind.COMMAND_APPLIED, EventKind.COMMAND_REJECTED}
    assert {r for _, r in world["verdicts"]} >= REJECT_REASONS


# ---------------------------------------------------------------- the hand cases
def row(**kw) -> dict:
    base = {"command_id": 5, "account": "t", "kind": "pause", "payload": {},
            "issued_at_ms": 1_700_000_000_000, "issued_by": "ops"}
    return {**base, **kw}


R, P, C = "reset_kill_switch", Reason.BAD_PAYLOAD, Reason.BAD_COMMAND
HAND = [
    # (row, expected reason of the source's rejection, or the engine's ack reason)
    (row(kind=R, payload={"reason": ["MAX_DRAWDOWN"]}), P),
    (row(kind=R, payload={"reason": {"a": 1}}), P),
    (row(kind=R, payload='{"reason": ["MAX_DRAWDOWN"]}'), P),
    (row(kind=R, payload={"reason": "X" * 65}), P),
    (row(kind=R, payload={"reason": "NOPE"}), Reason.UNKNOWN_REASON),
    (row(kind=R, payload={"reason": "MAX_DRAWDOWN"}), R),
    (row(payload="{not json"), P),
    (row(payload=b'{"symbol": "BTC/USDT"}'), P),
    (row(payload=bytearray(b"\xff\x00")), P),
    (row(payload="[1, 2]"), P),
    (row(payload="42"), P),
    (row(payload=[1]), P),
    (row(payload='{"symbol": NaN}'), P),
    (row(payload={"symbol": math.inf}), P),
    (row(payload=json.dumps(deep(MAX_PAYLOAD_DEPTH + 1))), P),
    (row(payload="[" * 100_000), P),
    (row(payload={"symbol": BTC, "x": "y" * MAX_PAYLOAD_CHARS}), P),
    (row(payload={"symbol": 42}), P),
    (row(payload={"symbol": BTC, "extra": 1}), P),
    (row(payload={1: "a"}), P),
    (row(payload={"symbol": b"BTC"}), P),
    (row(payload='{"symbol": "BTC/USDT"}'), "pause"),
    (row(payload=None), "pause"),
    (row(payload={"symbol": "NOPE/USDT"}), Reason.UNKNOWN_SYMBOL),
    (row(issued_at_ms="soon"), C),
    (row(issued_at_ms="1700000000000"), C),
    (row(issued_at_ms=1.5), C),
    (row(issued_at_ms=None), C),
    (row(issued_at_ms=-1), C),
    (row(issued_at_ms=I64), C),
    (row(issued_at_ms=True), C),
    (row(command_id=I64 - 1), "pause"),
    (row(command_id=-7), "pause"),
    (row(command_id=-I64), "pause"),
    (row(command_id=I64), C),
    (row(command_id="5"), C),
    (row(command_id=None), C),
    (row(kind="explode"), C),
    (row(kind=None), C),
    (row(kind="explode", payload="{not json"), C),
    (row(account=""), C),
    (row(account=None), C),
    (row(account=b"t"), C),
    (row(account="nobody"), Reason.UNKNOWN_ACCOUNT),
    (row(account="\ud800"), C),  # not valid Unicode text
    (row(issued_by=None), C),
    (row(issued_by=""), C),
    (row(kind="set_params", payload={"params": {}}), P),
    (row(kind="set_params", payload={"params": [1]}), P),
    (row(kind="set_params", payload={}), P),
    (row(kind="set_params", payload={"params": {"side": "short"}, "strategy": -1}), P),
    (row(kind="set_params", payload={"params": {"side": "short"}, "strategy": "0"}), P),
    (row(kind="set_params", payload={"params": {"side": "short"}, "strategy": True}), P),
    (row(kind="set_params", payload={"params": {"side": "short"}, "strategy": 3}), P),
    (row(kind="set_params", payload={"params": {"levels": "many"}}), Reason.INVALID_PARAMS),
    (row(kind="set_params", payload={"params": {"side": "short"}}), "set_params"),
    (row(kind="flatten", payload={"symbol": None}), "flatten"),
    (row(kind="resume", payload='{"symbol": "BTC/USDT"}'), "resume"),
]


@pytest.mark.parametrize("case,expected", HAND, ids=[f"{i}" for i in range(len(HAND))])
def test_hand_cases(world, case, expected) -> None:
    assert check_row(world, case)[1] == expected


def test_rows_stored_by_another_writer_read_back_and_parse(tmp_path) -> None:
    """The hand cases SQLite can hold, written straight into a real journal's table
    and read by :func:`read_commands`: each row read once; a row SQLite stored as given
    (no type affinity conversion) gets its hand verdict."""
    url = f"sqlite:///{tmp_path / 'j.db'}"
    read_commands(url, 0)  # creates the tables
    stored = {}
    with sqlite3.connect(tmp_path / "j.db") as con:
        for k, (case, _expected) in enumerate(HAND):
            r = {**case, "command_id": 1000 + k}
            p = r["payload"]
            if isinstance(p, (dict, list)):
                try:
                    p = json.dumps(p)
                except (TypeError, ValueError):
                    continue
            try:
                con.execute("INSERT INTO commands VALUES (?, ?, ?, ?, ?, ?)",
                            [r[f] for f in ("command_id", "account", "kind")] + [p] +
                            [r["issued_at_ms"], r["issued_by"]])
            except (sqlite3.Error, ValueError, TypeError, OverflowError, UnicodeError):
                continue  # NOT NULL, a surrogate, an int too large: SQLite refuses it
            stored[1000 + k] = k
    assert len(stored) > 30
    journal = Journal(url)
    journal.upsert_run("r", "h", "{}", "{}", "replay")
    got = []
    for r in read_commands(url, 0):
        tag, out = parse_command(r, ACCOUNTS)
        batch = out if tag == "rejected" else make_engine(atr_params()).apply_command(out, 0)
        journal.write("r", batch)
        got.append(r["command_id"])
        case, expected = HAND[stored[r["command_id"]]]
        same = all(type(r[f]) is type(case[f]) and r[f] == case[f]
                   for f in ("account", "kind", "issued_at_ms", "issued_by"))
        if same and case["command_id"] == 5:  # (the id is the row's own here)
            assert batch.events[0].reason == expected, case
    journal.close()
    assert sorted(got) == sorted(stored)
    assert len(read_events(url, "r")) >= len(stored)
