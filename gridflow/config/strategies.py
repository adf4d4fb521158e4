"""Strategy parameter models: one frozen pydantic model per strategy, a discriminated
union on ``name``, per-asset overrides and the symbol allow-list.

Prices are derived from indicators at each candle close; ``_frac`` values are fractions
(``sl_frac = 0.10`` closes a long grid 10 % below its average entry). The old name
``sl_pct`` is still accepted, with a deprecation warning
(:mod:`gridflow.config.renamed`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from gridflow.config.filters import EntryFilter, RegimeFilter
from gridflow.config.renamed import renamed_keys
from gridflow.config.validated import Validation

Side = Literal["long", "short"]


class _Strategy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    symbols: tuple[str, ...] = ()
    """Allow-list: the symbols these parameters were validated for. Empty = every symbol
    of the account not claimed by another strategy."""
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-asset parameter overrides, e.g. ``{"SOL/USDT": {"atr_start": 2.0}}``; each
    merged set is validated like the base parameters."""
    sl_frac: float = Field(0.10, gt=0.0, lt=1.0, allow_inf_nan=False)
    """Stop distance beyond the average entry, a fraction (0.10 = 10 %)."""
    sl_atr: float = Field(0.0, ge=0.0, le=100.0, allow_inf_nan=False)
    """k x ATR initial stop: a position also stops ``k`` ATRs (``atr_<sl_atr_period>``
    of the close whose quotes it opened on, fixed for the cycle) beyond its average
    entry, whichever of this and ``sl_frac`` is tighter; 0 = off."""
    sl_atr_period: int = Field(14, ge=1, le=10_000)
    """ATR period (candles, Wilder 1978) of the k x ATR stop."""
    time_stop_candles: int = Field(0, ge=0, le=100_000)
    """Time stop: a position held through this many candle closes (its entry candle
    counts as one) closes at market at the next open, whatever its PnL; 0 = off."""
    entry_filter: EntryFilter | None = None
    """Indicator conditions for new entries (HV z-score, RSI, MACD histogram); None =
    no filter (:mod:`gridflow.config.filters`)."""
    regime_filter: RegimeFilter | None = None
    """Market regimes (the walk-forward's labels, computed causally) without new
    entries; None = trade in every regime."""
    validated: Validation | None = None
    """The walk-forward that chose these parameters (``gridflow wfo --apply``); None =
    set by hand, not validated."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """Deprecated names (``sl_pct``) under their new ones, in the parameters and in
        each override (:func:`~gridflow.config.renamed.renamed_keys`; ValueError if a
        table gives both)."""
        if not isinstance(data, dict):
            return data
        data = renamed_keys(data, cls.__name__)
        if isinstance(data.get("overrides"), dict):
            data["overrides"] = {sym: renamed_keys(ov, f"{cls.__name__}.overrides[{sym}]")
                                 if isinstance(ov, dict) else ov
                                 for sym, ov in data["overrides"].items()}
        return data

    @property
    def sl_pct(self) -> float:
        """Deprecated name of :attr:`sl_frac` (a fraction, despite the name)."""
        return self.sl_frac

    @property
    def levels_count(self) -> int:
        """Grid levels per cycle (1 = a single-position strategy)."""
        return int(getattr(self, "levels", 1))

    @property
    def is_grid(self) -> bool:
        """True for grid strategies (several levels); drives the session-loss threshold."""
        return self.levels_count > 1

    def for_symbol(self, symbol: str) -> "_Strategy":
        """The parameters for ``symbol`` with its overrides applied (validated).

        Raises
        ------
        pydantic.ValidationError
            If the override is invalid (naming the field).
        """
        ov = self.overrides.get(symbol)
        if not ov:
            return self
        doc = self.model_dump()
        doc.update(ov)
        doc["overrides"] = {}
        return type(self).model_validate(doc)

    @model_validator(mode="after")
    def _check_overrides(self) -> "_Strategy":
        for sym, ov in self.overrides.items():
            if self.symbols and sym not in self.symbols:
                raise ValueError(f"overrides: {sym} is not in this strategy's symbols")
            bad = {"name", "symbols", "overrides", "validated"} & set(ov)
            if bad:
                raise ValueError(f"overrides[{sym}]: {sorted(bad)} cannot be overridden")
        for sym in self.overrides:
            self.for_symbol(sym)  # validate each merged parameter set now
        return self


class GridAtrParams(_Strategy):
    """Grid ATR: level ``i`` (0..levels-1) buys at ``SMA - ATR * (atr_start + i *
    atr_step)`` for a long grid and sells at ``SMA + ATR * (...)`` for a short one; take
    profit closes the whole grid back at the SMA; the stop closes it ``sl_frac`` beyond
    the average entry. ATR per Wilder (1978)."""

    name: Literal["grid_atr"] = "grid_atr"
    side: Side = "long"
    sma_period: int = Field(24, ge=2, le=10_000)
    atr_period: int = Field(14, ge=1, le=10_000)
    levels: int = Field(5, ge=1, le=20)
    atr_start: float = Field(1.0, ge=0.0, le=100.0, allow_inf_nan=False)
    atr_step: float = Field(0.5, ge=0.0, le=100.0, allow_inf_nan=False)


class EnvelopeDcaParams(_Strategy):
    """Envelope DCA: long level ``i`` buys at ``SMA * (1 - offsets[i])``; the short grid
    sells at the mirrored envelope ``SMA * (1 + upper_i)`` with ``upper_i = 1 / (1 -
    offsets[i]) - 1``, so long and short are symmetric in log return. Take profit at
    the SMA, stop ``sl_frac`` beyond the average entry."""

    name: Literal["envelope_dca"] = "envelope_dca"
    side: Side = "long"
    sma_period: int = Field(24, ge=2, le=10_000)
    offsets: tuple[float, ...] = (0.03, 0.05, 0.07)

    @field_validator("offsets")
    @classmethod
    def _offsets(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not 1 <= len(v) <= 20:
            raise ValueError(f"offsets: 1 to 20 envelope offsets, got {len(v)}")
        if any(not (0.0 < x < 1.0) for x in v):
            raise ValueError(f"offsets must be fractions in (0, 1), got {list(v)}")
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"offsets must increase, got {list(v)}")
        return v

    @property
    def levels(self) -> int:
        return len(self.offsets)


class GridMultiTfParams(_Strategy):
    """Multi-timeframe grid: Supertrend on ``htf`` candles sets the direction (up: a long
    grid ATR, down: a short one) of a grid ATR on the base candles; a direction flip
    closes the open grid at the next candle's open."""

    name: Literal["grid_multi_tf"] = "grid_multi_tf"
    htf: Literal["4h", "8h", "12h", "1d"] = "4h"
    supertrend_period: int = Field(10, ge=1, le=1_000)
    supertrend_multiplier: float = Field(3.0, gt=0.0, le=20.0, allow_inf_nan=False)
    sma_period: int = Field(24, ge=2, le=10_000)
    atr_period: int = Field(14, ge=1, le=10_000)
    levels: int = Field(4, ge=1, le=20)
    atr_start: float = Field(1.0, ge=0.0, le=100.0, allow_inf_nan=False)
    atr_step: float = Field(0.5, ge=0.0, le=100.0, allow_inf_nan=False)


