"""Parameter sweeps: the numba sweep kernel and its Python driver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gridflow.config.renamed import canonical_name, renamed_keys
from gridflow.config.strategies import StrategyParams
from gridflow.sweep import engine as _engine
from gridflow.sweep.data import SweepData
from gridflow.sweep.engine import IndicatorTable, SweepResult, run_sweep
from gridflow.sweep.metrics import METRICS


def expand_grid(strategy: str, space: dict[str, Sequence[Any]],
                base: dict[str, Any] | None = None
                ) -> tuple[list[StrategyParams], list[dict[str, Any]], int]:
    """:func:`gridflow.sweep.engine.expand_grid`, accepting the deprecated parameter
    names (``sl_pct`` for ``sl_frac``, :mod:`gridflow.config.renamed`) in ``space`` and
    ``base``, with a logged deprecation warning.

    The grid is expanded and validated under the new names; each combination's swept
    values (the second result) keep the names the caller gave, so the results of a
    space written with an old name keep their columns.

    Raises
    ------
    ValueError
        As :func:`gridflow.sweep.engine.expand_grid`, and when ``space`` or ``base``
        gives a deprecated name and its new one together.
    """
    new_space = renamed_keys(space, "sweep space")
    new_base = renamed_keys(base, "sweep base") if base else base
    combos, params, invalid = _engine.expand_grid(strategy, new_space, new_base)
    back = {canonical_name(k): k for k in space}
    if any(new != old for new, old in back.items()):
        params = [{back.get(k, k): v for k, v in p.items()} for p in params]
    return combos, params, invalid


__all__ = ["METRICS", "IndicatorTable", "SweepData", "SweepResult", "expand_grid", "run_sweep"]
