"""Settings for running unattended (``[live.ops]``): heartbeat, daily notice and report,
data freshness, exchange error rate, shutdown behaviour."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["NOT_IDENTITY", "OpsConfig"]

#: ``[live.ops]`` fields that are not part of a run's identity (how a run is watched
#: is not what it does): left out of :func:`gridflow.config.loader.config_hash`.
NOT_IDENTITY = ("metrics_port", "metrics_host")

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class OpsConfig(BaseModel):
    """How a live flow reports that it is alive and how it stops.

    Every time here is exchange time (the engine has no clock): a flow replayed after a
    crash journals the same heartbeats.

    Attributes
    ----------
    heartbeat_s : float
        Seconds of exchange time between two ``heartbeat`` events (equity, open
        positions, last candle, switches); 0 = none.
    daily_at : str
        ``"HH:MM"`` UTC of the daily heartbeat notification (uptime, equity, open
        positions, the day's PnL, switches) and of the daily report of the day before.
    stale_candles : float
        A symbol with no closed candle for this many timeframes is ``data_stale``
        (once, event and alert); ``data_fresh`` when its candles come again.
    error_rate : int
        Exchange errors (``exchange_error`` events) within ``error_window_s`` that make
        one ``exchange_error_rate`` event (and alert) per window.
    error_window_s : float
        Seconds of exchange time of that window.
    on_shutdown : {"cancel_entries", "keep"}
        On SIGTERM / SIGINT: cancel the resting entries, or keep them. Stops and take
        profits always stay on the exchange.
    shutdown_timeout_s : float
        Wall seconds the flow has to stop after the signal.
    metrics_port : int or None
        TCP port of the Prometheus endpoint (``/metrics``) and of ``/health``
        (:mod:`gridflow.dataflows.metrics_sink`); None (default): no endpoint. Not part
        of the run's identity.
    metrics_host : str
        Address the endpoint listens on (``"127.0.0.1"``: this machine only;
        ``"0.0.0.0"`` for every interface). Not part of the run's identity.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    heartbeat_s: float = Field(300.0, ge=0.0, le=86_400.0, allow_inf_nan=False)
    daily_at: str = "08:00"
    stale_candles: float = Field(2.0, gt=1.0, le=100.0, allow_inf_nan=False)
    error_rate: int = Field(10, ge=1, le=100_000)
    error_window_s: float = Field(300.0, gt=0.0, le=86_400.0, allow_inf_nan=False)
    on_shutdown: Literal["cancel_entries", "keep"] = "cancel_entries"
    shutdown_timeout_s: float = Field(10.0, gt=0.0, le=600.0, allow_inf_nan=False)
    metrics_port: int | None = Field(None, ge=1, le=65_535)
    metrics_host: str = Field("127.0.0.1", min_length=1)

    @field_validator("daily_at")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError(f"daily_at must be 'HH:MM' (UTC, 00:00-23:59), got {v!r}")
        return v

    def daily_offset_ms(self) -> int:
        """``daily_at`` as ms after 00:00 UTC."""
        h, m = (int(x) for x in self.daily_at.split(":"))
        return (h * 60 + m) * 60_000
