"""Pure statistics of a walk-forward validation (numpy + standard library only).

:mod:`gridflow.wfo.stats` (Sharpe, PSR / DSR, block-bootstrap p-value, drawdown, daily
returns), :mod:`gridflow.wfo.regimes` (crash / bull / bear / range labels of windows) and
:mod:`gridflow.wfo.grade` (in-sample window score and the report's 100-point grade).
"""

from gridflow.wfo.grade import (
    CRITERIA,
    HARD_FAILS,
    Criterion,
    GradeRule,
    GradeScore,
    grade,
    grade_score,
    window_score,
)
from gridflow.wfo.regimes import (
    CRASH_DAYS,
    CRASH_DRAWDOWN,
    REGIME_RULES,
    REGIMES,
    TREND_RETURN,
    regime_label,
    regime_labels,
)
from gridflow.wfo.stats import (
    DsrResult,
    annualised_sharpe,
    block_bootstrap_pvalue,
    daily_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    max_drawdown,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
    worst_drawdown,
)

__all__ = [
    "CRASH_DAYS",
    "CRASH_DRAWDOWN",
    "CRITERIA",
    "HARD_FAILS",
    "REGIME_RULES",
    "REGIMES",
    "TREND_RETURN",
    "Criterion",
    "DsrResult",
    "GradeRule",
    "GradeScore",
    "annualised_sharpe",
    "block_bootstrap_pvalue",
    "daily_returns",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "grade",
    "grade_score",
    "max_drawdown",
    "probabilistic_sharpe_ratio",
    "regime_label",
    "regime_labels",
    "sharpe_ratio",
    "window_score",
    "worst_drawdown",
]
