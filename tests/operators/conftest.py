"""Every operators test runs with the working-order state machine strict: a move its
transition table does not allow raises instead of being counted, so any test that makes
one fails (:mod:`gridflow.operators.order_state`)."""

from __future__ import annotations

import pytest

from gridflow.operators import order_state


@pytest.fixture(autouse=True)
def strict_order_moves(monkeypatch):
    """:data:`~gridflow.operators.order_state.STRICT` for the test."""
    monkeypatch.setattr(order_state, "STRICT", True)
