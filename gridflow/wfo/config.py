"""Settings and windows of a walk-forward run (:mod:`gridflow.wfo.walkforward`).

:class:`WfoConfig` holds the in-sample / out-of-sample lengths, the selection objective
and the statistics' settings; :func:`windows` cuts a symbol's candles into the rolling
:class:`Window` list that a run (or a distributed run, one window per partition) uses;
:func:`window_combos` lists the combinations a window may sweep (the grid and the
stability neighbours of each).
Times are ms UTC, lengths days.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal, Sequence, get_args

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from gridflow.config.models import GridflowConfig
from gridflow.config.renamed import canonical_name
from gridflow.config.strategies import StrategyParams
from gridflow.sweep import SweepData
from gridflow.wfo.stats import DAY_MS

Objective = Literal["score", "net_pnl", "total_return", "sharpe", "sortino", "calmar",
                    "profit_factor", "win_rate"]
OBJECTIVES = get_args(Objective)
"""Values of :attr:`WfoConfig.metric`: the IS combination maximising it is selected."""


class WfoConfig(BaseModel):
    """Settings of a walk-forward run (frozen; unknown fields are refused).

    Attributes
    ----------
    is_days, oos_days : int
        In-sample (>= 7) and out-of-sample (>= 1) lengths, days.
    step_days : int or None
        Start-to-start distance of consecutive windows, days; default ``oos_days``
        (rolling, contiguous non-overlapping OOS). Must be >= ``oos_days``: overlapping
        OOS spans would count the same days twice in the stitched curve.
    start_ms, end_ms : int or None
        Span used (ms UTC, or an ISO date/time string read as UTC, parsed like
        ``GridflowConfig.start_ms``); default the whole data.
    min_trades : int
        Trades below which :func:`window_score` penalises a combination.
    perturbations : tuple of float
        Relative changes (fractions, > -1, != 0) of each numeric swept parameter of the
        best combination for the stability check.
    n_boot, seed : int
        Block-bootstrap resamples and seed of the OOS p-value.
    metric : str
        Selection objective, one of :data:`OBJECTIVES` (maximised; NaN is worst).
    transfer : dict[str, str]
        Symbol -> the same symbol's candles on the venue that will trade it (a candle
        file or a market-data store spec ``exchange:symbol@timeframe``): the chosen
        parameters are replayed on its last ``transfer_days`` and on the research data's
        same days, and the grade counts the transfer (:mod:`gridflow.wfo.transfer`).
    transfer_days : int or None
        Length of that window, days; default ``oos_days``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    is_days: int = Field(365, ge=7)
    oos_days: int = Field(90, ge=1)
    step_days: int | None = Field(None, ge=1)
    start_ms: int | None = None
    end_ms: int | None = None
    min_trades: int = Field(10, ge=1)
    perturbations: tuple[float, ...] = (-0.2, -0.1, 0.1, 0.2)
    n_boot: int = Field(2000, ge=1)
    seed: int = 0
    metric: Objective = "score"
    transfer: dict[str, str] = Field(default_factory=dict)
    transfer_days: int | None = Field(None, ge=1)

    @field_validator("start_ms", "end_ms", mode="before")
    @classmethod
    def _date(cls, v: object) -> object:
        """ms UTC or an ISO date (``"2023-01-01"``, UTC), exactly as the main config."""
        return GridflowConfig._date(v)

    @field_validator("perturbations")
    @classmethod
    def _perturbations(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        bad = [p for p in v if not (math.isfinite(p) and p > -1.0 and p != 0.0)]
        if bad:
            raise ValueError(f"perturbations must be finite fractions > -1 and != 0, got {bad}")
        return v

    @model_validator(mode="after")
    def _spans(self) -> "WfoConfig":
        if self.step_days is not None and self.step_days < self.oos_days:
            raise ValueError(f"step_days ({self.step_days}) must be >= oos_days "
                             f"({self.oos_days}): OOS windows may not overlap")
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ValueError(f"end_ms ({self.end_ms}) must be after start_ms ({self.start_ms})")
        return self

    @property
    def step(self) -> int:
        """Window step in days (``step_days`` or ``oos_days``)."""
        return self.oos_days if self.step_days is None else self.step_days


@dataclass(frozen=True)
class Window:
    """One walk-forward window: IS ``[is_start_ms, is_end_ms)`` then OOS
    ``[oos_start_ms, oos_end_ms)`` (candle open times, ms UTC; ``is_end_ms ==
    oos_start_ms``)."""

    index: int
    is_start_ms: int
    is_end_ms: int
    oos_start_ms: int
    oos_end_ms: int


def windows(data: SweepData, cfg: WfoConfig) -> list[Window]:
    """Rolling windows over the data: IS ``[s, s + is)``, OOS ``[s + is, s + is + oos)``.

    ``s`` starts at ``max(cfg.start_ms, first candle open)`` and advances by
    ``cfg.step`` days; the span ends at ``min(cfg.end_ms, last candle close)``. The last
    OOS is cut at that end and dropped when shorter than half of ``oos_days``.

    Parameters
    ----------
    data : SweepData
    cfg : WfoConfig

    Returns
    -------
    list of Window
        In time order, ``index`` 0, 1, ...

    Raises
    ------
    ValueError
        If no window fits (naming the lengths) or a window holds no candle.
    """
    is_ms, oos_ms, step_ms = cfg.is_days * DAY_MS, cfg.oos_days * DAY_MS, cfg.step * DAY_MS
    first, data_end = int(data.ts[0]), int(data.ts[-1]) + int(data.tf_ms)
    start = first if cfg.start_ms is None else max(int(cfg.start_ms), first)
    end = data_end if cfg.end_ms is None else min(int(cfg.end_ms), data_end)
    out: list[Window] = []
    s = start
    while True:
        oos_start = s + is_ms
        oos_end = min(oos_start + oos_ms, end)
        if 2 * (oos_end - oos_start) < oos_ms:
            break
        out.append(Window(len(out), s, oos_start, oos_start, oos_end))
        if oos_start + oos_ms >= end:
            break
        s += step_ms
    if not out:
        raise ValueError(
            f"no walk-forward window fits: is_days={cfg.is_days} + oos_days={cfg.oos_days} "
            f"(at least {cfg.is_days + cfg.oos_days / 2:g} days) but the span "
            f"[{start}, {end}) ms holds {max(end - start, 0) / DAY_MS:.1f} days")
    for w in out:
        for lo, hi in ((w.is_start_ms, w.is_end_ms), (w.oos_start_ms, w.oos_end_ms)):
            if data.index(hi, len(data)) <= data.index(lo, 0):
                raise ValueError(f"window {w.index}: [{lo}, {hi}) ms holds no candle")
    return out


def numeric_params(space: dict[str, Sequence[Any]]) -> list[str]:
    """Swept names whose values are all real numbers (not bools, strings, tuples)."""
    def real(v: Any) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))

    return [k for k, vals in space.items() if len(vals) and all(real(v) for v in vals)]


