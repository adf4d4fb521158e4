"""Typed configuration: frozen pydantic models, defaults live only here.

Names carry their unit: ``_ms`` for milliseconds, ``_quote`` for quote currency;
``_frac``/``_ratio``/``_fee``/``_limit`` values and rates without a unit suffix are
**fractions** (0.10 = 10 %); a name ending ``_pct`` would be a percent (0-100), as in the
run report, and no setting is one. The fractions once named ``_pct`` (``sl_pct``,
``rolling_drawdown_pct``, ``max_drawdown_pct``) are still accepted under those names,
with a deprecation warning (:mod:`gridflow.config.renamed`).
Unknown fields are refused everywhere, so a typo in a TOML preset is an error, not
a silently ignored setting.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gridflow.config.candles import CandleRules
from gridflow.config.live import LiveConfig
from gridflow.config.logging_config import LoggingConfig
from gridflow.config.preset_source import TomlPresetSource
from gridflow.config.renamed import renamed_keys
from gridflow.config.strategies import (
    EnvelopeDcaParams,
    GridAtrParams,
    GridFundingParams,
    GridMultiTfParams,
    GridTrendParams,
    StrategyParams,
)
from gridflow.event_kinds import EventKind
from gridflow.indicator_names import parse_name
from gridflow.isotime import iso_utc
from gridflow.timeframes import timeframe_to_ms

__all__ = [
    "AccountConfig", "DataFile", "EnvelopeDcaParams", "FeesConfig", "FundingFile", "GridAtrParams",
    "GridFundingParams", "GridMultiTfParams", "GridTrendParams", "GridflowConfig", "MarketSpec", "RiskConfig",
    "SizingConfig", "StrategyParams",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RiskConfig(_Model):
    """Account-level risk limits. Fractions of equity unless the name says otherwise.

    Every bound is checked at start; a bad value is refused with the field's name.
    """

    max_margin_ratio: float = Field(0.70, gt=0.0, le=1.0, allow_inf_nan=False)
    """Used margin (sum of ``|amount| * avg_entry / leverage``) over equity, after the order."""
    session_loss_grid: float = Field(0.25, ge=0.01, le=0.9, allow_inf_nan=False)
    """Kill switch when the grid strategies' session PnL falls this fraction of their
    allocated capital below zero (manual reset)."""
    session_loss_single: float = Field(0.10, ge=0.01, le=0.9, allow_inf_nan=False)
    """Same for single-position strategies (``levels == 1``)."""
    daily_loss_limit: float = Field(0.10, ge=0.01, le=0.5, allow_inf_nan=False)
    """Kill switch when equity falls this fraction below its 00:00 UTC value; it clears
    itself at the next 00:00 UTC."""
    rolling_drawdown_frac: float = Field(0.20, ge=0.05, le=0.9, allow_inf_nan=False)
    """Kill switch when equity falls this fraction below its peak of the last
    ``rolling_window_hours`` (hourly marks and the current equity; manual reset)."""
    rolling_window_hours: int = Field(24, ge=1, le=720)
    max_drawdown_frac: float = Field(0.40, ge=0.05, le=0.9, allow_inf_nan=False)
    """Kill switch on the drawdown from the all-time equity peak, a fraction (manual
    reset, which also restarts the peak)."""
    max_open_positions: int = Field(10, ge=1, le=1_000)
    correlation_threshold: float = Field(1.0, ge=0.0, le=1.0, allow_inf_nan=False)
    """No new position when ``|corr|`` of log returns with an open position's symbol
    exceeds this (1.0 disables the guard)."""
    correlation_window_hours: int = Field(168, ge=2, le=2_000)
    cooldown_candles: int = Field(0, ge=0, le=10_000)
    """Candles of a symbol without new entries after a stop loss on it."""
    max_daily_entries: int = Field(0, ge=0, le=1_000)
    """New positions a symbol may open per UTC day (the first fill of a cycle; further
    grid levels of the open position do not count); 0 turns the rule off."""
    max_symbol_exposure: float = Field(0.0, ge=0.0, le=100.0, allow_inf_nan=False)
    """Per-asset cap beside the account-wide margin cap: one symbol's notional (its
    position at the average entry, its other resting entries live, plus the order) over
    equity, after the order, a multiple of equity (0.5 = half the equity; above 1 only
    with leverage); 0 turns the rule off."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """``rolling_drawdown_pct`` / ``max_drawdown_pct`` (deprecated) under their new
        names (ValueError if a table gives both names of one field)."""
        return renamed_keys(data, "risk") if isinstance(data, dict) else data

    @property
    def rolling_drawdown_pct(self) -> float:
        """Deprecated name of :attr:`rolling_drawdown_frac` (a fraction)."""
        return self.rolling_drawdown_frac

    @property
    def max_drawdown_pct(self) -> float:
        """Deprecated name of :attr:`max_drawdown_frac` (a fraction)."""
        return self.max_drawdown_frac


class SizingConfig(_Model):
    """How much each grid level buys; every mode is then capped by the margin rule.

    * ``equal``: margin per level = capital / symbols / levels (notional x leverage);
    * ``risk``: the whole grid, if filled, loses ``risk_per_trade`` of equity at the stop:
      notional per level = risk_per_trade * equity / (levels * sl_frac);
    * ``fixed_notional``: ``notional_per_level_quote`` per level;
    * ``vol_parity``: the ``equal`` notional scaled by ``target_vol / hv`` (annualised
      historical volatility of ``vol_window`` candles), at most ``max_vol_scale`` times.
    """

    mode: Literal["equal", "risk", "fixed_notional", "vol_parity"] = "equal"
    risk_per_trade: float = Field(0.01, ge=0.001, le=0.10, allow_inf_nan=False)
    notional_per_level_quote: float = Field(100.0, gt=0.0, allow_inf_nan=False)
    target_vol: float = Field(0.5, ge=0.01, le=5.0, allow_inf_nan=False)
    vol_window: int = Field(168, ge=2, le=10_000)
    max_vol_scale: float = Field(3.0, ge=1.0, le=20.0, allow_inf_nan=False)


class FeesConfig(_Model):
    """Trading costs as fractions of notional. The maker fee applies to entries and
    take profits filled along the candle's path; the taker fee to everything filled at
    the open (orders the open gapped through), to stops, flips and flattens; slippage
    only to stops, flips and flattens (README, *Fill model*, rule 20). In a config, a fee
    left unset is the venue's regular tier (``live.exchange.id``,
    :data:`~gridflow.config.venues.VENUES`); the defaults here are Binance USDT-M's."""

    maker_fee: float = Field(0.0002, ge=-0.001, le=0.01, allow_inf_nan=False)
    taker_fee: float = Field(0.0005, ge=0.0, le=0.01, allow_inf_nan=False)
    slippage: float = Field(0.0005, ge=0.0, le=0.05, allow_inf_nan=False)


