"""Risk between candle closes (live): the account marked to the exchange's prices, every
kill switch checked on that equity.

The replay checks the kill switches intrabar before each entry at the level's price and
at every candle close (:mod:`gridflow.operators.grid_kernel`). Live, the market moves
between closes and fills arrive in exchange updates, so the live engine calls
:func:`check_marked` after each fill (that symbol marked at the fill price) and after
each update (every symbol with a position marked at the exchange's mark price). It is
the kernel's own arithmetic: :func:`~gridflow.operators.grid_kernel._marks` for the
unrealized PnL and session PnL, :func:`~gridflow.operators.risk.check_kill_switches` for
the rules, so a switch trips live on exactly the rule and threshold it trips on in
replay. As intrabar in replay, the equity peak and the rolling window move only at
candle closes.

Pure: arrays in, the kernel's event rows out, no I/O.
"""

from __future__ import annotations

import math

import numpy as np

from gridflow.operators import grid_kernel as gk
from gridflow.operators import kernel_layout as kl
from gridflow.operators.risk import check_kill_switches

_ROWS = 8  # at most one row per kill-switch bit (5) per call


def marked_prices(st: kl.KernelState, marks: dict[int, tuple[int, float]],
                  override: dict[int, float] | None = None,
                  override_ms: int | None = None) -> np.ndarray:
    """Mark price of every symbol (float64 (S,), quote): the newest known of ``override``
    (a fill's price, at exchange time ``override_ms``) and the exchange's mark, if newer
    than the symbol's last processed candle close; else that close.

    ``marks`` maps a symbol index to ``(exchange time ms, price)``. A fill that arrives
    after a later mark of its symbol (the market and user streams are separate
    connections) is checked at that mark: the risk check uses the newest price.
    """
    prices = st.sf[:, kl.SF_LAST_CLOSE].copy()
    newer: set[int] = set()
    for s, (ts, px) in marks.items():
        if ts >= st.si[s, kl.SI_QTS] and math.isfinite(px) and px > 0:
            prices[s] = px
            if override_ms is not None and ts > override_ms:
                newer.add(s)
    for s, px in (override or {}).items():
        if s not in newer and math.isfinite(px) and px > 0:
            prices[s] = px
    return prices


def check_marked(st: kl.KernelState, pf: np.ndarray, mp: np.ndarray, prices: np.ndarray,
                 ts: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Check every kill switch at the equity of the account marked at ``prices``.

    Parameters
    ----------
    st : KernelState
        Updated in place: tripped bits in ``ai[AI_KILL]``, the event sequence.
    pf, mp : np.ndarray
        Account and per-symbol parameters (``kernel_layout``).
    prices : float64 (S,)
        Mark price per symbol (quote); see :func:`marked_prices`.
    ts : int
        Exchange time of the check (ms UTC): the time journaled with a trip.

    Returns
    -------
    (int64 (k, OI_W), float64 (k, OF_W), int)
        The kernel's event rows (``K_KILL`` per newly tripped switch) and their count.
    """
    sf = st.sf.copy()
    sf[:, kl.SF_LAST_CLOSE] = prices
    unreal, _, pnl_g, pnl_s, _ = gk._marks(sf, st.si, mp, -1, 0.0)
    equity = float(st.af[kl.AF_CASH] + unreal)
    cap_g, cap_s = gk._caps(mp)
    out_i = np.empty((_ROWS, kl.OI_W), np.int64)
    out_f = np.empty((_ROWS, kl.OF_W), np.float64)
    n = check_kill_switches(int(ts), equity, pnl_g, cap_g, pnl_s, cap_s, st.af, st.ai, pf,
                            st.rw_ts, st.rw_eq, out_i, out_f, 0)
    return out_i[:n], out_f[:n], int(n)


def marked_equity(st: kl.KernelState, mp: np.ndarray, prices: np.ndarray) -> float:
    """Cash plus unrealized PnL at ``prices`` (quote)."""
    sf = st.sf.copy()
    sf[:, kl.SF_LAST_CLOSE] = prices
    return float(st.af[kl.AF_CASH] + gk._marks(sf, st.si, mp, -1, 0.0)[0])
