"""Which price the live risk check marks each symbol at (:func:`gridflow.operators.
live_risk.marked_prices`): the newest known of a fill's price and the exchange's mark."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.operators import kernel_layout as kl
from gridflow.operators.live_risk import marked_prices

CLOSE_MS = 1_000_000  # the last processed candle close of every symbol


def state(closes=(100.0, 50.0)) -> kl.KernelState:
    s = kl.KernelState.new(len(closes), 3, 1000.0, 24)
    s.sf[:, kl.SF_LAST_CLOSE] = closes
    s.si[:, kl.SI_QTS] = CLOSE_MS
    return s


def test_a_fill_is_marked_at_its_price_unless_a_later_mark_came_first() -> None:
    st_ = state()
    marks = {0: (CLOSE_MS + 500, 90.0), 1: (CLOSE_MS + 100, 49.0)}
    # fill of symbol 0 at 95 after its mark of 90: the fill is newer
    assert list(marked_prices(st_, marks, {0: 95.0}, CLOSE_MS + 600)) == [95.0, 49.0]
    # the same fill arriving late (its exchange time before the mark's): the mark wins
    assert list(marked_prices(st_, marks, {0: 95.0}, CLOSE_MS + 400)) == [90.0, 49.0]
    # a mark older than the last candle close is not used; the close is
    old = {1: (CLOSE_MS - 1, 10.0)}
    assert list(marked_prices(st_, old)) == [100.0, 50.0]
    # no time given: the fill's price (as before)
    assert list(marked_prices(st_, marks, {0: 95.0})) == [95.0, 49.0]


@settings(max_examples=200, deadline=None)
@given(mark_dt=st.integers(-5, 5), fill_dt=st.integers(0, 10),
       mark=st.floats(1.0, 1e6), fill=st.floats(1.0, 1e6))
def test_the_newest_valid_price_wins(mark_dt, fill_dt, mark, fill) -> None:
    st_ = state((100.0,))
    t_mark, t_fill = CLOSE_MS + mark_dt, CLOSE_MS + fill_dt
    got = float(marked_prices(st_, {0: (t_mark, mark)}, {0: fill}, t_fill)[0])
    mark_valid = t_mark >= CLOSE_MS
    want = mark if (mark_valid and t_mark > t_fill) else fill
    assert np.isclose(got, want)
