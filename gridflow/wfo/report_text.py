"""Text of walk-forward report figures that need a word of explanation in the text
report (``gridflow wfo`` without ``--json``); the JSON keeps the figures as they are."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["transfer_ratio_text"]


def _number(v: Any) -> float:
    """``v`` as a float; NaN for None or anything that is not a number."""
    try:
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


def transfer_ratio_text(report: dict) -> str:
    """The report's ``transfer_ratio`` (live-venue Sharpe / research-venue Sharpe, both
    annualised) as the text report prints it: ``1,234.5678`` when defined, else
    ``n/a (why)``: the research Sharpe is <= 0 (nothing to transfer, no grade points) or
    a Sharpe is undefined (NaN or missing).

    Parameters
    ----------
    report : dict
        A walk-forward report with ``transfer_ratio``, ``transfer_sharpe_research`` and
        ``transfer_sharpe_live`` (:func:`gridflow.wfo.transfer.transfer_report`);
        NaN and None both mean undefined.
    """
    ratio = _number(report.get("transfer_ratio"))
    if math.isfinite(ratio):
        return f"{ratio:,.4f}"
    research = _number(report.get("transfer_sharpe_research"))
    live = _number(report.get("transfer_sharpe_live"))
    if math.isnan(research):
        why = "research Sharpe undefined"
    elif research <= 0:
        why = f"research Sharpe {research:.2f} <= 0"
    elif math.isnan(live):
        why = "live Sharpe undefined"
    else:
        why = f"live Sharpe {live:.2f} / research Sharpe {research:.2f} not finite"
    return f"n/a ({why}: no transfer points)"
