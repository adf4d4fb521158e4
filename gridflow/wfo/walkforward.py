"""Rolling walk-forward optimisation of one strategy's parameter grid on one symbol.

Every window optimises on its in-sample (IS) span, then trades the chosen combination on
the following out-of-sample (OOS) span; the OOS daily equity curves are stitched into one
track record that is judged by :func:`gridflow.wfo.grade.grade`. :func:`run_window`
runs one window on its own and :func:`assemble` combines the windows (a distributed run,
``gridflow.dataflows.sweep``, runs the windows in parallel); :func:`run_walkforward` is
both in one call. Settings and windows: :mod:`gridflow.wfo.config`.

>>> data = SweepData.from_file("binance_BTC_USDT_1h.csv.gz")
>>> res = run_walkforward(data, AccountConfig(), "grid_atr",
...                       {"atr_start": [1, 2, 3], "sl_frac": [0.1, 0.2]},
...                       WfoConfig(is_days=180, oos_days=90))
>>> res.report["grade"], res.report["oos_sharpe"]

Conventions: returns and drawdowns are fractions, Sharpe ratios annualised with
``sqrt(365)`` (daily returns) unless called per period, PnL in quote currency and
timestamps ms UTC.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from gridflow import metrics as gm
from gridflow.config.models import AccountConfig, FeesConfig, MarketSpec
from gridflow.config.strategies import StrategyParams
from gridflow.sweep import METRICS, IndicatorTable, SweepData, expand_grid, run_sweep
from gridflow.wfo.config import (
    OBJECTIVES,
    Objective,
    WfoConfig,
    Window,
    neighbours,
    numeric_params,
    window_combos,
    windows,
)
from gridflow.wfo.grade import grade_score, window_score
from gridflow.wfo.regimes import REGIMES, regime_label
from gridflow.wfo.stats import (
    annualised_sharpe,
    block_bootstrap_pvalue,
    deflated_sharpe_ratio,
    max_drawdown,
)

__all__ = ["ANNUAL_DAYS", "OBJECTIVES", "Objective", "Progress", "WfoConfig", "WfoResult",
           "Window", "WindowResult", "assemble", "run_walkforward", "run_window", "windows",
           "window_combos"]

ANNUAL_DAYS = 365
"""Daily periods per year of the Sharpe ratios."""

Progress = Callable[[int, int], None]


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


def _curve_figures(phase: str, daily_eq: np.ndarray, capital: float) -> dict[str, float]:
    """``{phase}_sharpe`` and ``{phase}_net_pnl`` of the chosen combination, both from its
    daily equity over the phase (quote, one sample per UTC day), starting at ``capital``.

    One curve and one window for both (:mod:`gridflow.metrics`, "same equity, same
    window"): the Sharpe of :func:`gridflow.metrics.simple_returns` from the capital and
    ``last - capital``. So a positive net PnL never comes with a negative Sharpe (a small
    positive Sharpe with a loss remains possible: volatility drag). The sweep's
    per-combination ``sharpe`` (the result rows) starts at the first day's close and
    leaves out the first day's change; in a window where that day moved most, the two
    Sharpes differ in sign (an OOS Sharpe of -0.03 beside a net PnL of +441.56 USDT).
    """
    r = gm.simple_returns(daily_eq, capital)
    last = float(daily_eq[-1]) if daily_eq.size else capital
    return {f"{phase}_sharpe": float(gm.sharpe(r, ANNUAL_DAYS)),
            f"{phase}_net_pnl": last - capital}


@dataclass
class WindowResult:
    """Outcome of one window (:func:`run_window`): what :func:`assemble` combines, and
    what a distributed run ships between workers (picklable).

    Attributes
    ----------
    window : dict
        The window's row of :attr:`WfoResult.windows`.
    rows : list of dict
        Its :attr:`WfoResult.results` rows: IS then OOS, each by combination id.
    curve : (int64 (d,), float64 (d,))
        OOS daily equity (quote) of the best combination, each sample timed at that
        day's last candle close (ms UTC).
    trials : float64 (C,)
        Per-period (daily, not annualised) IS Sharpe ratio of every combination: this
        window's trials of the deflated Sharpe ratio.
    steps : int
        Candles x combinations swept.
    seconds, wall_seconds : float
        Kernel time and wall time of the window.
    """

    window: dict
    rows: list[dict]
    curve: tuple[np.ndarray, np.ndarray]
    trials: np.ndarray
    steps: int
    seconds: float
    wall_seconds: float


def run_window(data: SweepData, account: AccountConfig, strategy: str,
               space: dict[str, Sequence[Any]], cfg: WfoConfig | None, window: Window,
               combos: list[StrategyParams] | None = None, params: list[dict] | None = None,
               table: IndicatorTable | None = None, fees: FeesConfig | None = None,
               market: MarketSpec | None = None, base: dict[str, Any] | None = None, *,
               tick: Callable[[int, int], None] | None = None) -> WindowResult:
    """One walk-forward window on its own, as described in :func:`run_walkforward`: IS
    sweep of every combination, the best by ``cfg.metric``, OOS sweep of every
    combination, the best alone with daily equity over each phase (its Sharpe and net
    PnL per phase), its stability and the OOS regime.

    Parameters
    ----------
    data, account, strategy, space, cfg, fees, market, base
        As :func:`run_walkforward`.
    window : Window
        One of :func:`windows` of ``(data, cfg)``.
    combos, params : list, optional
        The grid (:func:`expand_grid` of ``strategy``, ``space``, ``base``; expanded
        when either is None).
    table : IndicatorTable, optional
        Shared indicators, ``first`` 0. Threads may share one only when it already holds
        the indicators of every :func:`window_combos` (reading is thread-safe, adding
        missing ones is not).
    tick : callable(steps, unplanned), optional
        Called after each sweep with its steps and the planned neighbour steps that will
        not run (IS candles x missing neighbours); ``(0, unplanned)`` without any
        neighbour.

    Returns
    -------
    WindowResult

    Raises
    ------
    ValueError
        Every combination is invalid, or a table not starting at candle 0.
    """
    wall, cfg, w = time.perf_counter(), cfg or WfoConfig(), window
    if combos is None or params is None:
        combos, params, invalid = expand_grid(strategy, space, base)
        if not combos:
            raise ValueError(f"{strategy}: all {invalid} parameter combinations are invalid")
    table = IndicatorTable(data, first=0) if table is None else table
    if table.first != 0:
        raise ValueError(f"the indicator table must start at candle 0, not {table.first}")
    C = len(combos)
    numeric = numeric_params(space)
    max_nb = len(numeric) * len(cfg.perturbations)
    n_is = data.index(w.is_end_ms, len(data)) - data.index(w.is_start_ms, 0)
    spent = {"steps": 0, "seconds": 0.0}

    def sweep(cs: list, lo: int, hi: int, daily: bool = False, unplanned: int = 0):
        res = run_sweep(data, account, cs, fees, market, start_ms=lo, end_ms=hi, table=table,
                        daily=daily)
        spent["steps"] += res.steps
        spent["seconds"] += res.seconds
        if tick is not None:
            tick(res.steps, unplanned)
        return res

    is_res = sweep(combos, w.is_start_ms, w.is_end_ms)
    is_m = is_res.metrics
    is_score = _scores(is_m, cfg.min_trades)
    obj = _objective(is_m, is_score, cfg.metric)
    best = int(np.argmax(obj))
    oos_res = sweep(combos, w.oos_start_ms, w.oos_end_ms)
    day_res = sweep([combos[best]], w.oos_start_ms, w.oos_end_ms, daily=True)
    nbs = neighbours(combos[best], numeric, cfg.perturbations)
    stab, unplanned = math.nan, n_is * (max_nb - len(nbs))
    if nbs:
        nb_m = sweep(nbs, w.is_start_ms, w.is_end_ms, unplanned=unplanned).metrics
        stab = _stability(float(obj[best]),
                          _objective(nb_m, _scores(nb_m, cfg.min_trades), cfg.metric))
    elif unplanned and tick is not None:
        tick(0, unplanned)
    t0, t1 = oos_res.t0, oos_res.t1
    close_ts = _day_close_ts(data, t0, t1)  # one per daily equity sample
    eq = day_res.daily[0, : close_ts.size]
    is_day = sweep([combos[best]], w.is_start_ms, w.is_end_ms, daily=True)
    is_eq = is_day.daily[0, : _day_close_ts(data, is_res.t0, is_res.t1).size]
    capital = float(account.capital_quote)
    oos_m = oos_res.metrics
    oos_score = _scores(oos_m, cfg.min_trades)
    rows = []
    for phase, m, sc in (("is", is_m, is_score), ("oos", oos_m, oos_score)):
        cols = {k: m[k].tolist() for k in METRICS}
        sc_list = sc.tolist()
        for c in range(C):
            rows.append({"window": w.index, "phase": phase, "combo_id": c,
                         "params": dict(params[c]), **{k: cols[k][c] for k in METRICS},
                         "score": sc_list[c]})
    win_row = {
        "index": w.index, "window": w.index,
        "is_start_ms": w.is_start_ms, "is_end_ms": w.is_end_ms,
        "oos_start_ms": w.oos_start_ms, "oos_end_ms": w.oos_end_ms,
        "best_combo_id": best, "params": dict(params[best]),
        "regime": regime_label(data.close[t0:t1], data.tf_ms),
        **_curve_figures("is", is_eq, capital), **_curve_figures("oos", eq, capital),
        "is_trades": int(is_m["trades"][best]), "oos_trades": int(oos_m["trades"][best]),
        "oos_max_drawdown": float(oos_m["max_drawdown"][best]),
        "score": float(is_score[best]), "stability": stab, "neighbours": len(nbs),
    }
    return WindowResult(win_row, rows, (close_ts, eq), is_m["sharpe"] / math.sqrt(ANNUAL_DAYS),
                        int(spent["steps"]), float(spent["seconds"]),
                        time.perf_counter() - wall)


def run_walkforward(data: SweepData, account: AccountConfig, strategy: str,
                    space: dict[str, Sequence[Any]], cfg: WfoConfig | None = None,
                    fees: FeesConfig | None = None, market: MarketSpec | None = None,
                    base: dict[str, Any] | None = None,
                    progress: Progress | None = None,
                    live: SweepData | None = None) -> WfoResult:
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
    capital, :func:`gridflow.metrics.simple_returns`) and compounded from the capital.
    Per window, the best combination is swept alone once more over each phase with daily
    equity: the window's Sharpe and net PnL of a phase come from that one curve (the
    result rows keep the sweep's metrics, whose Sharpe starts at the first day's close).

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
    live : SweepData, optional
        The symbol on the venue that will trade it: the cross-venue transfer is
        measured and graded (see :func:`assemble`).

    Returns
    -------
    WfoResult
        ``report`` keys: ``oos_sharpe`` (annualised, stitched daily returns),
        ``oos_total_return``, ``oos_max_drawdown``, ``oos_net_pnl`` (all four of the
        stitched curve, quote), ``oos_net_pnl_windows`` (the windows' net PnL summed,
        each from the capital, not compounded), ``oos_trades`` (sum over the best
        combinations), ``oos_days``, ``consistency``
        (share of windows with OOS net PnL > 0), ``oos_is_ratio`` (mean OOS / IS Sharpe
        of the best over windows with IS Sharpe > 0, a NaN OOS Sharpe counting 0; NaN if
        none), ``dsr`` (``dsr_sr0``, ``dsr_trials``: per-day IS Sharpes of all
        combinations of all windows), ``mc_pvalue``, ``stability`` (mean over windows,
        NaN ignored), ``regimes`` (count per label), ``n_windows``, ``n_combos``,
        ``invalid_combos``, ``steps``, ``seconds`` (kernel), ``wall_seconds``,
        ``symbol``, ``timeframe``, ``strategy``, ``config``, ``grade`` (letter),
        ``grade_score`` (0..100), ``grade_points`` (per criterion), ``grade_reasons``
        (:func:`~gridflow.wfo.grade.grade_score`). ``windows`` rows: ``index`` (= ``window``), the four bounds,
        ``best_combo_id``, ``params``, ``regime``, ``is_/oos_sharpe`` and
        ``is_/oos_net_pnl`` (each phase's pair from the best's daily equity starting at
        the capital, see :func:`_curve_figures`), ``is_/oos_trades``,
        ``oos_max_drawdown``, ``score`` (IS :func:`window_score` of the best),
        ``stability``, ``neighbours``.

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
    table = IndicatorTable(data, first=0)
    max_nb = len(numeric_params(space)) * len(cfg.perturbations)
    spans = [tuple(data.index(hi, len(data)) - data.index(lo, 0) for lo, hi in
                   ((w.is_start_ms, w.is_end_ms), (w.oos_start_ms, w.oos_end_ms))) for w in wins]
    spent = {"steps": 0, "total": sum(ni * (C + max_nb + 1) + no * (C + 1) for ni, no in spans)}

    def tick(steps: int, unplanned: int) -> None:
        spent["steps"] += steps
        spent["total"] -= unplanned
        if progress is not None:
            progress(spent["steps"], spent["total"])

    results = [run_window(data, account, strategy, space, cfg, w, combos, params, table, fees,
                          market, base, tick=tick) for w in wins]
    return assemble(data, cfg, results, account, strategy, params, invalid, started=wall,
                    live=live, fees=fees, market=market, base=base)


def assemble(data: SweepData, cfg: WfoConfig | None, results: list[WindowResult],
             account: AccountConfig, strategy: str, params: list[dict], invalid: int = 0,
             started: float | None = None, *, live: SweepData | None = None,
             fees: FeesConfig | None = None, market: MarketSpec | None = None,
             base: dict[str, Any] | None = None) -> WfoResult:
    """The :class:`WfoResult` of a run from its windows (:func:`run_window`, run here or
    anywhere else): the stitched OOS curve, the report and its grade, exactly as
    :func:`run_walkforward`.

    Parameters
    ----------
    data : SweepData
        The symbol's data (names the report, recomputes the windows to check).
    cfg : WfoConfig or None
    results : list of WindowResult
        One per window of :func:`windows` ``(data, cfg)``, in any order.
    account : AccountConfig
        Its capital starts the stitched curve.
    strategy : str
    params : list of dict
        Swept values of each combination id.
    invalid : int
        Combinations the strategy refused.
    started : float, optional
        ``time.perf_counter()`` at the start of the run: ``wall_seconds`` is measured from
        it; without it, the windows' wall seconds summed plus this assembly's.
    live : SweepData, optional
        The symbol on the venue that will trade it (``cfg.transfer``): the last window's
        parameters (with ``base``, ``fees``, ``market``) are replayed on its last
        ``cfg.transfer_days`` (default ``oos_days``) and the report gets the
        :func:`~gridflow.wfo.transfer.transfer_report` figures, graded.

    Raises
    ------
    ValueError
        A window missing or given twice.
    """
    wall, cfg = time.perf_counter(), cfg or WfoConfig()
    results = sorted(results, key=lambda r: r.window["index"])
    n = len(windows(data, cfg))
    if [r.window["index"] for r in results] != list(range(n)):
        raise ValueError(f"expected windows 0..{n - 1}, got "
                         f"{[r.window['index'] for r in results]}")
    capital = float(account.capital_quote)
    returns = np.concatenate([gm.simple_returns(r.curve[1], capital) for r in results])
    with np.errstate(invalid="ignore", over="ignore"):
        equity = capital * np.concatenate(([1.0], np.cumprod(1.0 + returns)))
    stitched_ts = np.concatenate(([results[0].window["oos_start_ms"]],
                                  *(r.curve[0] for r in results))).astype(np.int64)
    win_rows = [r.window for r in results]
    report = _report(cfg, win_rows, returns, equity, np.concatenate([r.trials for r in results]),
                     capital)
    report.update({
        "n_windows": n, "n_combos": len(params), "invalid_combos": int(invalid),
        "steps": int(sum(r.steps for r in results)),
        "seconds": float(sum(r.seconds for r in results)),
        "wall_seconds": (time.perf_counter() - started if started is not None else
                         sum(r.wall_seconds for r in results) + time.perf_counter() - wall),
        "symbol": data.symbol, "timeframe": data.timeframe, "strategy": strategy,
        "config": cfg.model_dump(mode="json"),
    })
    if live is not None:
        from gridflow.wfo.transfer import transfer_report

        report.update(transfer_report(
            data, live, account, strategy, win_rows[-1]["params"],
            cfg.transfer_days or cfg.oos_days, cfg.transfer.get(data.symbol, live.symbol),
            fees, market, base))
    g = grade_score(report)
    report.update(grade=g.letter, grade_reasons=g.reasons, grade_score=g.score,
                  grade_points=g.points)
    return WfoResult(report, win_rows, [row for r in results for row in r.rows],
                     [dict(p) for p in params], (stitched_ts, equity.astype(np.float64)))


def _report(cfg: WfoConfig, win_rows: list[dict], returns: np.ndarray, equity: np.ndarray,
            trials: np.ndarray, capital: float) -> dict:
    """The statistics of the stitched OOS record and the per-window aggregates.

    ``oos_sharpe``, ``oos_total_return``, ``oos_max_drawdown`` and ``oos_net_pnl`` are
    all of the stitched curve ``equity`` (quote, compounded from ``capital``);
    ``oos_net_pnl_windows`` sums the windows' own net PnL, each a fresh account of the
    capital (not compounded): the two differ, in sign too (+50 % then -40 % is
    +10 % of the capital summed but -10 % compounded)."""
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
        "oos_net_pnl": float(equity[-1] - capital),
        "oos_net_pnl_windows": float(sum(r["oos_net_pnl"] for r in win_rows)),
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
