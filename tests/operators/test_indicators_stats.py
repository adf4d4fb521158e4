"""Tests for gridflow.operators.indicators.statistics: numpy parity, incremental == batch,
pure-Python steps == compiled, properties, parameter checks."""

from __future__ import annotations

import functools
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view as windows

import gridflow
import gridflow.operators.indicators.pairs as corr_mod
from gridflow.data.candle_files import read_candle_file
from gridflow.operators.indicators import statistics as stats
from gridflow.operators.indicators.pairs import CorrelationState, correlation
from gridflow.operators.indicators.statistics import (
    KINDS,
    HistVolState,
    HistVolZState,
    hist_vol,
    hist_vol_zscore,
)

CANDLE_DIR = Path(gridflow.__file__).parent / "data" / "candles"
SYMBOLS = ["ADA", "BTC", "ETH", "SOL", "XRP"]
PAIRS = [("BTC", "ETH"), ("ADA", "XRP"), ("SOL", "BTC"), ("XRP", "ETH")]
H1 = 3_600_000  # 1h candles: 8760 periods per year
FLAT = 1e-12  # std <= FLAT * |mean| counts as constant (module rule)


@functools.cache
def load(symbol: str) -> tuple[np.ndarray, np.ndarray]:
    d = read_candle_file(CANDLE_DIR / f"binance_{symbol}_USDT_1h.csv.gz")
    return d["ts"], d["close"]


@functools.cache
def aligned(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    (ts_a, ca), (ts_b, cb) = load(a), load(b)
    _, ia, ib = np.intersect1d(ts_a, ts_b, assume_unique=True, return_indices=True)
    return ca[ia], cb[ib]


def nan_head(values: np.ndarray, n: int, head: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[head:] = values
    return out


def hv_ref(close: np.ndarray, w: int) -> np.ndarray:
    r = np.log(close[1:] / close[:-1])
    return nan_head(np.std(windows(r, w), axis=1, ddof=1) * math.sqrt(8760.0), len(close), w)


def z_ref(close: np.ndarray, w: int, zw: int) -> tuple[np.ndarray, np.ndarray]:
    """(z, relative std of the HV window) from numpy's HV, two-pass, ddof=0."""
    hw = windows(hv_ref(close, w)[w:], zw)
    mean, sd = hw.mean(axis=1), hw.std(axis=1)
    flat = sd <= FLAT * mean
    z = np.where(flat, 0.0, (hw[:, -1] - mean) / np.where(flat, 1.0, sd))
    head = w + zw - 1
    return nan_head(z, len(close), head), nan_head(sd / np.where(mean > 0, mean, 1.0),
                                                   len(close), head)


def corr_ref(ca: np.ndarray, cb: np.ndarray, w: int) -> np.ndarray:
    ra, rb = (windows(np.log(c[1:] / c[:-1]), w) for c in (ca, cb))
    da, db = ra - ra.mean(axis=1, keepdims=True), rb - rb.mean(axis=1, keepdims=True)
    va, vb = (da * da).mean(axis=1), (db * db).mean(axis=1)
    flat = (np.sqrt(va) <= FLAT * np.abs(ra.mean(axis=1))) | (
        np.sqrt(vb) <= FLAT * np.abs(rb.mean(axis=1)))
    rho = (da * db).mean(axis=1) / np.sqrt(np.where(flat, 1.0, va * vb))
    return nan_head(np.where(flat, 0.0, np.clip(rho, -1.0, 1.0)), len(ca), w)


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    """Bit-identical, NaN in the same places."""
    assert a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True), np.flatnonzero(~((a == b) | np.isnan(a)))[:5]


def assert_warmup(out: np.ndarray, first_valid: int) -> None:
    np.testing.assert_array_equal(np.isnan(out), np.arange(len(out)) < first_valid)


# ------------------------------------------------------------------ numpy parity


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("w", [2, 24, 168])
def test_hist_vol_matches_numpy(symbol: str, w: int) -> None:
    close = load(symbol)[1]
    ours, ref = hist_vol(close, w, H1), hv_ref(close, w)
    assert ours.dtype == np.float64
    assert_warmup(ours, w)
    np.testing.assert_array_equal(ours == 0.0, ref == 0.0)  # flat windows: exactly 0
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=0.0)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("w, zw", [(2, 24), (24, 24), (24, 168), (168, 168), (168, 2), (24, 2)])
def test_hist_vol_zscore_matches_numpy(symbol: str, w: int, zw: int) -> None:
    close = load(symbol)[1]
    ours = hist_vol_zscore(close, w, zw, H1)
    ref, rel_sd = z_ref(close, w, zw)
    assert_warmup(ours, w + zw - 1)
    # z is ill-conditioned when the HV window is nearly (not exactly) flat: two float64
    # HV computations then differ by ~1e-16 * mean / std in z. Those windows occur only
    # for zw = 2, where z is +-1 exactly: see test_zscore_window_2_is_sign_of_hv_step.
    ill = (rel_sd > FLAT) & (rel_sd < 1e-6)
    assert zw == 2 or not ill.any()
    np.testing.assert_allclose(ours[~ill], ref[~ill], rtol=0.0, atol=1e-9)
    np.testing.assert_allclose(np.abs(ours[ill]), 1.0, rtol=0.0, atol=1e-9)


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("w", [2, 24, 168])
def test_zscore_window_2_is_sign_of_hv_step(symbol: str, w: int) -> None:
    close = load(symbol)[1]
    hv = hist_vol(close, w, H1)
    step, mean = np.diff(hv), (hv[1:] + hv[:-1]) / 2
    exact = np.where(np.abs(step) / 2 <= FLAT * mean, 0.0, np.sign(step))
    ours = hist_vol_zscore(close, w, 2, H1)[1:]
    np.testing.assert_allclose(ours, exact, rtol=0.0, atol=1e-12)


