"""Run a parameter sweep of one strategy on one symbol: grid, indicators, kernel.

>>> data = SweepData.from_file("binance_BTC_USDT_1h.csv.gz")
>>> combos, params, invalid = expand_grid("grid_atr", {"atr_start": [1, 2], "sl_frac": [0.1]})
>>> res = run_sweep(data, AccountConfig(), combos)
>>> res.metrics["sharpe"]

Each combination is one fresh single-symbol account (the given :class:`AccountConfig`'s
capital, leverage, risk limits and sizing, with the combination as its only strategy),
exactly what a replay of that account over the same candles does: the parity tests run
both and compare trades and PnL.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from pydantic import TypeAdapter, ValidationError

from gridflow.config.models import AccountConfig, FeesConfig, MarketSpec
from gridflow.config.strategies import StrategyParams
from gridflow.operators import kernel_layout as kl
from gridflow.operators.engine import account_params
from gridflow.operators.engine_decode import EXIT_REASONS
from gridflow.operators.entry_gate import level_notional
from gridflow.operators.indicators import IndicatorBank
from gridflow.operators.strategies import (
    FUNDING_RATE,
    INPUTS,
    STRATEGIES,
    sizing_indicator,
    strategy_indicators,
)
from gridflow.operators.strategies.filters import entry_gate, gate_key
from gridflow.operators.strategies.quote_kernel import Q_W, quote_params
from gridflow.operators.strategies.stops import stop_indicator
from gridflow.sweep import kernel as sk
from gridflow.sweep.data import SweepData
from gridflow.sweep.metrics import finalize

_STRATEGY = TypeAdapter(StrategyParams)


def expand_grid(strategy: str, space: dict[str, Sequence[Any]],
                base: dict[str, Any] | None = None
                ) -> tuple[list[StrategyParams], list[dict[str, Any]], int]:
    """The cartesian product of a parameter space, validated.

    Parameters
    ----------
    strategy : str
        ``grid_atr``, ``envelope_dca``, ``grid_multi_tf`` or ``grid_trend``.
    space : dict[str, sequence]
        Parameter name -> values tried (names of the strategy's pydantic model).
    base : dict, optional
        Fixed values of the other parameters (defaults otherwise).

    Returns
    -------
    (combos, params, invalid)
        The valid parameter models, the swept values of each (``{name: value}``), and
        how many combinations the model refused (``ema_fast >= ema_slow``...).

    Raises
    ------
    ValueError
        An unknown strategy or parameter name, or an empty value list.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; one of {sorted(STRATEGIES)}")
    fields = set(_STRATEGY.validate_python({"name": strategy}).__class__.model_fields)
    unknown = sorted(set(space) - fields)
    if unknown:
        raise ValueError(f"{strategy}: unknown parameters {unknown}")
    empty = [k for k, v in space.items() if len(v) == 0]
    if empty:
        raise ValueError(f"{strategy}: no values for {empty}")
    names = list(space)
    combos, params, invalid = [], [], 0
    for values in itertools.product(*(space[k] for k in names)):
        doc = {**(base or {}), **dict(zip(names, values)), "name": strategy}
        try:
            combos.append(_STRATEGY.validate_python(doc))
        except ValidationError:
            invalid += 1
            continue
        params.append(dict(zip(names, values)))
    return combos, params, invalid


@dataclass
class IndicatorTable:
    """Distinct indicator outputs of one symbol, computed once over all its candles
    (from ``first``, the candle a replay would start reading at) and shared."""

    data: SweepData
    first: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    matrix: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))

    def ensure(self, names: list[str]) -> None:
        """Compute the outputs of the indicator ``names`` not computed yet."""
        bank_names = [n for n in dict.fromkeys(names)
                      if not any(k == n or k.startswith(n + ".") for k in self.rows)]
        if not bank_names:
            return
        d, f = self.data, self.first
        bank = IndicatorBank(bank_names, d.timeframe)
        vals = bank.update(d.ts[f:], d.open[f:], d.high[f:], d.low[f:], d.close[f:],
                           d.volume[f:])
        T = len(d)
        new = np.full((len(vals), T), np.nan)
        for i, (key, v) in enumerate(vals.items()):
            new[i, f:] = v
            self.rows[key] = len(self.rows)
        self.matrix = new if self.matrix.size == 0 else np.vstack([self.matrix, new])

    def prepare(self, combos: list[StrategyParams]) -> None:
        """Add the gate and input rows ``combos`` read (:meth:`gate_row`,
        :meth:`input_row`; their indicators already computed), so that runs sharing the
        table from several threads only read it."""
        for p in combos:
            self.gate_row(p)
            for key in INPUTS[p.name](p):
                self.input_row(key)

    def input_row(self, key: str) -> int:
        """Row of the quote rule's input ``key``: a computed indicator output, or the
        last settled funding rate (``funding_rate``, from the candles' funding series,
        :attr:`SweepData.funding_rate`), added once.

        Raises
        ------
        KeyError
            ``key`` is no computed indicator output (:meth:`ensure` it first).
        """
        if key == FUNDING_RATE and key not in self.rows:
            self._append(key, np.asarray(self.data.funding_rate, np.float64))
        return self.rows[key]

    def _append(self, key: str, row: np.ndarray) -> None:
        """Add ``row`` (T,) under ``key``: the matrix first, then the index, so a reader
        never finds a key whose row is missing."""
        row = row[None, :]
        self.matrix = row if self.matrix.size == 0 else np.vstack([self.matrix, row])
        self.rows[key] = self.matrix.shape[0] - 1

    def gate_row(self, p) -> int:
        """Row of the gate of ``p``'s entry and regime filters
        (:func:`~gridflow.operators.strategies.filters.entry_gate` over the computed
        indicator outputs; all 1.0 for no filter), computed once per distinct filter set.
        The filters' indicators must be computed (:meth:`ensure`)."""
        key = gate_key(p) or "gate:open"
        if key not in self.rows:
            T = len(self.data)
            values = {k: self.matrix[r] for k, r in self.rows.items()}
            self._append(key, entry_gate(p, values, T))
        return self.rows[key]

    def with_nan_row(self) -> tuple[np.ndarray, int]:
        """The matrix with one NaN row appended (for unused inputs) and its index."""
        T = len(self.data)
        m = self.matrix if self.matrix.size else np.empty((0, T))
        return np.ascontiguousarray(np.vstack([m, np.full((1, T), np.nan)])), m.shape[0]


