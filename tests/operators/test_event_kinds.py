"""The journal's vocabulary is the enums of :mod:`gridflow.event_kinds`: no event kind,
reason code or order state is a bare string literal in gridflow any more, and every
enum value is the string journaled before the enums existed."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

import gridflow
from gridflow.chunks import JournalBatch
from gridflow.event_kinds import (
    ORDER_OUTCOME_KINDS,
    CommandKind,
    EventKind,
    ExitReason,
    Reason,
    RecordAlertKind,
)
from gridflow.events import Command, JournalEvent
from gridflow.operators import alerts
from gridflow.operators.engine_decode import EXIT_REASONS
from gridflow.operators.order_state import OrderState
from gridflow.operators.risk import DENY_REASONS, KILL_SWITCH_REASONS
from gridflow.operators.validation import REASONS

PACKAGE = Path(gridflow.__file__).resolve().parent

#: The strings journaled before the enums (kinds, reasons, exit reasons, commands), and
#: the ones added since (``no_candles`` / ``NO_VALID_CANDLES``; the websocket streams'
#: ``stream_stale`` / ``stream_restored`` and their reasons).
KINDS_BEFORE = [
    "candle_rejected", "data_gap", "price_reanchored", "order_denied", "kill_switch_tripped", "kill_switch_reset",
    "funding", "no_candles", "command_applied", "command_rejected", "engine_started", "kill_switch_restored",
    "position_adopted", "exchange_error", "stream_stale", "stream_restored", "orphan_fill", "fill_inconsistent", "slippage",
    "dust_position", "stop_missing", "stop_not_filled", "order_rejected", "order_failed", "order_vanished",
    "order_rebuilt", "order_superseded", "orphan_order", "orphan_position", "position_mismatch",
    "equity_drift", "heartbeat", "daily_heartbeat", "data_stale", "data_fresh",
    "exchange_error_rate", "shutdown"]
REASONS_BEFORE = [
    "MALFORMED_ROW", "TS_OUT_OF_RANGE", "NON_POSITIVE_PRICE", "IMPLAUSIBLE_PRICE",
    "NEGATIVE_VOLUME", "HIGH_BELOW_BODY", "LOW_ABOVE_BODY", "MISALIGNED_TS", "DUPLICATE_TS",
    "OUT_OF_ORDER", "PRICE_JUMP", "NO_VALID_CANDLES", "MISSING_CANDLES", "SETTLEMENT",
    "KILL_SWITCH", "MIN_NOTIONAL", "MAX_MARGIN_RATIO", "NO_EQUITY", "BAD_PRICE", "COOLDOWN",
    "MAX_OPEN_POSITIONS", "CORRELATION", "PAUSED", "DAILY_ENTRIES", "SYMBOL_EXPOSURE", "SESSION_LOSS_GRID",
    "SESSION_LOSS_SINGLE", "DAILY_LOSS", "ROLLING_DRAWDOWN", "MAX_DRAWDOWN", "UNKNOWN_ACCOUNT",
    "UNKNOWN_SYMBOL", "UNKNOWN_REASON", "UNKNOWN_KIND", "BAD_COMMAND", "BAD_PAYLOAD", "AMBIGUOUS",
    "INVALID_PARAMS", "INDICATORS_CHANGED", "TOO_MANY_LEVELS", "LIVE", "EXCHANGE_POSITION",
    "POLL_FAILED", "DISCONNECTED", "SILENT", "MISSED_FILLS", "CAUGHT_UP", "UNKNOWN_ORDER", "ENTRY_AGAINST_POSITION", "EXIT_WITHOUT_POSITION",
    "BELOW_MIN_AMOUNT", "NO_LIVE_STOP", "REJECTED", "FAILED", "NOT_OPEN", "WRITE_AHEAD_TABLE",
    "GRIDFLOW_ID", "FOREIGN", "NOT_TRADED_BY_ACCOUNT", "EXCHANGE_DIFFERS", "ALIVE",
    "SCHEDULED", "NO_CLOSED_CANDLE", "CANDLES_BACK", "ERRORS_OVER_RATE", "SIGNAL", "CLEAN",
    "UNCLEAN", "PRICE_THROUGH_LIMIT", "STOP_CROSSED"]

#: Calls that make a journal event or an alert, and where their kind / reason go:
#: (positional index of kind, positional index of reason); None = keyword only.
EMITTERS = {"JournalEvent": (None, None), "Alert": (None, None), "event": (1, 2),
            "Rejected": (None, 0), "adopt": (None, 4)}


def _callee(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _literal(node: ast.AST) -> bool:
    """A string literal, an f-string or a concatenation with one (``"order_" + s``)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _literal(node.left) or _literal(node.right)
    if isinstance(node, ast.IfExp):
        return _literal(node.body) or _literal(node.orelse)
    return False


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE.parent), ast.parse(path.read_text(), str(path))


