"""Candle plausibility settings: the ``[candles]`` table of a preset.

The rules themselves are :mod:`gridflow.candle_rules` (one row) and
:func:`gridflow.operators.validation.validate_chunk` (the stream); every path that
validates candles (replay, paper/live, sweeps) takes these settings.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CandleRules"]

_TINY = 2.2250738585072014e-308  # numpy.finfo(numpy.float64).tiny: the smallest normal float


class CandleRules(BaseModel):
    """Bounds a candle's prices must respect, beyond being finite and > 0.

    Every bound is checked at start; a bad value is refused naming the field
    (``pydantic.ValidationError``).

    Attributes
    ----------
    max_price_quote : float
        Highest plausible open/high/low/close, in quote currency, > 2.2e-308; a higher
        price is refused as ``IMPLAUSIBLE_PRICE``. Default 1e9: above every crypto pair
        quoted in USD(T), EUR or BTC; raise it for quote currencies worth little (BTC in
        IDR or VND trades above 1e9).
    max_jump_factor : float
        A factor (not a fraction), > 1: each of open/high/low/close must lie within
        ``[last_close / max_jump_factor, last_close * max_jump_factor]``, ``last_close``
        the close of the symbol's last **accepted** candle; outside, the candle is refused
        as ``PRICE_JUMP`` (and the band stays on the last accepted close). The first
        candle of a stream has no band. Default 10: real BTC/ETH never move tenfold in one
        candle (in the bundled 1h files no price is beyond 2.7x, nor 1/2.7, of the close
        before it).
    reanchor_after : int
        After this many candles in a row refused as ``PRICE_JUMP`` that agree with each
        other (each within the band of the one before), the next one that agrees with
        them is accepted and becomes the band's centre, journaled as a
        ``price_reanchored`` event: the market really moved (a redenomination, a
        listing's first minutes) or the last accepted candle was the bad one, and a
        stream must not refuse every candle from then on. 0: never. Default 3.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_price_quote: float = Field(1e9, gt=_TINY, allow_inf_nan=False)
    max_jump_factor: float = Field(10.0, gt=1.0, allow_inf_nan=False)
    reanchor_after: int = Field(3, ge=0, le=1_000)
