"""The event log's one table (``kernel_layout.EVENT_FIELDS``): each kind names its columns
once, a field name has one column whatever the kind, the kernel writes nothing outside a
kind's named columns, and the journal the decoder builds from them says the same."""

from __future__ import annotations

import pickle
from collections import defaultdict

import numpy as np
import pytest

from gridflow.chunks import CandleChunk, IndicatorChunk, JournalBatch
from gridflow.config.models import AccountConfig, FeesConfig, GridAtrParams, RiskConfig
from gridflow.operators import engine as engine_mod
from gridflow.operators import kernel_layout as kl
from gridflow.operators.engine import AccountEngine

H = 3_600_000
SYM = "BTC/USDT"
KINDS = {kl.K_ENTRY, kl.K_EXIT, kl.K_TRADE, kl.K_DENIED, kl.K_KILL, kl.K_EQUITY,
         kl.K_KILL_RESET, kl.K_FUNDING}
COMMON = {kl.I_KIND, kl.I_TS, kl.I_SYM, kl.I_SEQ}


def test_every_kind_names_distinct_columns_inside_the_row():
    assert set(kl.EVENT_FIELDS) == KINDS
    for f in kl.EVENT_FIELDS.values():
        ints, floats = list(f.ints.values()), list(f.floats.values())
        assert len(set(ints)) == len(ints), f.name
        assert len(set(floats)) == len(floats), f.name
        assert not set(ints) & COMMON, f.name
        assert all(0 <= c < kl.OI_W for c in ints), f.name
        assert all(0 <= c < kl.OF_W for c in floats), f.name
    assert len(COMMON) == 4 and all(0 <= c < kl.OI_W for c in COMMON)


def test_a_field_name_has_one_column_in_every_kind_that_has_it():
    cols = defaultdict(set)
    for f in kl.EVENT_FIELDS.values():
        for name, c in f.ints.items():
            cols["i:" + name].add(c)
        for name, c in f.floats.items():
            cols["f:" + name].add(c)
    assert {k: v for k, v in cols.items() if len(v) > 1} == {}


def _engine() -> AccountEngine:
    acct = AccountConfig(
        name="t", capital_quote=3000.0, leverage=3.0, symbols=(SYM,),
        strategy=GridAtrParams(sma_period=2, atr_period=1, levels=3, atr_start=1.0,
                               atr_step=1.0),
        risk=RiskConfig(daily_loss_limit=0.03, max_margin_ratio=1.0, session_loss_grid=0.9,
                        session_loss_single=0.9),
    )
    n = 24 * 12
    fund_ts = np.arange(8, n + 1, 8, dtype=np.int64) * H  # a settlement every 8 h
    fund = (fund_ts, np.full(len(fund_ts), 0.0005))
    return AccountEngine(acct, [SYM], {SYM: "1h"}, FeesConfig(), {}, funding={SYM: fund})


def _candles(seed: int = 3, n: int = 24 * 12) -> IndicatorChunk:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    o = np.r_[100.0, c[:-1]]
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.02, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.02, n))
    ts = np.arange(n, dtype=np.int64) * H
    chunk = CandleChunk(SYM, "1h", ts, o, h, lo, c, np.ones(n), 0, True)
    return IndicatorChunk(chunk, {"sma_2": c.copy(), "atr_1": c * 0.01})


@pytest.fixture(scope="module")
def run():
    """Raw event rows and the journal of one account run that logs every kind."""
    rows: list[tuple[np.ndarray, np.ndarray]] = []
    real = engine_mod.decode

    def keep(oi, of, *a):
        rows.append((oi.copy(), of.copy()))
        return real(oi, of, *a)

    mp = pytest.MonkeyPatch()
    mp.setattr(engine_mod, "decode", keep)
    try:
        eng = _engine()
        out = JournalBatch()
        out.extend(eng.on_chunk(_candles()))
        out.extend(eng.flush())
    finally:
        mp.undo()
    return np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows]), out


def test_the_run_logs_every_kind(run):
    oi, _, _ = run
    assert set(oi[:, kl.I_KIND].tolist()) == KINDS