def neighbours(combo: StrategyParams, names: list[str],
                perturbations: Sequence[float]) -> list[StrategyParams]:
    """``combo`` with one parameter scaled by ``1 + p``: ints rounded, values equal to the
    original or already seen skipped, values the strategy model refuses dropped. A
    deprecated name in ``names`` (``sl_pct``) perturbs its renamed field."""
    doc = combo.model_dump()
    seen: set[tuple[str, Any]] = set()
    out = []
    for name in names:
        v0 = getattr(combo, name)
        for p in perturbations:
            v = v0 * (1.0 + p)
            if isinstance(v0, numbers.Integral):
                v = int(round(v))
            if v == v0 or (name, v) in seen:
                continue
            seen.add((name, v))
            try:
                out.append(type(combo).model_validate({**doc, canonical_name(name): v}))
            except ValidationError:
                continue
    return out


def window_combos(combos: list[StrategyParams], space: dict[str, Sequence[Any]],
                  cfg: WfoConfig) -> list[StrategyParams]:
    """Every combination :func:`gridflow.wfo.walkforward.run_window` may sweep: ``combos``
    and the stability :func:`neighbours` of each (repeats possible), e.g. to fill a shared
    :class:`~gridflow.sweep.IndicatorTable` before threads read it."""
    numeric = numeric_params(space)
    return [*combos, *(nb for c in combos for nb in neighbours(c, numeric, cfg.perturbations))]
