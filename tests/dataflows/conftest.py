"""Fixtures of the dataflow tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_live_flow_left_running():
    """After each test, kill any live flow process it started (see ``live_harness``)."""
    yield
    from live_harness import kill_all

    kill_all()
