"""Rolling walk-forward optimisation of one strategy's parameter grid on one symbol.

Every window optimises on its in-sample (IS) span, then trades the chosen combination on
the following out-of-sample (OOS) span; the OOS daily equity curves are stitched into one
track record that is judged by :func:`gridflow.wfo.grade.grade`.

>>> data = SweepData.from_file("binance_BTC_USDT_1h.csv.gz")
>>> res = run_walkforward(data, AccountConfig(), "grid_atr",
...                       {"atr_start": [1, 2, 3], "sl_pct": [0.1, 0.2]},
...                       WfoConfig(is_days=180, oos_days=90))
>>> res.report["grade"], res.report["oos_sharpe"]

Conventions: returns and drawdowns are fractions, Sharpe ratios annualised with
``sqrt(365)`` (daily returns) unless called per period, PnL in quote currency and
timestamps ms UTC.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gridflow.config.models import AccountConfig, FeesConfig, GridflowConfig, MarketSpec
from gridflow.config.strategies import StrategyParams
from gridflow.sweep import METRICS, IndicatorTable, SweepData, expand_grid, run_sweep
from gridflow.wfo.grade import grade, window_score
from gridflow.wfo.regimes import REGIMES, regime_label
from gridflow.wfo.stats import (
    DAY_MS,
    annualised_sharpe,
    block_bootstrap_pvalue,
    deflated_sharpe_ratio,
    max_drawdown,
)

ANNUAL_DAYS = 365
"""Daily periods per year of the Sharpe ratios."""
Objective = Literal["score", "net_pnl", "total_return", "sharpe", "sortino", "calmar",
                    "profit_factor", "win_rate"]
OBJECTIVES = get_args(Objective)
"""Values of :attr:`WfoConfig.metric`: the IS combination maximising it is selected."""

Progress = Callable[[int, int], None]


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


@dataclass
class WfoResult:
    """Outcome of :func:`run_walkforward`.

    Attributes
    ----------
    report : dict
        JSON-serialisable summary (NaN possible), keys in :func:`run_walkforward`.
    windows : list of dict
        One per window (keys in :func:`run_walkforward`).
    results : list of dict
        One row per (window, phase ``"is"``/``"oos"``, combination): ``window``,
        ``phase``, ``combo_id``, ``params``, every metric of :data:`METRICS` and
        ``score`` (:func:`window_score` of that row's metrics).
    params : list of dict
        Swept values of each combination id.
    stitched : (int64 (n,), float64 (n,))
        Stitched OOS equity (quote): the first point is the first OOS start with the
        initial capital, then one point per OOS daily sample, timed at that day's last
        candle close (ms UTC).
    """

    report: dict
    windows: list[dict]
    results: list[dict]
    params: list[dict]
    stitched: tuple[np.ndarray, np.ndarray]


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


def _numeric_params(space: dict[str, Sequence[Any]]) -> list[str]:
    """Swept names whose values are all real numbers (not bools, strings, tuples)."""
    def real(v: Any) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))

    return [k for k, vals in space.items() if len(vals) and all(real(v) for v in vals)]


def _neighbours(combo: StrategyParams, names: list[str],
                perturbations: Sequence[float]) -> list[StrategyParams]:
    """``combo`` with one parameter scaled by ``1 + p``: ints rounded, values equal to the
    original or already seen skipped, values the strategy model refuses dropped."""
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
                out.append(type(combo).model_validate({**doc, name: v}))
            except ValidationError:
                continue
    return out


def _scores(m: dict[str, np.ndarray], min_trades: int) -> np.ndarray:
    return np.asarray(window_score(m["total_return"], m["max_drawdown"], m["trades"],
                                   m["sharpe"], min_trades), dtype=np.float64)


def _objective(m: dict[str, np.ndarray], score: np.ndarray, metric: str) -> np.ndarray:
    """Selection values (C,): higher is better, NaN mapped to -inf."""
    v = score if metric == "score" else np.asarray(m[metric], dtype=np.float64)
    return np.where(np.isnan(v), -np.inf, v)


def _stability(best_value: float, values: np.ndarray) -> float:
    """Share of neighbours with value >= 0.5 * best (>= best when best <= 0); NaN if none."""
    if values.size == 0:
        return math.nan
    bar = 0.5 * best_value if best_value > 0 else best_value
    return float(np.mean(values >= bar))


def _day_close_ts(data: SweepData, t0: int, t1: int) -> np.ndarray:
    """Time (ms UTC) of the last candle close of each UTC day present in ``[t0, t1)``."""
    day = data.day[t0:t1]
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True)) + t0
    return (data.ts[last] + data.tf_ms).astype(np.int64)


def run_walkforward(data: SweepData, account: AccountConfig, strategy: str,
                    space: dict[str, Sequence[Any]], cfg: WfoConfig | None = None,
                    fees: FeesConfig | None = None, market: MarketSpec | None = None,
                    base: dict[str, Any] | None = None,
                    progress: Progress | None = None) -> WfoResult:
    """Walk-forward optimisation of ``strategy`` over the grid ``space``.

    Per window: an IS sweep of every combination (:func:`run_sweep`, each a fresh account
    of ``account``'s capital, indicators warmed up on all earlier candles through one
    shared :class:`IndicatorTable`); the best combination maximises ``cfg.metric``
    (:func:`window_score` of total return, max drawdown, trades and Sharpe by default;
    ties go to the lowest id); an OOS sweep of every combination, plus the best one alone
    with daily equity; the OOS regime (:func:`regime_label` of the OOS closes); and the
    stability of the best: the share of its perturbed neighbours (each numeric swept
    parameter times ``1 + p``, p in ``cfg.perturbations``) whose IS objective is >= half
    the best's (>= the best's when that is <= 0); NaN without any valid neighbour.

    The OOS daily equities are stitched as returns (each window's first from the initial
    capital) and compounded from the capital.

    Parameters
    ----------
    data : SweepData
    account : AccountConfig
        Capital, leverage, risk limits and sizing (its strategies are ignored).
    strategy : str
        Strategy name (see :func:`expand_grid`).
    space : dict[str, sequence]
        Swept parameter values; ``base`` fixes other parameters.
    cfg : WfoConfig, optional
    fees, market : FeesConfig, MarketSpec, optional
    progress : callable(done_steps, total_steps), optional
        Called after each sweep; steps are candles x combinations. ``total_steps`` is
        planned with every possible neighbour and shrinks when some are skipped.

    Returns
    -------
    WfoResult
        ``report`` keys: ``oos_sharpe`` (annualised, stitched daily returns),
        ``oos_total_return``, ``oos_max_drawdown`` (stitched curve), ``oos_trades`` and
        ``oos_net_pnl`` (sums over the best combinations), ``oos_days``, ``consistency``
        (share of windows with OOS net PnL > 0), ``oos_is_ratio`` (mean OOS / IS Sharpe
        of the best over windows with IS Sharpe > 0, a NaN OOS Sharpe counting 0; NaN if
        none), ``dsr`` (``dsr_sr0``, ``dsr_trials``: per-day IS Sharpes of all
        combinations of all windows), ``mc_pvalue``, ``stability`` (mean over windows,
        NaN ignored), ``regimes`` (count per label), ``n_windows``, ``n_combos``,
        ``invalid_combos``, ``steps``, ``seconds`` (kernel), ``wall_seconds``,
        ``symbol``, ``timeframe``, ``strategy``, ``config``, ``grade``,
        ``grade_reasons``. ``windows`` rows: ``index`` (= ``window``), the four bounds,
        ``best_combo_id``, ``params``, ``regime``, ``is_/oos_sharpe``,
        ``is_/oos_net_pnl``, ``is_/oos_trades``, ``oos_max_drawdown``, ``score`` (IS
        :func:`window_score` of the best), ``stability``, ``neighbours``.

    Raises
    ------
    ValueError
        No window fits, a bad grid, or every combination is invalid.
    """
    wall, cfg = time.perf_counter(), cfg or WfoConfig()
    wins = windows(data, cfg)
    combos, params, invalid = expand_grid(strategy, space, base)
    if not combos:
        raise ValueError(f"{strategy}: all {invalid} parameter combinations are invalid")
    C = len(combos)
    capital = float(account.capital_quote)
    table = IndicatorTable(data, first=0)
    numeric = _numeric_params(space)
    max_nb = len(numeric) * len(cfg.perturbations)

    spans = [tuple(data.index(hi, len(data)) - data.index(lo, 0) for lo, hi in
                   ((w.is_start_ms, w.is_end_ms), (w.oos_start_ms, w.oos_end_ms))) for w in wins]
    spent = {"steps": 0, "seconds": 0.0,
             "total": sum(ni * (C + max_nb) + no * (C + 1) for ni, no in spans)}

    def tick(steps: int, unplanned: int) -> None:
        spent["steps"] += steps
        spent["total"] -= unplanned
        if progress is not None:
            progress(spent["steps"], spent["total"])

    def sweep(cs: list, lo: int, hi: int, daily: bool = False, unplanned: int = 0):
        res = run_sweep(data, account, cs, fees, market, start_ms=lo, end_ms=hi, table=table,
                        daily=daily)
        spent["seconds"] += res.seconds
        tick(res.steps, unplanned)
        return res

    rows, win_rows, trial_sharpes, rets, times = [], [], [], [], []
    for w, (n_is, _) in zip(wins, spans):
        is_res = sweep(combos, w.is_start_ms, w.is_end_ms)
        is_m = is_res.metrics
        is_score = _scores(is_m, cfg.min_trades)
        obj = _objective(is_m, is_score, cfg.metric)
        best = int(np.argmax(obj))
        oos_res = sweep(combos, w.oos_start_ms, w.oos_end_ms)
        day_res = sweep([combos[best]], w.oos_start_ms, w.oos_end_ms, daily=True)
        nbs = _neighbours(combos[best], numeric, cfg.perturbations)
        stab, unplanned = math.nan, n_is * (max_nb - len(nbs))
        if nbs:
            nb_m = sweep(nbs, w.is_start_ms, w.is_end_ms, unplanned=unplanned).metrics
            stab = _stability(float(obj[best]),
                              _objective(nb_m, _scores(nb_m, cfg.min_trades), cfg.metric))
        elif unplanned:
            tick(0, unplanned)
        t0, t1 = oos_res.t0, oos_res.t1
        close_ts = _day_close_ts(data, t0, t1)  # one per daily equity sample
        eq = day_res.daily[0, : close_ts.size]
        with np.errstate(divide="ignore", invalid="ignore"):
            rets.append(eq / np.concatenate(([capital], eq[:-1])) - 1.0)
        times.append(close_ts)
        trial_sharpes.append(is_m["sharpe"] / math.sqrt(ANNUAL_DAYS))
        oos_m = oos_res.metrics
        oos_score = _scores(oos_m, cfg.min_trades)
        for phase, m, sc in (("is", is_m, is_score), ("oos", oos_m, oos_score)):
            cols = {k: m[k].tolist() for k in METRICS}
            sc_list = sc.tolist()
            for c in range(C):
                rows.append({"window": w.index, "phase": phase, "combo_id": c,
                             "params": dict(params[c]), **{k: cols[k][c] for k in METRICS},
                             "score": sc_list[c]})
        win_rows.append({
            "index": w.index, "window": w.index,
            "is_start_ms": w.is_start_ms, "is_end_ms": w.is_end_ms,
            "oos_start_ms": w.oos_start_ms, "oos_end_ms": w.oos_end_ms,
            "best_combo_id": best, "params": dict(params[best]),
            "regime": regime_label(data.close[t0:t1], data.tf_ms),
            "is_sharpe": float(is_m["sharpe"][best]), "oos_sharpe": float(oos_m["sharpe"][best]),
            "is_net_pnl": float(is_m["net_pnl"][best]),
            "oos_net_pnl": float(oos_m["net_pnl"][best]),
            "is_trades": int(is_m["trades"][best]), "oos_trades": int(oos_m["trades"][best]),
            "oos_max_drawdown": float(oos_m["max_drawdown"][best]),
            "score": float(is_score[best]), "stability": stab, "neighbours": len(nbs),
        })

    returns = np.concatenate(rets)
    with np.errstate(invalid="ignore", over="ignore"):
        equity = capital * np.concatenate(([1.0], np.cumprod(1.0 + returns)))
    stitched_ts = np.concatenate(([wins[0].oos_start_ms], *times)).astype(np.int64)
    report = _report(cfg, win_rows, returns, equity, np.concatenate(trial_sharpes))
    report.update({
        "n_windows": len(wins), "n_combos": C, "invalid_combos": int(invalid),
        "steps": int(spent["steps"]), "seconds": float(spent["seconds"]),
        "wall_seconds": time.perf_counter() - wall,
        "symbol": data.symbol, "timeframe": data.timeframe, "strategy": strategy,
        "config": cfg.model_dump(mode="json"),
    })
    report["grade"], report["grade_reasons"] = grade(report)
    return WfoResult(report, win_rows, rows, [dict(p) for p in params],
                     (stitched_ts, equity.astype(np.float64)))


def _report(cfg: WfoConfig, win_rows: list[dict], returns: np.ndarray, equity: np.ndarray,
            trials: np.ndarray) -> dict:
    """The statistics of the stitched OOS record and the per-window aggregates."""
    finite = returns.size >= 3 and bool(np.all(np.isfinite(returns)))
    dsr_res = None
    if finite and np.isfinite(trials).any():
        dsr_res = deflated_sharpe_ratio(returns, trials)
    ratios = [(r["oos_sharpe"] if math.isfinite(r["oos_sharpe"]) else 0.0) / r["is_sharpe"]
              for r in win_rows if math.isfinite(r["is_sharpe"]) and r["is_sharpe"] > 0]
    stabs = [r["stability"] for r in win_rows if math.isfinite(r["stability"])]
    eq_ok = bool(np.all(np.isfinite(equity)) and np.all(equity >= 0))
    regimes = {label: 0 for label in REGIMES}
    for r in win_rows:
        regimes[r["regime"]] += 1
    return {
        "oos_sharpe": float(annualised_sharpe(returns, ANNUAL_DAYS)),
        "oos_total_return": float(equity[-1] / equity[0] - 1.0),
        "oos_max_drawdown": max_drawdown(equity) if eq_ok else math.nan,
        "oos_trades": int(sum(r["oos_trades"] for r in win_rows)),
        "oos_net_pnl": float(sum(r["oos_net_pnl"] for r in win_rows)),
        "oos_days": int(returns.size),
        "consistency": float(np.mean([r["oos_net_pnl"] > 0 for r in win_rows])),
        "oos_is_ratio": float(np.mean(ratios)) if ratios else math.nan,
        "dsr": float(dsr_res.dsr) if dsr_res is not None else math.nan,
        "dsr_sr0": float(dsr_res.sr0) if dsr_res is not None else math.nan,
        "dsr_trials": int(dsr_res.n_trials) if dsr_res is not None else 0,
        "mc_pvalue": (block_bootstrap_pvalue(returns, n_boot=cfg.n_boot, seed=cfg.seed)
                      if finite else math.nan),
        "stability": float(np.mean(stabs)) if stabs else math.nan,
        "regimes": regimes,
    }
