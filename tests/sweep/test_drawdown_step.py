"""The sweep kernel's running drawdown (``drawdown_step``, used at every close and for a
whole flat stretch at once) is the step-by-step form of ``gridflow.metrics.max_drawdown``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.metrics import max_drawdown
from gridflow.sweep.kernel import drawdown_step

curves = st.lists(st.floats(1e-3, 1e9, allow_nan=False, allow_infinity=False), min_size=1,
                  max_size=60)


def _fold(curve):
    peak, dd = curve[0], 0.0
    for eq in curve:
        peak, dd = drawdown_step(eq, peak, dd)
    return peak, dd


@settings(max_examples=300, deadline=None)
@given(curves)
def test_folding_the_steps_gives_max_drawdown(curve):
    peak, dd = _fold(curve)
    assert peak == max(curve)
    assert dd == pytest.approx(max_drawdown(np.array(curve)), rel=1e-12, abs=1e-15)


@settings(max_examples=100, deadline=None)
@given(curves, st.floats(1e-3, 1e9), st.integers(1, 50))
def test_a_constant_stretch_is_one_step(curve, eq, k):
    """What the flat-stretch shortcut relies on: ``k`` closes at one equity move the
    running peak and drawdown as one close does."""
    once = _fold([*curve, eq])
    assert _fold([*curve, *[eq] * k]) == once
