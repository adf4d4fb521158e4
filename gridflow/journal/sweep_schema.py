"""Tables of parameter sweeps and walk-forward runs: ``sweeps``, ``sweep_results``,
``wfo_windows`` and ``wfo_summaries`` (written and read by
:mod:`gridflow.journal.sweep_store`; created with the journal tables by
:func:`gridflow.journal.schema.open_store`).

Money in quote currency, rates and drawdowns as fractions, timestamps ms UTC.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from gridflow.journal.columns import big

#: Metric columns of ``sweep_results`` (float, NaN/inf allowed, except the two counts).
METRICS = ("net_pnl", "total_return", "max_drawdown", "sharpe", "sortino", "calmar",
           "profit_factor", "win_rate", "trades", "max_consecutive_losses", "exposure",
           "fees", "funding", "score")
#: Natural key of ``sweep_results``, also its sort order.
RESULT_KEY = ("sweep_id", "symbol", "window", "phase", "combo_id")
#: Natural key of ``wfo_windows``.
WINDOW_KEY = ("sweep_id", "symbol", "window")


class SweepRow(SQLModel, table=True):
    """One sweep (``kind = "sweep"``) or walk-forward run (``kind = "wfo"``); ``spec_json``
    is its full spec, ``created_at_ms`` wall-clock ms UTC, ``elapsed_s`` its run time."""

    __tablename__ = "sweeps"
    sweep_id: str = Field(primary_key=True)
    kind: str
    strategy: str
    symbols: list[str] = Field(default_factory=list, sa_type=JSON)
    spec_json: str
    n_combos: int
    status: str = "running"
    created_at_ms: int = big()
    elapsed_s: float = 0.0


class SweepResultRow(SQLModel, table=True):
    """Metrics of one combination; key ``(sweep_id, symbol, window, phase, combo_id)``.

    Returns and drawdowns are fractions (``max_drawdown`` positive), ``net_pnl``,
    ``fees`` and ``funding`` (positive = paid) in quote currency, ratios annualised,
    ``exposure`` the fraction of candles with an open position.
    """

    __tablename__ = "sweep_results"
    sweep_id: str = Field(primary_key=True)
    symbol: str = Field(primary_key=True)
    window: int = Field(primary_key=True)
    phase: str = Field(primary_key=True)
    combo_id: int = Field(primary_key=True)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    net_pnl: float | None = None
    total_return: float | None = None
    max_drawdown: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    calmar: float | None = None
    profit_factor: float | None = None
    win_rate: float | None = None
    trades: int = 0
    max_consecutive_losses: int = 0
    exposure: float | None = None
    fees: float | None = None
    funding: float | None = None
    score: float | None = None


class WfoWindowRow(SQLModel, table=True):
    """One walk-forward window, key ``(sweep_id, symbol, window)``: ``params`` of the
    in-sample pick ``best_combo_id``; ``regime`` ``"bull"``/``"bear"``/``"range"``/``"crash"``."""

    __tablename__ = "wfo_windows"
    sweep_id: str = Field(primary_key=True)
    symbol: str = Field(primary_key=True)
    window: int = Field(primary_key=True)
    is_start_ms: int = big()
    is_end_ms: int = big()
    oos_start_ms: int = big()
    oos_end_ms: int = big()
    best_combo_id: int
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    regime: str = ""
    is_sharpe: float | None = None
    oos_sharpe: float | None = None
    is_net_pnl: float | None = None
    oos_net_pnl: float | None = None
    is_trades: int = 0
    oos_trades: int = 0
    oos_max_drawdown: float | None = None


class WfoSummaryRow(SQLModel, table=True):
    """Grade and report of a walk-forward run on one symbol; key ``(sweep_id, symbol)``."""

    __tablename__ = "wfo_summaries"
    sweep_id: str = Field(primary_key=True)
    symbol: str = Field(primary_key=True)
    grade: str
    report: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


