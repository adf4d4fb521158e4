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

import math
from datetime import datetime, timezone
from typing import Any

from gridflow.config.validated import Validation
from gridflow.operators.indicators.regime import REGIMES


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


def label_window(oos_days: int, timeframe: str) -> int:
    """Candles of the causal regime label matching a walk-forward's labels: an OOS
    window of ``oos_days`` at ``timeframe`` (90 days of 1h = 2160), at most 5000 (what a
    live start fetches as warm-up at most) and at least 2."""
    from gridflow.timeframes import timeframe_to_ms

    return int(min(5_000, max(2, oos_days * 86_400_000 // timeframe_to_ms(timeframe))))


def regime_filter_from(windows: list[dict], window: int) -> dict | None:
    """A ``regime_filter`` table (:class:`~gridflow.config.filters.RegimeFilter`) from
    a walk-forward's windows: block the regimes whose windows' mean out-of-sample Sharpe
    (``oos_sharpe``, NaN ignored) is negative; ``window`` candles of the causal label
    (:func:`label_window`: the span the walk-forward labelled). None when no regime, or
    every regime, is to be blocked (a strategy that never enters is no strategy).

    The OOS record chose it, so it is not validated by that record: the preset says so
    (:func:`preset_doc`), and a walk-forward with it in ``[base]`` validates it."""
    by: dict[str, list[float]] = {}
    for w in windows:
        v = _plain(w.get("oos_sharpe"))
        if isinstance(v, (int, float)) and math.isfinite(v):
            by.setdefault(str(w.get("regime")), []).append(float(v))
    blocked = sorted(r for r, xs in by.items() if r in REGIMES and sum(xs) / len(xs) < 0.0)
    if not blocked or len(blocked) == len(REGIMES):
        return None
    return {"window": window, **{r: "block" for r in blocked}}


def preset_doc(spec: Any, reports: dict[str, dict], windows: dict[str, list[dict]],
               names: list[str], now: datetime | None = None,
               regime_filter: bool = False) -> dict:
    """The preset of a walk-forward ``spec``
    (:class:`~gridflow.dataflows.sweep_spec.SweepSpec`): its account with one strategy
    entry per symbol of ``reports`` (``base`` parameters, then the last window's chosen
    ones: its columns ``names``, as :func:`gridflow.journal.sweep_store.read_wfo` gives the
    rows; ``symbols = [symbol]``, ``validated``), its fees, data, funding, markets and
    time range. With ``regime_filter``, an entry without one in ``base`` gets
    :func:`regime_filter_from` its windows, and its validation's reasons say that the
    filter was chosen on the record that graded the unfiltered parameters.

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
        entry = {**spec.base, **chosen, "name": spec.strategy, "symbols": [sym]}
        rf = None
        if regime_filter and "regime_filter" not in entry:
            rf = regime_filter_from(rows, label_window(spec.wfo.oos_days,
                                                       reports[sym]["timeframe"]))
        if rf is not None:
            entry["regime_filter"] = rf
            blocked = ", ".join(k for k in rf if k != "window")
            v = v.model_copy(update={"reasons": (*v.reasons, (
                f"regime_filter (blocks {blocked}) set from this walk-forward's OOS "
                "record, which graded the parameters without it: run a walk-forward "
                "with it in [base] to validate it"))})
        strategies.append({**entry, "validated": v.model_dump(mode="json")})
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


__all__ = ["label_window", "preset_doc", "regime_filter_from", "validation"]