class GridTrendParams(_Strategy):
    """Trend-filtered grid: the EMA fast/slow cross sets the direction; a new position
    needs ADX >= ``adx_threshold``; entries at ``EMA_fast -/+ ATR * (atr_start + i *
    atr_step)``; no take profit: an ATR trailing stop ``trail_atr`` ATRs from the best
    price since entry closes it, and so does a direction flip (at the next open)."""

    name: Literal["grid_trend"] = "grid_trend"
    ema_fast: int = Field(20, ge=1, le=10_000)
    ema_slow: int = Field(50, ge=2, le=10_000)
    adx_period: int = Field(14, ge=2, le=1_000)
    adx_threshold: float = Field(25.0, ge=0.0, le=100.0, allow_inf_nan=False)
    atr_period: int = Field(14, ge=1, le=10_000)
    levels: int = Field(1, ge=1, le=20)
    atr_start: float = Field(0.5, ge=0.0, le=100.0, allow_inf_nan=False)
    atr_step: float = Field(0.5, ge=0.0, le=100.0, allow_inf_nan=False)
    trail_atr: float = Field(3.0, gt=0.0, le=50.0, allow_inf_nan=False)
    sl_frac: float = Field(0.08, gt=0.0, lt=1.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _emas(self) -> "GridTrendParams":
        if self.ema_fast >= self.ema_slow:
            raise ValueError(f"ema_fast ({self.ema_fast}) must be < ema_slow ({self.ema_slow})")
        return self


class GridFundingParams(_Strategy):
    """Funding-rate grid (perpetuals with funding data): where the last settled funding
    rate pays a position, a grid ATR on that side: a rate >= ``entry_rate`` (longs pay
    shorts) quotes a short grid above the SMA, a rate <= ``-entry_rate`` a long grid
    below it; levels at ``SMA -/+ ATR * (atr_start + i * atr_step)``, take profit back at
    the SMA, stop ``sl_frac`` beyond the average entry. Between ``exit_rate`` and
    ``entry_rate`` an open position is held without new levels; once ``|rate| <=
    exit_rate`` (funding normalised) it closes at market at the next open (exit reason
    ``SIGNAL``), and a rate that changed sign beyond ``exit_rate`` (the position now
    pays) closes it the same way as a flip (``FLIP``). Rates are fractions per settlement
    (0.0003 = 0.03 %); no quotes while the rate is unknown (before the first settlement,
    or once the last settlement is older than 24 h)."""

    name: Literal["grid_funding"] = "grid_funding"
    sma_period: int = Field(24, ge=2, le=10_000)
    atr_period: int = Field(14, ge=1, le=10_000)
    levels: int = Field(3, ge=1, le=20)
    atr_start: float = Field(1.0, ge=0.0, le=100.0, allow_inf_nan=False)
    atr_step: float = Field(0.5, ge=0.0, le=100.0, allow_inf_nan=False)
    entry_rate: float = Field(0.0003, gt=0.0, le=0.05, allow_inf_nan=False)
    exit_rate: float = Field(0.0001, ge=0.0, le=0.05, allow_inf_nan=False)

    @model_validator(mode="after")
    def _rates(self) -> "GridFundingParams":
        if self.exit_rate >= self.entry_rate:
            raise ValueError(f"exit_rate ({self.exit_rate}) must be < entry_rate "
                             f"({self.entry_rate})")
        return self


def _strategy_tag(v: Any) -> str | None:
    """The ``name`` of a strategy table; ``grid_atr`` when a table omits it."""
    if isinstance(v, dict):
        return v.get("name", "grid_atr")
    return getattr(v, "name", None)


StrategyParams = Annotated[
    Union[
        Annotated[GridAtrParams, Tag("grid_atr")],
        Annotated[EnvelopeDcaParams, Tag("envelope_dca")],
        Annotated[GridMultiTfParams, Tag("grid_multi_tf")],
        Annotated[GridTrendParams, Tag("grid_trend")],
        Annotated[GridFundingParams, Tag("grid_funding")],
    ],
    Discriminator(_strategy_tag),
]