def test_no_kind_or_reason_is_a_string_literal():
    found = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _callee(node) not in EMITTERS:
                continue
            k_pos, r_pos = EMITTERS[_callee(node)]
            args = [kw.value for kw in node.keywords if kw.arg in ("kind", "reason")]
            args += [node.args[i] for i in (k_pos, r_pos) if i is not None and i < len(node.args)]
            found += [f"{rel}:{a.lineno} {ast.unparse(a)}" for a in args if _literal(a)]
    assert not found


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


def test_no_kind_reason_or_order_state_is_compared_with_a_string_literal():
    vocabulary = {m.value for e in (EventKind, Reason, ExitReason, CommandKind, OrderState,
                                    RecordAlertKind) for m in e}
    found = []
    for rel, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            named = any(
                (isinstance(s, ast.Attribute) and s.attr in ("kind", "reason", "state",
                                                            "exit_reason"))
                or (isinstance(s, ast.Subscript) and isinstance(s.slice, ast.Constant)
                    and s.slice.value in ("kind", "reason"))
                for s in sides)
            lits = [s for s in sides if _literal(s) or (
                isinstance(s, ast.Tuple | ast.Set | ast.List) and any(map(_literal, s.elts)))]
            # other vocabularies ("sweep" / "wfo", the app's form kinds) are not checked
            if named and any(_strings(s) & vocabulary for s in lits):
                found.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
    assert not found


def test_the_enum_values_are_the_strings_journaled_before():
    assert [k.value for k in EventKind] == KINDS_BEFORE
    assert [r.value for r in Reason] == REASONS_BEFORE
    assert [e.value for e in ExitReason] == ["TP", "SL", "TRAIL", "FLIP", "FLATTEN", "TIME",
                                                  "SIGNAL", "CLOSE"]
    assert [c.value for c in CommandKind] == ["reset_kill_switch", "pause", "resume",
                                              "set_params", "flatten"]
    assert EventKind.ORDER_DENIED == "order_denied" and f"{EventKind.ORDER_DENIED}:x" \
        == "order_denied:x"


def test_every_code_of_the_kernel_and_the_validator_is_a_member():
    assert {Reason(v) for v in DENY_REASONS.values()} <= set(Reason)
    assert {Reason(v) for v in KILL_SWITCH_REASONS.values()} <= set(Reason)
    assert all(isinstance(r, Reason) for r in REASONS)
    assert all(isinstance(r, ExitReason) for r in EXIT_REASONS.values())
    assert set(ORDER_OUTCOME_KINDS.values()) == {EventKind.ORDER_REJECTED,
                                                 EventKind.ORDER_FAILED}


def test_records_keep_plain_strings():
    ev = JournalEvent(event_id="x", kind=EventKind.DATA_GAP, reason=Reason.MISSING_CANDLES,
                      ts_ms=0)
    assert type(ev.kind) is str and type(ev.reason) is str
    assert ev.model_dump_json() == JournalEvent(event_id="x", kind="data_gap",
                                                reason="MISSING_CANDLES",
                                                ts_ms=0).model_dump_json()
    cmd = Command(command_id=1, account="a", kind="pause", issued_at_ms=0, issued_by="u")
    assert cmd.kind is CommandKind.PAUSE and cmd.model_dump_json().count('"pause"') == 1


def test_every_alerted_kind_is_an_alert_kind():
    builders = set(alerts._EVENT_BUILDERS)
    assert builders <= set(EventKind)
    assert set(get_args(alerts.AlertKind)) == builders | set(RecordAlertKind)


@pytest.mark.parametrize("kind", sorted(alerts._EVENT_BUILDERS))
def test_every_alerted_event_gives_an_alert(kind):
    ev = JournalEvent(event_id=f"{kind}:a:1", kind=kind, reason="X", ts_ms=3_600_000,
                      account="a", symbol="BTC/USDT")
    (alert,) = alerts.alerts_from_batch(JournalBatch(events=[ev]))
    assert alert.kind == kind
