"""Typed configuration: frozen pydantic models, defaults live only here.

Names carry their unit: ``_ms`` for milliseconds, ``_quote`` for quote currency;
``_pct``/``_ratio``/``_fee``/``_limit`` values are **fractions** (0.10 = 10 %).
Unknown fields are refused everywhere, so a typo in a TOML preset is an error, not
a silently ignored setting.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gridflow.timeframes import timeframe_to_ms


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GridAtrParams(_Model):
    """Grid ATR strategy (Wilder ATR around an SMA).

    Level ``i`` (0..levels-1) of a long grid buys at ``SMA - ATR * (atr_start + i *
    atr_step)``; a short grid sells at ``SMA + ATR * (...)``. Take profit closes the
    whole grid when price reaches the current SMA; stop loss closes it at ``sl_pct``
    beyond the average entry (below for long, above for short).
    """

    name: Literal["grid_atr"] = "grid_atr"
    side: Literal["long", "short"] = "long"
    sma_period: int = Field(24, ge=2, le=10_000)
    atr_period: int = Field(14, ge=1, le=10_000)
    levels: int = Field(5, ge=1, le=20)
    atr_start: float = Field(1.0, ge=0.0, le=100.0, allow_inf_nan=False)
    atr_step: float = Field(0.5, ge=0.0, le=100.0, allow_inf_nan=False)
    sl_pct: float = Field(0.10, gt=0.0, lt=1.0, allow_inf_nan=False)


class RiskConfig(_Model):
    """Account-level risk limits (fractions of equity)."""

    max_margin_ratio: float = Field(0.70, gt=0.0, le=1.0, allow_inf_nan=False)
    session_loss_limit: float = Field(0.25, gt=0.0, lt=1.0, allow_inf_nan=False)


class FeesConfig(_Model):
    """Trading costs as fractions of notional. Maker fee applies to resting limit
    fills (grid entries, take profit); taker fee and slippage to stop fills."""

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
    """One capital pool with its risk limits: the engine's consistency boundary."""

    name: str = Field("demo", min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    capital_quote: float = Field(10_000.0, gt=0, allow_inf_nan=False)
    leverage: float = Field(1.0, ge=1.0, le=125.0, allow_inf_nan=False)
    symbols: tuple[str, ...] = ()
    strategy: GridAtrParams = GridAtrParams()
    risk: RiskConfig = RiskConfig()
    indicators: tuple[str, ...] = ()

    @field_validator("indicators")
    @classmethod
    def _indicator_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        """Extra indicators computed for this account's symbols (``rsi_14``,
        ``supertrend_10_3@4h``); each name is checked here, at start."""
        from gridflow.operators.indicators import parse_indicator

        return tuple(parse_indicator(n).name for n in v)

    @field_validator("symbols")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"symbols must be unique, got {list(v)}")
        return v


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


def _bundled_files() -> tuple[DataFile, ...]:
    from gridflow.data import bundled_candle_files

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

    model_config = SettingsConfigDict(env_prefix="GRIDFLOW_", extra="forbid", frozen=True)

    run_id: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_\-]*$")
    db_url: str = "sqlite:///gridflow.db"
    chunk_size: int = Field(2_000, ge=1, le=1_000_000)
    equity_every_ms: int = Field(3_600_000, ge=60_000)
    pace_s: float = Field(0.0, ge=0.0, le=60.0, allow_inf_nan=False)
    start_ms: int | None = None
    end_ms: int | None = None
    data: tuple[DataFile, ...] = Field(default_factory=_bundled_files)
    fees: FeesConfig = FeesConfig()
    markets: dict[str, MarketSpec] = Field(default_factory=dict)
    accounts: tuple[AccountConfig, ...] = (AccountConfig(),)

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

    @model_validator(mode="after")
    def _accounts(self) -> "GridflowConfig":
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ValueError(f"end_ms ({self.end_ms}) must be after start_ms ({self.start_ms})")
        names = [a.name for a in self.accounts]
        if not names:
            raise ValueError("accounts: at least one account is required")
        if len(set(names)) != len(names):
            raise ValueError(f"accounts: names must be unique, got {names}")
        if not math.isfinite(self.pace_s):
            raise ValueError("pace_s must be finite")
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
        from gridflow.config.loader import TomlPresetSource

        return (init_settings, env_settings, TomlPresetSource(settings_cls))


def resolve_data_path(path: str, base: Path | None) -> Path:
    """Absolute path of a data file named in a config (relative to ``base``)."""
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return p
