"""Where a strategy's parameters come from when a walk-forward chose them
(``gridflow wfo ... --apply PRESET.toml``, :mod:`gridflow.wfo.apply`): the grade, the
windows and the date, kept in the preset and so in every journaled config of a run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Validation(BaseModel):
    """A walk-forward's verdict on one strategy entry's parameters.

    Attributes
    ----------
    grade : {"A", "B", "C", "D", "F"}
        The report's letter (:func:`gridflow.wfo.grade.grade_score`).
    score : float
        0..100 points.
    sweep_id : str
        The walk-forward in the sweep store (``gridflow sweeps`` / the app's Sweeps tab).
    symbol, timeframe, strategy : str
        What was validated.
    chosen_from, chosen_to : str
        The in-sample window (ISO dates, UTC) whose best combination these parameters
        are: the walk-forward's last, the one a trader would run next.
    oos_from, oos_to : str
        The out-of-sample record graded (first window's start to last window's end).
    windows : int
        Number of walk-forward windows.
    applied_at : str
        When the preset was written (ISO time, UTC).
    reasons : tuple of str
        Why the grade is not perfect (the report's ``grade_reasons``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    grade: Literal["A", "B", "C", "D", "F"]
    score: float = Field(ge=0.0, le=100.0, allow_inf_nan=False)
    sweep_id: str
    symbol: str
    timeframe: str
    strategy: str
    chosen_from: str
    chosen_to: str
    oos_from: str
    oos_to: str
    windows: int = Field(ge=1)
    applied_at: str
    reasons: tuple[str, ...] = ()


__all__ = ["Validation"]
