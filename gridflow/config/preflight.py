"""Settings of the checks ``gridflow live`` runs before a live flow starts
(``[live.preflight]``, :mod:`gridflow.ops.preflight`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PreflightConfig"]


class PreflightConfig(BaseModel):
    """What the venue must look like before a live flow starts.

    Attributes
    ----------
    margin_mode : "cross" or "isolated"
        The margin mode every traded perpetual must have on the venue (live mode).
        The engine's margin rule counts one pool per account, as cross margin does.
    apply_settings : bool
        True: the preflight sets each symbol's margin mode and leverage (the account's
        ``leverage``, rounded up to a whole number) on the venue when they differ.
        False (default): it refuses to start and says what to change.
    max_clock_skew_ms : int
        Largest difference, in ms, between the venue's clock and this machine's
        (Binance refuses signed requests stamped 1 s ahead of its clock); 0 = not
        checked (a simulated venue such as the local test exchange, whose clock runs on
        candle data).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    margin_mode: Literal["cross", "isolated"] = "cross"
    apply_settings: bool = False
    max_clock_skew_ms: int = Field(1_000, ge=0, le=3_600_000)