class MarketSpec(_Model):
    """Exchange precision and limits of one symbol (ccxt market ``precision`` and
    ``limits``). Zero disables a rule. Amounts in base, prices and notional in quote."""

    amount_step: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    price_tick: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    min_amount: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    min_notional: float = Field(0.0, ge=0.0, allow_inf_nan=False)


class AccountConfig(_Model):
    """One capital pool with its risk limits: the engine's consistency boundary.

    ``strategies`` assigns each symbol to exactly one strategy (its allow-list); a
    symbol of ``symbols`` that no strategy allows is not traded. ``strategy`` (one
    strategy for every symbol) is accepted as a shorthand.
    """

    name: str = Field("demo", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    capital_quote: float = Field(10_000.0, gt=0, allow_inf_nan=False)
    leverage: float = Field(1.0, ge=1.0, le=125.0, allow_inf_nan=False)
    symbols: tuple[str, ...] = ()
    strategies: tuple[StrategyParams, ...] = (GridAtrParams(),)
    risk: RiskConfig = RiskConfig()
    sizing: SizingConfig = SizingConfig()
    indicators: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "strategy" in data:
            data = dict(data)
            if "strategies" in data:
                raise ValueError("give either strategy or strategies, not both")
            data["strategies"] = (data.pop("strategy"),)
        return data

    @property
    def strategy(self) -> StrategyParams:
        """The first strategy (the only one for single-strategy accounts)."""
        return self.strategies[0]

    @field_validator("indicators")
    @classmethod
    def _indicator_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        """Extra indicators computed for this account's symbols (``rsi_14``,
        ``supertrend_10_3@4h``); each name's grammar and kind are checked here, at load;
        a parameter out of range (``sma_0``) is refused when the run's plan builds it."""
        return tuple(parse_name(n).name for n in v)

    @field_validator("symbols")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"symbols must be unique, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _allow_lists(self) -> "AccountConfig":
        if not self.strategies:
            raise ValueError("strategies: at least one strategy is required")
        seen: dict[str, int] = {}
        for i, st in enumerate(self.strategies):
            for sym in st.symbols:
                if sym in seen:
                    raise ValueError(
                        f"strategies: {sym} is allowed by strategies {seen[sym]} and {i}; "
                        "one grid per symbol"
                    )
                seen[sym] = i
        if sum(1 for st in self.strategies if not st.symbols) > 1:
            raise ValueError("strategies: at most one strategy may omit its symbols list")
        return self

    def assignment(self, symbols: list[str] | tuple[str, ...]) -> dict[str, StrategyParams]:
        """Symbol -> its strategy parameters (overrides applied), for the symbols given.

        A symbol no strategy allows is left out (not traded).
        """
        out: dict[str, StrategyParams] = {}
        fallback = next((st for st in self.strategies if not st.symbols), None)
        for sym in symbols:
            st = next((s for s in self.strategies if sym in s.symbols), fallback)
            if st is not None:
                out[sym] = st.for_symbol(sym)
        return out


class AlertsConfig(_Model):
    """Alert throttling (event time). Kill switch alerts default to no cooldown."""

    cooldown_ms: dict[str, int] = Field(
        default_factory=lambda: {EventKind.DATA_GAP.value: 3_600_000,
                                 EventKind.ORDER_DENIED.value: 3_600_000}
    )
    default_cooldown_ms: int = Field(300_000, ge=0)
    timeout_s: float = Field(5.0, gt=0.0, le=60.0, allow_inf_nan=False)
    queue_size: int = Field(1_000, ge=1, le=1_000_000)


class DataFile(_Model):
    """A candle file (gzip or plain CSV ``timestamp,open,high,low,close,volume``).

    ``symbol`` and ``timeframe`` default to what the name says
    (``binance_BTC_USDT_1h.csv.gz`` is BTC/USDT 1h)."""

    path: str
    symbol: str | None = None
    timeframe: str | None = None

    @field_validator("timeframe")
    @classmethod
    def _tf(cls, v: str | None) -> str | None:
        if v is not None:
            timeframe_to_ms(v)
        return v


class FundingFile(_Model):
    """Funding rates of a perpetual (gzip or plain CSV ``timestamp,funding_rate``, see
    :mod:`gridflow.data.funding`). A symbol with a funding file is traded as a perpetual:
    positions open at each settlement pay (or receive) ``side * amount * close * rate``.
    ``symbol`` defaults to what the name says (``binanceusdm_BTC_USDT_funding.csv.gz``)."""

    path: str
    symbol: str | None = None


def _bundled_files() -> tuple[DataFile, ...]:
    from gridflow.config.bundled import bundled_candle_files

    return tuple(DataFile(path=str(p)) for p in bundled_candle_files())


class GridflowConfig(BaseSettings):
    """The whole effective configuration of a run.

    Sources, strongest first: explicit keyword arguments (CLI flags), environment
    variables with prefix ``GRIDFLOW_`` (``GRIDFLOW_DB_URL``), the TOML preset, the
    defaults here. Build it with :func:`gridflow.config.load_config`.

    Raises
    ------
    pydantic.ValidationError
        Naming the field, for any out-of-range or unknown setting.
    """

    model_config = SettingsConfigDict(env_prefix="GRIDFLOW_", env_nested_delimiter="__",
                                      extra="forbid", frozen=True)

    run_id: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_\-]*$")
    db_url: str = "sqlite:///gridflow.db"
    chunk_size: int = Field(2_000, ge=1, le=1_000_000)
    equity_every_ms: int = Field(3_600_000, ge=60_000)
    pace_s: float = Field(0.0, ge=0.0, le=60.0, allow_inf_nan=False)
    command_poll_s: float = Field(0.05, ge=0.005, le=10.0, allow_inf_nan=False)
    """Seconds between polls of the command table."""
    restore_from_journal: bool = False
    """On start, continue each account from this run's journaled summary (kill switches
    stay on, counters go on): for paper/live restarts without Bytewax recovery state.
    Off for backtests, which start from scratch."""
    start_ms: int | None = Field(None, ge=0, le=4_102_444_800_000)
    """Replay window start, candle open time in ms UTC or an ISO date, 1970..2100."""
    end_ms: int | None = Field(None, ge=0, le=4_102_444_800_000)
    """Replay window end (excluded), as ``start_ms``."""
    data: tuple[DataFile, ...] = Field(default_factory=_bundled_files)
    candles: CandleRules = CandleRules()
    """Plausibility bounds of candle prices (``[candles]``: ``max_price_quote`` in quote
    currency, ``max_jump_factor`` a factor of the last accepted close); the same for
    replay and paper/live. Timestamps must be ms between 2009-01-03 and 2100-01-01
    (fixed, :mod:`gridflow.candle_rules`)."""
    fees: FeesConfig = FeesConfig()
    funding: tuple[FundingFile, ...] = ()
    """Funding rate files of the symbols traded as perpetuals (none: spot, no funding)."""
    markets: dict[str, MarketSpec] = Field(default_factory=dict)
    accounts: tuple[AccountConfig, ...] = (AccountConfig(),)
    apprise_urls: SecretStr = SecretStr("")
    """Apprise URLs (comma or space separated; ``GRIDFLOW_APPRISE_URLS``). They carry
    tokens: kept secret, never logged or journaled. Empty = no notifications."""
    alerts: AlertsConfig = AlertsConfig()
    warmup_candles: int = Field(0, ge=0, le=100_000)
    """Candles before ``start_ms`` fed to the indicators but never traded (replay); the
    live flow takes ``live.warmup_candles``."""
    live: LiveConfig = LiveConfig()
    """Live / paper trading through ccxt (:mod:`gridflow.dataflows.live`)."""
    logging: LoggingConfig = LoggingConfig()
    """Levels per logger, JSON lines, a size-rotated gzip-archived file
    (:mod:`gridflow.logs`); not part of the run's identity."""

    def apprise_url_list(self) -> list[SecretStr]:
        """The Apprise URLs, one SecretStr each."""
        raw = self.apprise_urls.get_secret_value().replace(",", " ").split()
        return [SecretStr(u) for u in raw]

    @field_validator("data", mode="before")
    @classmethod
    def _data_paths(cls, v: object) -> object:
        """A plain string entry is a path (or a store spec ``exchange:symbol@tf``)."""
        if isinstance(v, (list, tuple)):
            return tuple({"path": x} if isinstance(x, str) else x for x in v)
        return v

    @field_validator("start_ms", "end_ms", mode="before")
    @classmethod
    def _date(cls, v: object) -> object:
        """Accept ms UTC or an ISO date/time string (``"2023-01-01"``, UTC)."""
        if isinstance(v, str):
            from datetime import datetime, timezone

            try:
                dt = datetime.fromisoformat(v)
            except ValueError as exc:
                raise ValueError(f"expected ms UTC or an ISO date such as 2023-01-01, got {v!r}") from exc
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return int(dt.timestamp() * 1000)
        return v

    @model_validator(mode="before")
    @classmethod
    def _venue_fees(cls, data: Any) -> Any:
        """Fees the config leaves unset are the venue's regular tier (``VENUES``)."""
        if not isinstance(data, dict):
            return data
        from gridflow.config.venues import VENUES

        live = data.get("live")
        ex = getattr(live, "exchange", None) if not isinstance(live, dict) else live.get(
            "exchange")
        vid = getattr(ex, "id", None) if not isinstance(ex, dict) else ex.get("id")
        venue = VENUES.get(vid or "binanceusdm")
        fees = data.get("fees")
        if venue is None or not (fees is None or isinstance(fees, dict)):
            return data
        fees = dict(fees or {})
        fees.setdefault("maker_fee", venue.maker_fee)
        fees.setdefault("taker_fee", venue.taker_fee)
        return {**data, "fees": fees}

    @model_validator(mode="after")
    def _accounts(self) -> "GridflowConfig":
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ValueError(f"end_ms ({iso_utc(self.end_ms)}) must be after start_ms "
                             f"({iso_utc(self.start_ms)})")
        names = [a.name for a in self.accounts]
        if not names:
            raise ValueError("accounts: at least one account is required")
        if len(set(names)) != len(names):
            raise ValueError(f"accounts: names must be unique, got {names}")
        if not math.isfinite(self.pace_s):
            raise ValueError("pace_s must be finite")
        if self.live.exchange.market_type == "spot":  # no borrowing: long only
            from gridflow.config.venues import short_field

            for i, a in enumerate(self.accounts):
                if a.leverage != 1.0:
                    raise ValueError(
                        f"accounts[{i}].leverage = {a.leverage:g}: a spot market "
                        f"(live.exchange.market_type = 'spot', {self.live.exchange.id}) "
                        "trades without leverage: set it to 1")
                for j, p in enumerate(a.strategies):
                    bad = short_field(p)
                    if bad is not None:
                        raise ValueError(
                            f"accounts[{i}].strategies[{j}].{bad[0]} = {bad[1]!r}: it sells "
                            f"short, which live.exchange.market_type = 'spot' "
                            f"({self.live.exchange.id}) cannot (long-only strategies: "
                            "grid_atr and envelope_dca with side = 'long')")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlPresetSource(settings_cls))


def resolve_data_path(path: str, base: Path | None) -> Path:
    """Absolute path of a data file named in a config (relative to ``base``)."""
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return p