def test_the_kernel_writes_only_the_named_columns_of_a_kind(run):
    oi, of, _ = run
    for ri, rf in zip(oi, of):
        f = kl.EVENT_FIELDS[int(ri[kl.I_KIND])]
        unused_i = set(range(kl.OI_W)) - COMMON - set(f.ints.values())
        unused_f = set(range(kl.OF_W)) - set(f.floats.values())
        assert all(ri[c] == 0 for c in unused_i), (f.name, ri)
        assert all(rf[c] == 0.0 for c in unused_f), (f.name, rf)
    assert (np.diff(oi[:, kl.I_SEQ]) == 1).all()  # one sequence, no gaps


def test_the_named_view_says_what_the_journal_says(run):
    oi, of, out = run
    views = [kl.event_fields(i, f) for i, f in zip(oi, of)]
    trades = [v for v in views if v["kind"] == "trade"]
    assert [(t["open_ts"], t["ts"], t["net_pnl"], t["fees"], t["funding"], t["entries"])
            for t in trades] == [(r.open_ts_ms, r.close_ts_ms, r.pnl, r.fees, r.funding,
                                  r.entries) for r in out.trades]
    fills = [v for v in views if v["kind"] in ("entry", "exit")]
    assert [(v["ts"], v["price"], v["amount"], v["fee"], v["pnl"]) for v in fills] == [
        (r.ts_ms, r.price, r.amount, r.fee, r.realized_pnl) for r in out.fills]
    funding = [v for v in views if v["kind"] == "funding"]
    events = [e for e in out.events if e.kind == "funding"]
    assert [(v["rate"], v["payment"], v["mark_price"]) for v in funding] == [
        (e.detail["rate"], e.detail["payment"], e.detail["mark_price"]) for e in events]
    kills = [v for v in views if v["kind"] == "kill"]
    trips = [e for e in out.events if e.kind == "kill_switch_tripped"]
    assert [(v["value"], v["threshold"], v["peak"]) for v in kills] == [
        (e.detail["value"], e.detail["threshold"], e.detail["peak_equity"]) for e in trips]
    equity = [v for v in views if v["kind"] == "equity"]
    assert [(v["equity"], v["used_margin"]) for v in equity] == [
        (e.equity, e.used_margin) for e in out.equity]


def test_emit_event_starts_a_clean_row_and_takes_the_next_sequence_number():
    """``emit_event`` zeroes every column of its row (nothing of an earlier event
    leaks into a kind's unnamed columns), writes kind, time, symbol and the sequence
    number, and advances the sequence."""
    ai = np.zeros(kl.AI_W, np.int64)
    ai[kl.AI_SEQ] = 41
    log = kl.EventLog(np.full((2, kl.OI_W), 7, np.int64), np.full((2, kl.OF_W), 7.0))
    assert kl.emit_event(log, 1, ai, kl.K_FUNDING, 5 * H, 3) == 2
    row_i, row_f = log.ints[1], log.floats[1]
    assert (row_i[kl.I_KIND], row_i[kl.I_TS], row_i[kl.I_SYM], row_i[kl.I_SEQ]) == (
        kl.K_FUNDING, 5 * H, 3, 41)
    named = {kl.I_KIND, kl.I_TS, kl.I_SYM, kl.I_SEQ}
    assert all(row_i[j] == 0 for j in range(kl.OI_W) if j not in named)
    assert (row_f == 0.0).all() and ai[kl.AI_SEQ] == 42
    assert (log.ints[0] == 7).all()  # other rows untouched


def test_the_state_record_shares_the_state_arrays_and_the_state_still_pickles():
    st = kl.KernelState.new(2, 3, 1000.0, 24)
    rec = st.arrays()
    assert isinstance(rec, kl.StateArrays) and rec._fields == tuple(vars(st))
    assert all(getattr(rec, k) is getattr(st, k) for k in rec._fields)
    back = pickle.loads(pickle.dumps(st))  # a Bytewax snapshot of the engine holds it
    assert type(back) is kl.KernelState
    for k in rec._fields:
        assert np.array_equal(getattr(back, k), getattr(st, k), equal_nan=k in ("sf", "qlv"))
