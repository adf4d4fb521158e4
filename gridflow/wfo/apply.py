"""Validated parameters into a preset: ``gridflow wfo ... --apply PRESET.toml`` (the
document; :func:`gridflow.ops.apply_preset.write_preset` writes it).

For each symbol of a walk-forward, the parameters its last in-sample window chose (the
ones a trader would run next) become one strategy entry of the preset's account,
restricted to that symbol and carrying its :class:`~gridflow.config.validated.Validation`
(grade, score, windows, date). The preset is the walk-forward's own account, fees and
data, so ``gridflow replay --preset PRESET.toml`` replays exactly what was validated,
and every run's journaled config says which parameters were validated and how well.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from gridflow.config.validated import Validation


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")


def validation(report: dict, windows: list[dict], sweep_id: str, applied_at: str) -> Validation:
    """The :class:`Validation` of one symbol's walk-forward (``report``: its summary,
    ``windows``: its window rows in order)."""
    last = windows[-1]
    return Validation(
        grade=report["grade"], score=float(report.get("grade_score") or 0.0),
        sweep_id=sweep_id, symbol=report["symbol"], timeframe=report["timeframe"],
        strategy=report["strategy"], chosen_from=_day(last["is_start_ms"]),
        chosen_to=_day(last["is_end_ms"]), oos_from=_day(windows[0]["oos_start_ms"]),
        oos_to=_day(last["oos_end_ms"]), windows=len(windows), applied_at=applied_at,
        reasons=tuple(report.get("grade_reasons") or ()))


def _plain(v: Any) -> Any:
    """A numpy scalar as its Python value (TOML writes Python types only)."""
    return v.item() if hasattr(v, "item") else v


def _clean(v: Any) -> Any:
    """TOML has no null: drop None values, recursively."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def preset_doc(spec: Any, reports: dict[str, dict], windows: dict[str, list[dict]],
               names: list[str], now: datetime | None = None) -> dict:
    """The preset of a walk-forward ``spec``
    (:class:`~gridflow.dataflows.sweep_spec.SweepSpec`): its account with one strategy
    entry per symbol of ``reports`` (``base`` parameters, then the last window's chosen
    ones: its columns ``names``, as :func:`gridflow.journal.sweep_store.read_wfo` gives the
    rows; ``symbols = [symbol]``, ``validated``), its fees, data, funding, markets and
    time range.

    Raises
    ------
    ValueError
        A symbol without windows.
    """
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    strategies = []
    for sym in sorted(reports):
        rows = windows.get(sym) or []
        if not rows:
            raise ValueError(f"{sym}: the walk-forward has no window to apply")
        v = validation(reports[sym], rows, spec.sweep_id, stamp)
        chosen = {n: _plain(rows[-1][n]) for n in names}
        strategies.append({**spec.base, **chosen, "name": spec.strategy,
                           "symbols": [sym], "validated": v.model_dump(mode="json")})
    account = spec.account.model_dump(mode="json", exclude={"strategies"})
    account.update(symbols=sorted(reports), strategies=strategies)
    doc: dict[str, Any] = {
        "start_ms": spec.start_ms, "end_ms": spec.end_ms,
        "fees": spec.fees.model_dump(mode="json"),
        "markets": {k: m.model_dump(mode="json") for k, m in spec.markets.items()},
        "data": [d.model_dump(mode="json") for d in spec.data],
        "accounts": [account]}
    if spec.funding is not None:
        doc["funding"] = [f.model_dump(mode="json") for f in spec.funding]
    return _clean(doc)


__all__ = ["preset_doc", "validation"]
