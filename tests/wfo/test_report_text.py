"""The walk-forward text report says why a transfer ratio is undefined."""

from __future__ import annotations

import math

import pytest

from gridflow.wfo.report_text import transfer_ratio_text


def rep(ratio, research, live=0.3):
    return {"transfer_ratio": ratio, "transfer_sharpe_research": research,
            "transfer_sharpe_live": live}


@pytest.mark.parametrize("report, text", [
    (rep(0.5, 0.6), "0.5000"),
    (rep(1234.5, 0.001, 1.2345), "1,234.5000"),
    (rep(math.nan, -0.42), "n/a (research Sharpe -0.42 <= 0: no transfer points)"),
    (rep(None, 0.0), "n/a (research Sharpe 0.00 <= 0: no transfer points)"),  # JSON null
    (rep(math.nan, math.nan), "n/a (research Sharpe undefined: no transfer points)"),
    (rep(None, None, None), "n/a (research Sharpe undefined: no transfer points)"),
    (rep(math.nan, 0.8, math.nan), "n/a (live Sharpe undefined: no transfer points)"),
    (rep(math.inf, 0.8, math.inf),
     "n/a (live Sharpe inf / research Sharpe 0.80 not finite: no transfer points)"),
])
def test_transfer_ratio_text_says_why_it_is_undefined(report, text):
    assert transfer_ratio_text(report) == text
