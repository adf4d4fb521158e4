"""The control app's words: UTC dates, rounded numbers, one sentence per journal event."""

from __future__ import annotations

import math
import re

from hypothesis import given
from hypothesis import strategies as st

from gridflow.control.app.formatting import event_line, event_rows, fmt, iso, num, pct
from gridflow.event_kinds import EventKind

T = 1_704_067_200_000  # 2024-01-01 00:00 UTC
EVENTS = {
    EventKind.KILL_SWITCH_TRIPPED: ("SESSION_LOSS_GRID", {
        "value": -0.0749738123, "threshold": -0.05, "day_start_equity": 9812.123456,
        "peak_equity": 10000.0}),
    EventKind.KILL_SWITCH_RESET: ("DAILY_LOSS", {"by": "DAY_ROLLOVER", "equity": 7055.964192,
                                                 "day_start_equity": 2474.4854}),
    EventKind.ORDER_DENIED: ("MAX_MARGIN_RATIO", {
        "level": 3, "side": "buy", "price": 2223.9412345, "amount": 0.44960001,
        "margin_ratio_after": 0.7149612345, "max_margin_ratio": 0.7, "decision_ts_ms": T}),
    EventKind.COMMAND_APPLIED: ("pause", {"command_id": 2, "kind": "pause", "payload": {},
                                          "issued_by": "alice", "issued_at_ms": T}),
    EventKind.COMMAND_REJECTED: ("BAD_PAYLOAD", {
        "command_id": 3, "kind": "pause", "payload": {"x": 1}, "issued_by": "bob",
        "issued_at_ms": T, "error": "unexpected keys ['x']; allowed ['symbol']"}),
    EventKind.FUNDING: ("SETTLEMENT", {"position_side": "long", "mark_price": 43000.123456,
                                       "amount": 0.1, "rate": 0.0001, "payment": 0.4300012,
                                       "avg_entry": 42000.0}),
    EventKind.DATA_GAP: ("MISSING_CANDLES", {"from_ts_ms": T, "to_ts_ms": T + 4 * 3_600_000,
                                             "missing": 3}),
    EventKind.ENGINE_STARTED: ("LIVE", {"symbols": ["BTC/USDT", "ETH/USDT"], "since_ts_ms": T}),
    EventKind.SLIPPAGE: ("L0", {"expected": 100.123456789, "filled": 100.2222222,
                                "slippage_frac": 0.00098765432}),
}
EXPECTED = {
    EventKind.KILL_SWITCH_TRIPPED: "Kill switch SESSION_LOSS_GRID tripped: -7.50 % against a "
                                   "limit of -5.00 % (peak equity 10,000.00)",
    EventKind.KILL_SWITCH_RESET: "Kill switch DAILY_LOSS reset at the UTC day rollover, "
                                 "equity 7,055.96",
    EventKind.ORDER_DENIED: "Denied buy L3 0.4496 @ 2,223.94: MAX_MARGIN_RATIO (margin ratio "
                            "after 0.71496, max margin ratio 0.7)",
    EventKind.COMMAND_APPLIED: "Command pause applied by alice (command 2)",
    EventKind.COMMAND_REJECTED: "Command pause rejected: BAD_PAYLOAD — unexpected keys ['x']; "
                                "allowed ['symbol']; by bob (command 3)",
    EventKind.FUNDING: "Funding on a long position: paid 0.43 (rate 0.0100 %, mark 43,000.12)",
    EventKind.DATA_GAP: "3 candles missing between 2024-01-01 00:00 and 2024-01-01 04:00 UTC",
    EventKind.ENGINE_STARTED: "Engine started (LIVE): symbols BTC/USDT, ETH/USDT, since "
                              "2024-01-01 00:00 UTC",
    EventKind.SLIPPAGE: "Slippage (L0): expected 100.12, filled 100.22, slippage frac "
                        "0.00098765",
}


def rounded(line: str) -> bool:
    """Every decimal number in ``line`` has at most 5 significant digits, or 2 decimals
    from 1,000 up."""
    for tok in re.findall(r"\d[\d,]*\.\d+", line):
        whole, frac = tok.replace(",", "").split(".")
        digits = (whole + frac).lstrip("0")
        if not (len(digits) <= 5 or (int(whole) >= 1000 and len(frac) == 2)):
            return False
    return True


def test_each_event_reads_as_one_sentence() -> None:
    for kind, (reason, detail) in EVENTS.items():
        line = event_line({"kind": kind, "reason": reason, "ts_ms": T, "detail": detail})
        assert line == EXPECTED[kind]
        assert "{" not in line and rounded(line)


def test_every_event_kind_gets_a_line_without_raw_json() -> None:
    for kind in EventKind:
        detail = {"value": 1.23456789, "nested": {"a_ts_ms": T, "b": [1.5, 2]}, "none": None}
        line = event_line({"kind": kind, "reason": "X", "ts_ms": T, "detail": detail})
        assert line and "{" not in line and rounded(line), (kind, line)
    (row,) = event_rows([{"kind": "funding", "reason": "SETTLEMENT", "ts_ms": T, "symbol":
                          "BTC/USDT", "detail": EVENTS[EventKind.FUNDING][1]}])
    assert row == {"time": "2024-01-01 00:00", "event": "funding", "symbol": "BTC/USDT",
                   "what": EXPECTED[EventKind.FUNDING]}


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_numbers_are_rounded_never_wrong(v: float) -> None:
    text = num(v)
    if not math.isfinite(v):
        assert text == "n/a"
        return
    back = float(text.replace(",", ""))
    if abs(v) >= 1000:
        assert re.fullmatch(r"-?\d{1,3}(,\d{3})*\.\d\d", text) and abs(back - v) <= 0.005
    else:
        assert abs(back - v) <= 5e-5 * abs(v) + 1e-300


def test_cells_dates_and_percents() -> None:
    assert iso(T) == "2024-01-01 00:00" and iso(None) == iso(-1) == ""
    assert pct(-0.075) == "-7.50 %" and pct(None) == pct(math.nan) == "n/a"
    assert num(3) == "3" and num(12345) == "12,345" and num(True) == "yes"
    assert fmt([{"price": 100.123456, "filled": True}, {"price": 99.5}]) == "●100.12 ○99.5"
    assert fmt({"a_ts_ms": T, "b": 0.123456789}) == "a 2024-01-01 00:00 UTC, b 0.12346"
