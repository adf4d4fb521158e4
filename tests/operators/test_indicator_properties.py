"""Every registered indicator, through the bank: properties on random candle series."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflow.operators.indicators import KINDS, IndicatorBank

# default parameters of every kind; a new kind must be added here (checked below)
DEFAULTS = {
    "sma": (7,), "ema": (7,), "wma": (7,), "rsi": (7,), "atr": (7,), "trange": (),
    "adx": (7,), "macd": (3, 8, 4), "bbands": (7, 2.0), "donchian": (7,),
    "supertrend": (7, 3.0), "hv": (7,), "hvz": (5, 6), "regime": (7,),
}
H = 3_600_000


def names() -> list[str]:
    out = []
    for kind, params in DEFAULTS.items():
        if kind in KINDS:
            out.append("_".join([kind, *map(str, params)]))
    return out


def test_every_registered_kind_is_covered() -> None:
    assert set(KINDS) == set(DEFAULTS), set(KINDS) ^ set(DEFAULTS)


@st.composite
def candles(draw):
    n = draw(st.integers(1, 120))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    flat = draw(st.booleans())
    scale = 10.0 ** draw(st.integers(-6, 6))
    steps = rng.normal(0, 0.0 if flat else draw(st.floats(0.0, 0.2)), n)
    c = scale * np.exp(np.cumsum(steps))
    o = np.r_[c[0], c[:-1]]
    spread = 0.0 if flat else draw(st.floats(0.0, 0.1))
    h = np.maximum(o, c) * (1 + rng.uniform(0, spread, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, spread, n))
    return np.arange(n, dtype=np.int64) * H, o, h, lo, c, rng.uniform(0, 10, n)


@settings(max_examples=150, deadline=None)
@given(candles(), st.integers(0, 120))
def test_no_exception_no_inf_nan_only_in_warmup_chunking_and_pickle(data, cut) -> None:
    ts, o, h, lo, c, v = data
    bank = IndicatorBank(names() + ["sma_3@4h"], timeframe="1h")
    whole = bank.update(ts, o, h, lo, c, v)
    for key, arr in whole.items():
        assert arr.shape == c.shape, key
        assert not np.isinf(arr).any(), key
        finite = np.isfinite(arr)
        if finite.any():  # NaN only before the first valid value (warm-up)
            first = int(np.argmax(finite))
            assert finite[first:].all(), (key, first)
    b2 = IndicatorBank(names() + ["sma_3@4h"], timeframe="1h")
    k = min(cut, len(c))
    first = b2.update(ts[:k], o[:k], h[:k], lo[:k], c[:k], v[:k])
    b2 = pickle.loads(pickle.dumps(b2))
    second = b2.update(ts[k:], o[k:], h[k:], lo[k:], c[k:], v[k:])
    for key in whole:
        np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), whole[key], key)


@pytest.mark.parametrize("kind", sorted(DEFAULTS))
def test_bad_parameters_name_the_parameter(kind: str) -> None:
    spec = KINDS[kind]
    if not spec.params:
        return
    pname, ptype = spec.params[0]
    ctx = {"timeframe_ms": H} if "timeframe_ms" in spec.context else {}
    good = list(DEFAULTS[kind])
    good[0] = 0 if ptype is int else float("nan")
    with pytest.raises(ValueError, match=pname):
        spec.factory(*good, **ctx)
