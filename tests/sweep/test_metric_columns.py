"""The sweep kernel's accumulator columns are ``MET_*``, one per name of ``MET_NAMES``;
``M_*`` stays the market parameters of ``kernel_layout`` alone."""

from __future__ import annotations

from gridflow.operators import kernel_layout as kl
from gridflow.sweep import kernel as sk


def test_metric_columns_are_named_once_and_apart_from_market_parameters():
    cols = {k: v for k, v in vars(sk).items() if k.startswith("MET_") and isinstance(v, int)}
    cols.pop("MET_W")
    assert sorted(cols.values()) == list(range(sk.MET_W)) == list(range(len(sk.MET_NAMES)))
    assert sk.MET_NAMES[sk.MET_MAXDD] == "max_drawdown"
    assert sk.MET_NAMES[sk.MET_EXACT] == "exact_steps" and sk.MET_NAMES[sk.MET_KILL] == "kill_mask"
    assert not [k for k in vars(sk) if k.startswith("M_")]
    assert {k for k in vars(kl) if k.startswith("M_")} == {
        "M_STEP", "M_MIN_AMOUNT", "M_MIN_NOTIONAL", "M_SL", "M_GRID", "M_LEVELS", "M_ALLOC",
        "M_TIME_STOP", "M_W"}
