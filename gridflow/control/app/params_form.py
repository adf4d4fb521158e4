"""The Backtest page's strategy form, as plain data (no Panel import).

A preset's account is split into what the page lets the user edit: the symbols (of
the bundled candle files) and, per strategy, its numeric and choice parameters read
from the strategy's pydantic model (type and ``Field`` bounds). :func:`build_account`
turns the edited values back into a validated :class:`AccountConfig`; a bad value
raises :class:`InvalidParams` with pydantic's messages, each naming its field.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types as at
from pydantic import ValidationError

from gridflow.config.models import AccountConfig, DataFile, StrategyParams

SKIPPED = ("name", "symbols", "overrides", "validated")
"""Strategy fields the form does not edit (identity, allow-list, per-asset overrides)."""


class InvalidParams(ValueError):
    """The form's values do not make a valid account; the message says why."""


@dataclass(frozen=True)
class FieldSpec:
    """One editable parameter: ``kind`` is ``int``, ``float``, ``choice`` (a Literal)
    or ``floats`` (a tuple of floats, edited as comma-separated text)."""

    name: str
    kind: str
    value: Any
    start: float | None = None
    end: float | None = None
    options: tuple[str, ...] = ()


def bundled_symbols() -> list[str]:
    """Symbols of the bundled candle files, sorted."""
    from gridflow.data import bundled_candle_files
    from gridflow.data.candle_files import parse_candle_file_name

    return sorted({parse_candle_file_name(p.name)[1] for p in bundled_candle_files()})


def load_preset(path: str | Path) -> tuple[AccountConfig, tuple[DataFile, ...]]:
    """The one account of a preset and its candle files.

    Raises
    ------
    InvalidParams
        The preset has several accounts (the form edits one).
    """
    from gridflow.config import load_config

    cfg = load_config(path)
    if len(cfg.accounts) != 1:
        raise InvalidParams(f"preset {Path(path).stem}: {len(cfg.accounts)} accounts; "
                            "the Backtest page edits presets with one account")
    return cfg.accounts[0], cfg.data


def data_for(files: tuple[DataFile, ...], symbols: tuple[str, ...] | list[str]
             ) -> tuple[DataFile, ...]:
    """The candle files of ``symbols`` (the symbol from the file name when unset).

    A replay is given only these: the engine computes indicators for every file's
    symbol and fails on a symbol that no account trades.
    """
    from gridflow.data.candle_files import parse_candle_file_name

    return tuple(f for f in files
                 if (f.symbol or parse_candle_file_name(f.path)[1]) in symbols)


def _bounds(info: Any) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, (at.Ge, at.Gt)):
            lo = m.ge if isinstance(m, at.Ge) else m.gt
        elif isinstance(m, (at.Le, at.Lt)):
            hi = m.le if isinstance(m, at.Le) else m.lt
    return lo, hi


def field_specs(st: StrategyParams) -> list[FieldSpec]:
    """The editable parameters of ``st`` in model order, pre-filled with its values."""
    out = []
    base = type(st).__base__.model_fields  # shared fields (sl_frac) go last
    fields = sorted(type(st).model_fields.items(), key=lambda kv: kv[0] in base)
    for name, info in fields:
        if name in SKIPPED:
            continue
        ann, value = info.annotation, getattr(st, name)
        lo, hi = _bounds(info)
        if typing.get_origin(ann) is typing.Literal:
            out.append(FieldSpec(name, "choice", value,
                                 options=tuple(str(a) for a in typing.get_args(ann))))
        elif ann is int:
            out.append(FieldSpec(name, "int", value, lo, hi))
        elif ann is float:
            out.append(FieldSpec(name, "float", value, lo, hi))
        elif typing.get_origin(ann) is tuple:
            out.append(FieldSpec(name, "floats", ", ".join(f"{x:g}" for x in value)))
    return out


def strategy_label(st: StrategyParams) -> str:
    """``grid_atr (long) on BTC/USDT, ETH/USDT`` or ``... on every symbol``."""
    side = getattr(st, "side", None)
    on = ", ".join(st.symbols) if st.symbols else "every symbol"
    return f"{st.name}{f' ({side})' if side else ''} on {on}"


def validation_label(st: StrategyParams) -> str:
    """``validated: grade C (61/100), chosen on 2025-09-28..2026-03-27`` for parameters a
    walk-forward chose (``gridflow wfo --apply``), else ``not validated``."""
    v = st.validated
    if v is None:
        return "not validated"
    return (f"validated: grade {v.grade} ({v.score:g}/100), chosen on "
            f"{v.chosen_from}..{v.chosen_to}")


def _raw(spec: FieldSpec, value: Any) -> Any:
    if spec.kind == "floats":  # pydantic parses the pieces and names a bad one
        return [p.strip() for p in str(value or "").split(",") if p.strip()]
    return value


def describe(exc: ValidationError, where: str) -> str:
    """One line per pydantic error: ``where: field: message (got value)``."""
    lines = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"])
        got = f" (got {e['input']!r})" if loc and "input" in e else ""
        lines.append(f"{where}: {loc + ': ' if loc else ''}{e['msg']}{got}")
    return "\n".join(lines)


def build_account(account: AccountConfig, values: list[dict[str, Any]],
                  symbols: list[str] | tuple[str, ...]) -> AccountConfig:
    """``account`` with the edited strategy parameters, trading ``symbols``.

    Each strategy keeps the chosen symbols of its allow-list (and their overrides); a
    strategy left with none is dropped; one with an empty allow-list keeps it (it
    trades every chosen symbol no other strategy claims).

    Parameters
    ----------
    account : AccountConfig
        The preset's account.
    values : list of dict
        Per strategy of ``account``, field name -> edited value (missing: unchanged).
    symbols : sequence of str

    Raises
    ------
    InvalidParams
        No symbol, no strategy left, or pydantic refused a value (naming the field).
    """
    chosen = list(dict.fromkeys(symbols))
    if not chosen:
        raise InvalidParams("symbols: pick at least one symbol")
    strategies = []
    for i, st in enumerate(account.strategies):
        label = f"strategy {i + 1} {strategy_label(st)}"
        specs = {f.name: f for f in field_specs(st)}
        edits = values[i] if i < len(values) else {}
        doc = st.model_dump()
        doc.update({k: _raw(specs[k], v) for k, v in edits.items() if k in specs})
        keep = [s for s in st.symbols if s in chosen]
        if st.symbols and not keep:
            continue
        doc["symbols"] = keep
        doc["overrides"] = {s: ov for s, ov in st.overrides.items() if s in chosen}
        try:
            new = type(st).model_validate(doc)
        except ValidationError as exc:
            raise InvalidParams(describe(exc, label)) from None
        if new.validated is not None and new.model_copy(update={"symbols": st.symbols,
                                                                "overrides": st.overrides}) != st:
            new = new.model_copy(update={"validated": None})  # edited: no longer validated
        strategies.append(new)
    if not strategies:
        raise InvalidParams(f"symbols: no strategy of account {account.name!r} trades "
                            f"{', '.join(chosen)}")
    try:
        return AccountConfig.model_validate(
            {**account.model_dump(), "symbols": chosen, "strategies": strategies})
    except ValidationError as exc:
        raise InvalidParams(describe(exc, f"account {account.name}")) from None