@pytest.mark.parametrize("a, b", PAIRS)
@pytest.mark.parametrize("w", [2, 24, 168])
def test_correlation_matches_numpy(a: str, b: str, w: int) -> None:
    ca, cb = aligned(a, b)
    ours, ref = correlation(ca, cb, w), corr_ref(ca, cb, w)
    assert_warmup(ours, w)
    np.testing.assert_allclose(ours, ref, rtol=0.0, atol=1e-9)
    ra, rb = np.log(ca[1:] / ca[:-1]), np.log(cb[1:] / cb[:-1])
    for t in np.random.default_rng(w).integers(w, len(ca), 100):  # np.corrcoef spot check
        xa, xb = ra[t - w:t], rb[t - w:t]
        if np.ptp(xa) > 0 and np.ptp(xb) > 0:
            assert abs(ours[t] - np.corrcoef(xa, xb)[0, 1]) <= 1e-9


def test_flat_prices_give_exact_zero_and_bad_prices_poison() -> None:
    close = np.array([5.0, 5.0, 5.0, 5.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0])
    hv = hist_vol(close, 3, H1)
    assert hv[3] == 0.0 and (hv[4:7] > 0).all() and (hv[7:] == 0.0).all()
    z = hist_vol_zscore(close, 2, 2, H1)  # HV_4 == HV_5 (same returns, swapped): flat
    assert z[3] == 0.0 and z[4] == 1.0 and z[5] == 0.0 and z[6] == -1.0 and z[9] == 0.0
    rng = np.random.default_rng(7)
    a = np.exp(np.cumsum(rng.normal(0.0, 0.01, 50)))
    rho = correlation(close, a[:10], 3)
    assert rho[3] == 0.0 and (rho[7:] == 0.0).all() and (rho[4:7] != 0.0).all()  # flat: 0
    np.testing.assert_allclose(correlation(a, 3.0 * a, 5)[5:], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(correlation(a, 1.0 / a, 5)[5:], -1.0, rtol=0, atol=1e-12)
    for bad in (0.0, -1.0, np.nan, np.inf):
        x = a.copy()
        x[20], x[30:] = bad, x[29]  # then flat: still NaN (poisoned, not a flat 0.0)
        assert np.isnan(hist_vol(x, 2, H1)[20:]).all()
        assert np.isnan(hist_vol_zscore(x, 2, 2, H1)[20:]).all()
        assert np.isnan(correlation(x, a, 2)[20:]).all()
        assert np.isnan(correlation(a, x, 2)[20:]).all()
        assert not np.isnan(hist_vol(x, 2, H1)[2:20]).any()


# ---------------------------------------------------------- incremental == batch


def make_cases(w: int, zw: int):
    """(name, fresh state, batch on (ca, cb), pairwise) for every statistic."""
    return [
        ("hv", lambda: HistVolState(w, H1), lambda a, b: hist_vol(a, w, H1), False),
        ("hvz", lambda: HistVolZState(w, zw, H1), lambda a, b: hist_vol_zscore(a, w, zw, H1),
         False),
        ("corr", lambda: CorrelationState(w), lambda a, b: correlation(a, b, w), True),
    ]


@pytest.mark.parametrize("w, zw, n", [(2, 2, 73_000), (24, 168, 73_000), (168, 24, 8000)])
def test_update_one_by_one_equals_batch_with_pickle(w: int, zw: int, n: int) -> None:
    ca, cb = (c[:n] for c in aligned("BTC", "ETH"))
    for name, factory, batch, pair in make_cases(w, zw):
        expected = batch(ca, cb)
        state, got = factory(), np.empty_like(ca)
        for i in range(ca.shape[0]):
            if i in (w // 2, w + zw // 2, 2500):  # mid warm-ups and mid stream
                state = pickle.loads(pickle.dumps(state))
            got[i] = state.update(ca[i], cb[i]) if pair else state.update(ca[i])
        assert isinstance(state.update(1.0, 1.0) if pair else state.update(1.0), float)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0.0, err_msg=name)
        assert_same(got, expected)


@pytest.mark.parametrize("w, zw", [(2, 2), (24, 168), (168, 24)])
def test_update_many_random_chunks_equals_batch(w: int, zw: int) -> None:
    rng = np.random.default_rng(w * 1000 + zw)
    ca, cb = aligned("ADA", "XRP")
    for name, factory, batch, pair in make_cases(w, zw):
        expected, state, parts, start = batch(ca, cb), factory(), [], 0
        while start < ca.shape[0]:
            stop = start + int(rng.choice([0, 1, 2, 7, w, zw, 500, 4000]))
            sl = slice(start, stop)
            if rng.random() < 0.2:
                state = pickle.loads(pickle.dumps(state))
            if rng.random() < 0.1 and stop == start + 1:  # mix in single updates
                one = state.update(ca[start], cb[start]) if pair else state.update(ca[start])
                parts.append(np.array([one]))
            else:
                parts.append(state.update_many(ca[sl], cb[sl]) if pair else
                             state.update_many(ca[sl]))
            start = min(stop, ca.shape[0])
        assert_same(np.concatenate(parts), expected)


def py_roll(x, f, n, w):
    """The uncompiled rolling-window step on memoryviews f (scalars + ring), n (counters)."""
    v, dev, mean, n[0], n[1], n[2], f[0], f[1], f[2], f[3], f[4], f[5] = stats._roll_step(
        x, f[stats._W_F:stats._W_F + w], n[0], n[1], n[2], f[0], f[1], f[2], f[3], f[4], f[5], w)
    return v, dev, mean


@pytest.mark.parametrize("w, zw", [(2, 2), (24, 5)])
def test_uncompiled_steps_match_compiled(w: int, zw: int) -> None:
    """The plain-Python steps on memoryviews give the kernels' bits (same libm log)."""
    ca, cb = (c[:3000] for c in aligned("SOL", "BTC"))
    hvz, corr = HistVolZState(w, zw, H1), CorrelationState(w)
    f, n = memoryview(hvz._fs), memoryview(hvz._ist)
    cf, cn, off = memoryview(corr._fs), memoryview(corr._ist), corr_mod._CORR_F
    outs = np.full((3, ca.shape[0]), np.nan)
    for i, x in enumerate(ca):
        pc, f[0] = f[0], x
        if not math.isnan(pc):
            r = math.log(x / pc)
            outs[0, i] = math.sqrt(py_roll(r, f[1:], n, w)[0] * hvz._f)
            if outs[0, i] == outs[0, i]:  # z skips the HV warm-up
                v, dev, mean = py_roll(outs[0, i], f[1 + stats._W_F + w:], n[stats._W_I:], zw)
                outs[1, i] = 0.0 if v <= stats._FLAT2 * mean * mean else dev / math.sqrt(v)
        outs[2, i] = corr_mod._corr_step(x, cb[i], cf[off:off + w], cf[off + w:], cf, cn, w)
    assert_same(outs[0], hist_vol(ca, w, H1))
    assert_same(outs[1], hist_vol_zscore(ca, w, zw, H1))
    assert_same(outs[2], correlation(ca, cb, w))


# ------------------------------------------------------------------ property


@st.composite
def price_pairs(draw):
    n = draw(st.integers(0, 150))
    scale = draw(st.sampled_from([1e-6, 1e-2, 1.0, 3e4, 1e8]))
    step = st.one_of(st.just(0.0), st.floats(-0.3, 0.3), st.sampled_from([1e-3, -1e-3]))
    a = scale * np.exp(np.cumsum(draw(st.lists(step, min_size=n, max_size=n))))
    if draw(st.booleans()):  # on a tick grid: flat stretches, repeated equal returns
        tick = scale * draw(st.sampled_from([1e-3, 1e-2]))
        a = np.maximum(np.round(a / tick), 1.0) * tick
    mode = draw(st.sampled_from(["same", "inverse", "independent", "flat"]))
    if mode == "independent":
        b = np.exp(np.cumsum(draw(st.lists(step, min_size=n, max_size=n)))) * 7.0
    else:
        b = {"same": a * 3.0, "inverse": 1.0 / a, "flat": np.full(n, 2.5)}[mode]
    return a, b


@settings(max_examples=200, deadline=None)
@given(data=price_pairs(), w=st.integers(2, 30), zw=st.integers(2, 30),
       split=st.integers(0, 150))
def test_property_valid_prices(data, w: int, zw: int, split: int) -> None:
    a, b = data
    hv, z, rho = hist_vol(a, w, H1), hist_vol_zscore(a, w, zw, 60_000), correlation(a, b, w)
    for out, first in ((hv, w), (z, w + zw - 1), (rho, w)):
        assert not np.isinf(out).any()
        assert_warmup(out, first)
    assert (hv[w:] >= 0).all()
    assert (np.abs(z[w + zw - 1:]) <= math.sqrt(zw - 1) * (1.0 + 1e-3)).all()
    assert (np.abs(rho[w:]) <= 1.0).all()
    s = min(split, a.shape[0])
    st_z, st_c = HistVolZState(w, zw, 60_000), CorrelationState(w)
    assert_same(np.concatenate([st_z.update_many(a[:s]), st_z.update_many(a[s:])]), z)
    assert_same(np.concatenate([st_c.update_many(a[:s], b[:s]),
                                st_c.update_many(a[s:], b[s:])]), rho)


# ----------------------------------------------------------------- parameters


BAD_WINDOWS = [1, 0, -3, 2.5, 24.0, "24", None, True, np.float64(3)]


@pytest.mark.parametrize("bad", BAD_WINDOWS)
@pytest.mark.parametrize(
    "match, make",
    [
        ("hv window", lambda v: HistVolState(v, H1)),
        ("hv window", lambda v: hist_vol(np.ones(5), v, H1)),
        ("hvz window", lambda v: HistVolZState(v, 5, H1)),
        ("hvz z_window", lambda v: HistVolZState(5, v, H1)),
        ("hvz z_window", lambda v: hist_vol_zscore(np.ones(5), 5, v, H1)),
        ("correlation window", CorrelationState),
        ("correlation window", lambda v: correlation(np.ones(5), np.ones(5), v)),
    ],
)
def test_bad_windows_raise_naming_parameter(match: str, make, bad) -> None:
    with pytest.raises(ValueError, match=rf"^{match} must be"):
        make(bad)


@pytest.mark.parametrize("bad", [0, -3_600_000, 3.6e6, "1h", None, False])
@pytest.mark.parametrize("make", [lambda tf: HistVolState(24, tf),
                                  lambda tf: HistVolZState(24, 24, timeframe_ms=tf)])
def test_bad_timeframe_raises_naming_parameter(make, bad) -> None:
    with pytest.raises(ValueError, match=r"^hvz? timeframe_ms must be"):
        make(bad)


def test_annualisation_kinds_and_inputs() -> None:
    state = HistVolState(np.int64(24), timeframe_ms=86_400_000)
    assert state.periods_per_year == 365.0 and HistVolState(2, H1).periods_per_year == 8760.0
    assert repr(state) == "HistVolState(24, timeframe_ms=86400000)"
    assert set(KINDS) == {"hv", "hvz"}
    for name, params in (("hv", (24,)), ("hvz", (24, 168))):
        kind = KINDS[name]
        assert kind.inputs == ("close",) and kind.outputs == () and kind.context == ("timeframe_ms",)
        assert [p for p, _ in kind.params] == ["window", "z_window"][: len(params)]
        assert kind.factory(*params, timeframe_ms=H1).window == 24
    close = load("ETH")[1][:500]
    assert_same(hist_vol(list(close), 24, H1), hist_vol(close, 24, H1))
    strided = np.repeat(close, 2)[::2]
    assert not strided.flags.c_contiguous
    assert_same(correlation(strided, close * 2.0, 5), correlation(close, close, 5))
    with pytest.raises(ValueError, match="1-D"):
        hist_vol(np.ones((3, 2)), 2, H1)
    with pytest.raises(ValueError, match="equal lengths"):
        CorrelationState(2).update_many(np.ones(3), np.ones(4))
