"""Entry filters of a strategy: conditions at a candle close under which its grid takes
no new entries (``entry_filter``), and the market regimes in which it takes none
(``regime_filter``).

A closed filter blocks every unfilled level of the quotes decided at that close; the
take profit, the stop and an open position's filled levels are untouched (a filter
protects capital not yet committed, it never closes a position). One rule for every
path: :func:`gridflow.operators.strategies.filters.entry_gate` turns the filters and the
indicator values into the gate the quote rule reads (replay, paper, live and sweep).

Thresholds of the sources (the multi-symbol bot), as a documented example::

    [strategy.entry_filter]
    hvz_band = [-1.5, 1.5]     # historical-volatility z-score strictly inside
    rsi_band = [30, 70]        # RSI (Wilder 1978) inside, bounds included
    macd_hist_min = 0.0        # MACD histogram (Appel; quote currency) strictly above

    [strategy.regime_filter]   # the walk-forward's regime labels, computed causally
    window = 720               # candles of the trailing window (30 days of 1h)
    crash = "block"
    bear = "block"
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Action = Literal["allow", "block"]


class EntryFilter(BaseModel):
    """Indicator conditions for new entries; each is off when its threshold is None. An
    indicator still warming up (NaN) fails its condition: no entry on an unknown value.

    Attributes
    ----------
    hvz_band : (float, float) or None
        Historical-volatility z-score must lie strictly inside ``(lo, hi)``
        (``hvz_<hv_window>_<hvz_window>``: z-score of the annualised volatility of log
        returns over ``hvz_window`` values).
    hv_window, hvz_window : int
        Returns in each volatility, volatilities in the z-score window (candles).
    rsi_band : (float, float) or None
        RSI (``rsi_<rsi_period>``, Wilder 1978, 0..100) must lie inside ``[lo, hi]``.
    macd_hist_min : float or None
        MACD histogram (``macd_<fast>_<slow>_<signal>.hist``, quote currency) must be
        strictly above this floor.
    macd : (int, int, int)
        Fast, slow and signal periods of the MACD (Appel).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    hvz_band: tuple[float, float] | None = None
    hv_window: int = Field(24, ge=2, le=10_000)
    hvz_window: int = Field(168, ge=2, le=10_000)
    rsi_band: tuple[float, float] | None = None
    rsi_period: int = Field(14, ge=2, le=1_000)
    macd_hist_min: float | None = Field(None, allow_inf_nan=False)
    macd: tuple[int, int, int] = (12, 26, 9)

    @model_validator(mode="after")
    def _check(self) -> "EntryFilter":
        for name in ("hvz_band", "rsi_band"):
            band = getattr(self, name)
            if band is not None and not (band[0] < band[1]):
                raise ValueError(f"{name}: lower bound must be below upper, got {list(band)}")
        if self.rsi_band is not None and not (0.0 <= self.rsi_band[0] and self.rsi_band[1] <= 100.0):
            raise ValueError(f"rsi_band: bounds within 0..100, got {list(self.rsi_band)}")
        fast, slow, signal = self.macd
        if not (1 <= fast < slow <= 10_000 and 1 <= signal <= 10_000):
            raise ValueError("macd: need 1 <= fast < slow <= 10000 and 1 <= signal <= 10000, "
                             f"got {list(self.macd)}")
        if self.hvz_band is None and self.rsi_band is None and self.macd_hist_min is None:
            raise ValueError("entry_filter: set at least one of hvz_band, rsi_band, "
                             "macd_hist_min (or remove the table)")
        return self


class RegimeFilter(BaseModel):
    """What the strategy does in each market regime (``regime_<window>``: the
    walk-forward's crash / bull / bear / range rule over the trailing ``window`` closed
    candles, :mod:`gridflow.operators.indicators.regime`). ``"block"``: no new entries
    while the regime holds. While the regime is unknown (the first ``window - 1``
    candles) entries are blocked too.

    Attributes
    ----------
    window : int
        Candles of the trailing window (720 = 30 days of 1h candles); at most 5000, what
        a live start can fetch as warm-up (``live.warmup_candles``, which must cover
        it: checked at a live start).
    crash, bull, bear, range : {"allow", "block"}
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(720, ge=2, le=5_000)
    crash: Action = "allow"
    bull: Action = "allow"
    bear: Action = "allow"
    range: Action = "allow"

    @model_validator(mode="after")
    def _check(self) -> "RegimeFilter":
        n = len(self.blocked)
        if n == 0:
            raise ValueError("regime_filter blocks no regime (it would only block while the "
                             "regime is unknown): set one of crash/bull/bear/range to "
                             "\"block\", or remove the table")
        if n == 4:
            raise ValueError("regime_filter blocks every regime: the strategy would never "
                             "enter; remove the strategy instead")
        return self

    @property
    def blocked(self) -> tuple[str, ...]:
        """The labels set to ``"block"``, in the rule's order."""
        return tuple(r for r in ("crash", "bull", "bear", "range") if getattr(self, r) == "block")


__all__ = ["EntryFilter", "RegimeFilter"]
