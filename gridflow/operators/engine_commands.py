"""Control commands applied to an account engine (pure: engine state in, records out).

A :class:`~gridflow.events.Command` arrives valid for its kind (its payload passed the
kind's model in :mod:`gridflow.command_payloads`: known keys of the right types); what
depends on the engine (traded symbols, kill-switch names, strategy parameters) is
checked here.

Every command is acknowledged in the journal: ``command_applied`` or ``command_rejected``
with a stable reason code and the numbers or fields behind it. Commands act at the
engine's current event time (the close of the last candle it processed): ``pause`` and
``flatten`` from the next candle, ``set_params`` from the next candle's decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gridflow.chunks import JournalBatch
from gridflow.config.renamed import renamed_keys
from gridflow.event_kinds import CommandKind, EventKind, Reason
from gridflow.events import Command, JournalEvent
from gridflow.operators import kernel_layout as kl
from gridflow.operators.risk import (
    KILL_SWITCH_REASONS,
    KS_ALL,
    KS_DAILY,
    KS_MAX_DD,
    KS_ROLLING_DD,
    KS_SESSION_GRID,
    KS_SESSION_SINGLE,
    kill_switch_names,
)
from gridflow.operators.strategies import strategy_indicators

if TYPE_CHECKING:  # pragma: no cover
    from gridflow.operators.engine import AccountEngine


class Rejected(Exception):
    """A command that cannot be applied; ``code`` is the journaled reason."""

    def __init__(self, code: Reason, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def _symbols(eng: "AccountEngine", payload: dict[str, Any]) -> list[str]:
    sym = payload.get("symbol")
    if sym is None:
        return list(eng.symbols)
    if not isinstance(sym, str) or sym not in eng.index:
        raise Rejected(Reason.UNKNOWN_SYMBOL, f"{sym!r} is not traded by {eng.account.name}")
    return [sym]


def _reset(eng: "AccountEngine", cmd: Command, ts_ms: int, out: JournalBatch) -> dict:
    st = eng.state
    names = {v: k for k, v in KILL_SWITCH_REASONS.items()}
    reason = cmd.args.reason
    if reason is not None and reason not in names:
        raise Rejected(Reason.UNKNOWN_REASON, f"{reason!r}; one of {sorted(names)}")
    mask = int(st.ai[kl.AI_KILL])
    bits = names[reason] if reason is not None else KS_ALL
    cleared = mask & bits
    st.ai[kl.AI_KILL] = mask & ~bits
    equity = eng.equity()
    # restart what each cleared switch measures so it does not trip again at once
    if cleared & (KS_SESSION_GRID | KS_SESSION_SINGLE):
        st.sf[:, kl.SF_SESSION_PNL] = 0.0
    if cleared & KS_MAX_DD:
        st.af[kl.AF_PEAK] = equity
    if cleared & KS_ROLLING_DD:
        st.rw_ts[:] = -1
    if cleared & KS_DAILY:
        st.af[kl.AF_DAY_START] = equity
    for name in kill_switch_names(cleared):
        seq = eng.next_seq()
        eng.counters["kill_switch_resets"] += 1
        out.events.append(JournalEvent(
            event_id=f"{EventKind.KILL_SWITCH_RESET}:{eng.account.name}:{seq}",
            kind=EventKind.KILL_SWITCH_RESET, reason=Reason(name), ts_ms=ts_ms,
            account=eng.account.name, seq=seq,
            detail={"equity": equity, "by": cmd.issued_by, "command_id": cmd.command_id},
        ))
    return {"cleared": kill_switch_names(cleared), "still_on": kill_switch_names(mask & ~bits)}


def _pause(eng: "AccountEngine", cmd: Command, on: bool) -> dict:
    st = eng.state
    if cmd.args.symbol is None:
        st.ai[kl.AI_PAUSED] = int(on)
        return {"scope": "account", "paused": on}
    (sym,) = _symbols(eng, cmd.payload)
    st.si[eng.index[sym], kl.SI_PAUSED] = int(on)
    return {"scope": sym, "paused": on}


def _flatten(eng: "AccountEngine", cmd: Command) -> dict:
    syms = _symbols(eng, cmd.payload)
    for sym in syms:
        eng.state.si[eng.index[sym], kl.SI_FLATTEN] = 1
    open_ = [s for s in syms if eng.state.sf[eng.index[s], kl.SF_AMT] > 0]
    return {"symbols": syms, "closing_at_next_open": open_}


def _set_params(eng: "AccountEngine", cmd: Command) -> dict:
    params = cmd.args.params  # a non-empty object (gridflow.command_payloads)
    try:  # deprecated names (sl_pct) under their new ones
        params = renamed_keys(params, "set_params")
    except ValueError as exc:
        raise Rejected(Reason.BAD_PAYLOAD, str(exc)) from None
    bad = {"name", "symbols", "overrides"} & set(params)
    if bad:
        raise Rejected(Reason.BAD_PAYLOAD, f"{sorted(bad)} cannot be changed live")
    if cmd.payload.get("symbol") is not None:
        syms = _symbols(eng, cmd.payload)
    else:
        idx = cmd.args.strategy  # an int >= 0 or None
        n = len(eng.account.strategies)
        if idx is None and n > 1:
            raise Rejected(Reason.AMBIGUOUS, "several strategies: give symbol or strategy index")
        if idx is not None and idx >= n:
            raise Rejected(Reason.BAD_PAYLOAD, f"strategy index {idx!r} (0..{n - 1})")
        syms = [s for s in eng.symbols if eng.strategy_index[s] == (idx or 0)]
    changes: dict[str, dict] = {}
    new_params = {}
    for sym in syms:
        old = eng.params[sym]
        doc = old.model_dump()
        doc.update(params)
        doc["overrides"] = {}
        try:
            new = type(old).model_validate(doc)
        except ValidationError as exc:
            errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise Rejected(Reason.INVALID_PARAMS, errs) from None
        if strategy_indicators(eng.account, new) != strategy_indicators(eng.account, old):
            raise Rejected(Reason.INDICATORS_CHANGED,
                           "indicator periods are fixed for a running flow; restart to change")
        if new.levels_count > eng.levels:
            raise Rejected(Reason.TOO_MANY_LEVELS, f"{new.levels_count} > {eng.levels} at start")
        new_params[sym] = new
        changes[sym] = {k: [doc_old, getattr(new, k)] for k in params
                        for doc_old in [getattr(old, k)] if getattr(new, k) != doc_old}
    for sym, new in new_params.items():
        i = eng.index[sym]
        eng.params[sym] = new
        eng.mp[i, kl.M_SL] = new.sl_frac
        eng.mp[i, kl.M_GRID] = 1.0 if new.is_grid else 0.0
        eng.mp[i, kl.M_LEVELS] = new.levels_count
    return {"changes": changes}


def apply_command(eng: "AccountEngine", cmd: Command, ts_ms: int) -> JournalBatch:
    """Apply ``cmd`` to ``eng`` at event time ``ts_ms`` (ms UTC); never raises for a bad
    command: it is journaled as rejected with its reason."""
    out = JournalBatch()
    try:
        if cmd.account != eng.account.name:
            raise Rejected(Reason.UNKNOWN_ACCOUNT, cmd.account)
        if cmd.kind == CommandKind.RESET_KILL_SWITCH:
            detail = _reset(eng, cmd, ts_ms, out)
        elif cmd.kind in (CommandKind.PAUSE, CommandKind.RESUME):
            detail = _pause(eng, cmd, cmd.kind == CommandKind.PAUSE)
        elif cmd.kind == CommandKind.FLATTEN:
            detail = _flatten(eng, cmd)
        elif cmd.kind == CommandKind.SET_PARAMS:
            detail = _set_params(eng, cmd)
        else:  # pragma: no cover - Command's own validation refuses unknown kinds
            raise Rejected(Reason.UNKNOWN_KIND, cmd.kind)
        ok, reason = True, CommandKind(cmd.kind)
    except Rejected as rej:
        ok, reason, detail = False, rej.code, {"error": rej.detail}
    seq = eng.next_seq()
    out.events.insert(0, JournalEvent(
        event_id=f"command_ack:{eng.account.name}:{cmd.command_id}",
        kind=EventKind.COMMAND_APPLIED if ok else EventKind.COMMAND_REJECTED, reason=reason,
        ts_ms=ts_ms,
        account=eng.account.name, symbol=str(cmd.payload.get("symbol") or ""), seq=seq,
        detail={"command_id": cmd.command_id, "kind": cmd.kind, "payload": cmd.payload,
                "issued_by": cmd.issued_by, "issued_at_ms": cmd.issued_at_ms, **detail},
    ))
    out.summaries.append(eng.summary())
    return out