@dataclass
class SweepResult:
    """Metrics of every combination over one window.

    ``metrics``: :data:`gridflow.sweep.metrics.METRICS` -> (C,) arrays; ``raw`` the
    kernel accumulators (C, MET_W); ``daily`` (C, D) equity at each UTC day's last close
    (when asked); ``trades`` each combination's round trips as dicts named like
    :class:`~gridflow.events.TradeRecord` (when asked); ``t0``/``t1`` the candle index window; ``steps`` candles x combinations;
    ``seconds`` kernel wall time.
    """

    metrics: dict[str, np.ndarray]
    raw: np.ndarray
    daily: np.ndarray | None
    trades: list[list[dict]] | None
    t0: int
    t1: int
    steps: int
    seconds: float


def run_sweep(data: SweepData, account: AccountConfig, combos: list[StrategyParams],
              fees: FeesConfig | None = None, market: MarketSpec | None = None, *,
              start_ms: int | None = None, end_ms: int | None = None, first: int = 0,
              table: IndicatorTable | None = None, daily: bool = False,
              trades: bool = False) -> SweepResult:
    """Run every combination as a fresh single-symbol account over ``[start, end)``.

    Parameters
    ----------
    data : SweepData
    account : AccountConfig
        Capital, leverage, risk limits and sizing (its strategies are ignored).
    combos : list of strategy parameter models
    fees, market : FeesConfig, MarketSpec
        Defaults when omitted (no rounding, no minimums).
    start_ms, end_ms : int, optional
        Traded window (candle open times, ms UTC); candles before ``start_ms`` are
        warm-up (indicators only), as a replay with ``warmup_candles`` reaching back to
        candle ``first``.
    table : IndicatorTable, optional
        Shared indicator cache (must have the same ``first``).
    daily : bool
        Also return each combination's daily equity curve.
    trades : bool
        Also return each combination's round trips (for inspection and parity checks;
        memory grows with candles x combinations).

    Raises
    ------
    ValueError
        Empty window or no combination.
    """
    if not combos:
        raise ValueError("no parameter combination to run")
    fees = fees or FeesConfig()
    market = market or MarketSpec()
    table = table or IndicatorTable(data, first)
    t0 = max(data.index(start_ms, 0), first)
    t1 = data.index(end_ms, len(data))
    if t1 <= t0:
        raise ValueError(f"empty window: candles [{t0}, {t1})")
    sz = account.sizing
    hv_name = sizing_indicator(account)
    table.ensure([n for p in combos for n in strategy_indicators(account, p)])
    gates = [table.gate_row(p) for p in combos]
    inputs = [[table.input_row(key) for key in INPUTS[p.name](p)] for p in combos]
    ind, nan_row = table.with_nan_row()
    C = len(combos)
    xrows = np.full((C, 5), nan_row, np.int64)
    xrows[:, 4] = gates
    qps = np.zeros((C, Q_W))
    sl = np.zeros(C)
    size_base = np.zeros(C)
    hv_row = np.full(C, -1, np.int64)
    time_stop = np.array([float(p.time_stop_candles) for p in combos])
    sl_atr = np.array([float(p.sl_atr) for p in combos])
    atr_row = np.array([table.rows[stop_indicator(p)] if p.sl_atr > 0.0 else nan_row
                        for p in combos], np.int64)
    for k, p in enumerate(combos):
        for j, row in enumerate(inputs[k]):
            xrows[k, j] = row
        qps[k] = quote_params(p, market.price_tick)
        sl[k] = p.sl_frac
        size_base[k] = level_notional(sz, account.capital_quote, p.levels_count,
                                      account.leverage)
        if hv_name:
            hv_row[k] = table.rows[hv_name]
    mp0 = np.zeros((1, kl.M_W))
    mp0[0, kl.M_STEP], mp0[0, kl.M_MIN_AMOUNT], mp0[0, kl.M_MIN_NOTIONAL] = (
        market.amount_step, market.min_amount, market.min_notional)
    vol = np.array([sz.target_vol, sz.max_vol_scale])
    met = np.zeros((C, sk.MET_W))
    n_days = int(data.day[t1 - 1] - data.day[t0]) + 1
    out = sk.SweepOut(met, np.full((C if daily else 0, n_days), np.nan),
                      np.zeros((C if trades else 0, t1 - t0 + 1, sk.TR_W)))
    candles = kl.Candles(np.zeros(len(data), np.int64), data.ts, data.open, data.high,
                         data.low, data.close, data.fund)
    cal = sk.Calendar(data.day, data.hourly, data.hour_idx, data.hour_cum, data.day_cum)
    prm = kl.Params(account_params(account, fees), mp0, np.array([data.tf_ms], np.int64),
                    sk.NO_EQUITY_SNAPSHOTS)
    t = time.perf_counter()
    combos_rec = sk.Combos(ind, xrows, qps, sl, size_base, hv_row, vol, time_stop, sl_atr,
                           atr_row)
    sk.sweep_kernel(candles, cal, combos_rec,
                    sk.Window(first, t0, t1, float(account.capital_quote),
                              account.risk.rolling_window_hours), prm, out)
    seconds = time.perf_counter() - t
    return SweepResult(finalize(met, account.capital_quote, data.tf_ms), met,
                       out.daily if daily else None,
                       _trade_dicts(out.trades, met) if trades else None,
                       t0, t1, (t1 - t0) * C, seconds)


def _trade_dicts(rows: np.ndarray, met: np.ndarray) -> list[list[dict]]:
    out = []
    for k in range(rows.shape[0]):
        n = int(met[k, sk.MET_TRADES])
        trades = []
        for r in rows[k, :n]:
            d = dict(zip(sk.TRADE_FIELDS, r.tolist()))
            for key in ("open_ts_ms", "close_ts_ms", "entries"):
                d[key] = int(d[key])
            d["position_side"] = "long" if d.pop("side") > 0 else "short"
            d["exit_reason"] = EXIT_REASONS[int(d["exit_reason"])]
            trades.append(d)
        out.append(trades)
    return out
