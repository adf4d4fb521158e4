"""Binance USDⓈ-M request weights of the fake exchange (gridflow.fakex.weights)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gridflow.fakex.weights import request_weight


@given(st.integers(1, 1500), st.integers(1, 1500))
def test_klines_weight_grows_with_limit(a, b):
    lo, hi = sorted((a, b))
    w = lambda n: request_weight("GET", "/fapi/v1/klines", {"limit": str(n)})  # noqa: E731
    assert w(lo) <= w(hi) and w(lo) in (1, 2, 5, 10)
