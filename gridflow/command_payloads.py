"""The payload of each control command kind: one strict pydantic model per kind.

:class:`gridflow.events.Command` validates its ``payload`` with :func:`payload_args`,
so an account engine only ever sees a payload of the right shape: the known keys, each
of its type and bounded in size. What depends on the engine (is the symbol traded, is
the kill-switch reason known, are the new parameters valid for the strategy) is still
checked by the engine (:mod:`gridflow.operators.engine_commands`), which journals the
rejection with its reason.

Payloads are JSON objects: :func:`json_object` turns a dict, or the JSON text of an
object, into plain JSON values (str keys; lists, not tuples; finite numbers only),
bounded to :data:`MAX_PAYLOAD_CHARS` characters of JSON and :data:`MAX_PAYLOAD_DEPTH`
levels of nesting, so a payload can always be written back to the journal.

This module imports only :mod:`gridflow.event_kinds` (the lowest layer).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)

from gridflow.event_kinds import CommandKind

__all__ = ["MAX_NAME_CHARS", "MAX_PAYLOAD_CHARS", "MAX_PAYLOAD_DEPTH", "PAYLOADS",
           "ResetKillSwitchPayload", "SetParamsPayload", "SymbolPayload", "error_text",
           "json_object", "payload_args"]

MAX_PAYLOAD_CHARS = 8192
"""Largest payload, characters of its JSON text (a full parameter set is ~1,500)."""
MAX_PAYLOAD_DEPTH = 8
"""Deepest nesting of a payload (``{"params": {"x": [..]}}`` is 3)."""
MAX_NAME_CHARS = 64
"""Longest symbol or kill-switch reason name."""

Name = Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class ResetKillSwitchPayload(_Payload):
    """``reset_kill_switch``: ``reason`` names one kill switch (e.g. ``"MAX_DRAWDOWN"``);
    None resets them all. Whether the name is a kill switch is the engine's check
    (``UNKNOWN_REASON``)."""

    reason: Name | None = None


class SymbolPayload(_Payload):
    """``pause``, ``resume`` and ``flatten``: one ``symbol`` (ccxt unified), or None
    for the whole account. Whether the account trades it is the engine's check
    (``UNKNOWN_SYMBOL``)."""

    symbol: Name | None = None


class SetParamsPayload(_Payload):
    """``set_params``: new values of strategy parameters (``params``, a non-empty
    object of parameter name to JSON value, validated by the engine against the
    strategy model: ``INVALID_PARAMS``) for one ``symbol`` or one ``strategy`` (index
    in the account's strategy list, >= 0)."""

    params: dict[str, Any] = Field(min_length=1)
    symbol: Name | None = None
    strategy: StrictInt | None = Field(default=None, ge=0)


#: The payload model of each command kind.
PAYLOADS: dict[CommandKind, type[_Payload]] = {
    CommandKind.RESET_KILL_SWITCH: ResetKillSwitchPayload,
    CommandKind.PAUSE: SymbolPayload,
    CommandKind.RESUME: SymbolPayload,
    CommandKind.FLATTEN: SymbolPayload,
    CommandKind.SET_PARAMS: SetParamsPayload,
}


def _too_deep(value: Any, depth: int) -> bool:
    """Whether ``value`` nests deeper than ``depth`` more levels (recursion bounded by
    ``depth``, so any input is safe)."""
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return False
    return depth <= 0 or any(_too_deep(v, depth - 1) for v in items)


def json_object(value: Any) -> dict[str, Any]:
    """The payload ``value`` as a dict of plain JSON values.

    Parameters
    ----------
    value : dict, str or None
        A dict, the JSON text of an object, or None (an empty payload).

    Returns
    -------
    dict
        A fresh dict that survives ``json.dumps`` / ``json.loads`` unchanged.

    Raises
    ------
    ValueError
        Bytes (a JSON column holds text), text that is not JSON or not of an object,
        anything but a dict, NaN or infinite numbers, keys or values JSON cannot hold,
        more than :data:`MAX_PAYLOAD_CHARS` characters or :data:`MAX_PAYLOAD_DEPTH`
        levels.
    """
    if value is None:
        return {}
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueError("payload must be a JSON object, not bytes")  # noqa: TRY004 (pydantic)
    if isinstance(value, str):
        if len(value) > MAX_PAYLOAD_CHARS:
            raise ValueError(f"payload longer than {MAX_PAYLOAD_CHARS} characters")
        try:
            value = json.loads(value)
        except RecursionError:
            raise ValueError(f"payload nested deeper than {MAX_PAYLOAD_DEPTH} levels") from None
        except ValueError as exc:
            raise ValueError(f"payload is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(  # noqa: TRY004 (pydantic reports ValueError, not TypeError)
            f"payload must be a JSON object, not {type(value).__name__}")
    if _too_deep(value, MAX_PAYLOAD_DEPTH):
        raise ValueError(f"payload nested deeper than {MAX_PAYLOAD_DEPTH} levels")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:  # NaN / inf, bytes, sets, objects, odd keys
        raise ValueError(f"payload is not plain JSON: {exc}") from None
    if len(text) > MAX_PAYLOAD_CHARS:
        raise ValueError(f"payload longer than {MAX_PAYLOAD_CHARS} characters")
    return json.loads(text)


def error_text(exc: ValidationError, limit: int = 500) -> str:
    """``"loc: msg; loc: msg"`` of a pydantic error, at most ``limit`` characters (no
    input values: they may be large)."""
    text = "; ".join(f"{'.'.join(map(str, e['loc'])) or '-'}: {e['msg']}"
                     for e in exc.errors(include_url=False, include_input=False))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def payload_args(kind: CommandKind | str, payload: dict[str, Any]) -> _Payload:
    """``payload`` (already a :func:`json_object`) as ``kind``'s model.

    Raises
    ------
    ValueError
        ``kind`` is not a :class:`~gridflow.event_kinds.CommandKind`, or the model's
        errors (``"reason: Input should be a valid string"``).
    """
    try:
        return PAYLOADS[CommandKind(kind)].model_validate(payload)
    except ValidationError as exc:
        raise ValueError(error_text(exc)) from None
