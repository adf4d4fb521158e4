"""Stage breakdown of the live latency benchmark (``live_latency.py --trace``): the
flow's stage marks (:mod:`gridflow.latency_trace`) joined with the local exchange's
publication and arrival times."""

from __future__ import annotations

from pathlib import Path

import numpy as np

H = 3_600_000

FILL_STAGES = ("fill_parsed", "fill_recv", "fill_emit", "engine_in", "engine_out", "broker_in", "broker_wa",
               "lane_start", "lane_go", "send", "received")
CANDLE_STAGES = ("candle_emit", "broker_in", "broker_wa", "lane_start", "lane_go", "send",
                 "received")
TRIP_STAGES = ("mark_parsed", "mark_emit", "engine_out", "broker_in", "broker_wa", "lane_start", "send",
               "received")


def _stage_table(events: list[dict], stages: tuple[str, ...]) -> dict:
    """Per stage, the wall ms from the previous stage (the first from the exchange's
    publication): median over all events and mean over the slowest 5 % by total."""
    stages = tuple(st for st in stages if any(st in e for e in events))  # those marked
    rows = [e for e in events if all(st in e for st in stages)]
    if not rows:
        return {"n": 0}
    rows.sort(key=lambda e: e["received"])
    tail = rows[-max(1, len(rows) // 20):]

    def gaps(e: dict) -> list[float]:
        prev, out = 0.0, []
        for st in stages:
            out.append(e[st] - prev)
            prev = e[st]
        return out

    all_gaps, tail_gaps = np.array([gaps(e) for e in rows]), np.array([gaps(e) for e in tail])
    return {"n": len(rows), "tail_n": len(tail),
            "median_ms": dict(zip(stages, np.round(np.median(all_gaps, 0), 2).tolist())),
            "tail_mean_ms": dict(zip(stages, np.round(tail_gaps.mean(0), 2).tolist()))}


def trip_breakdown(marks: dict[str, float], orders: list[dict], clock, log,
                   trips: list[int], since_ms: int) -> dict:
    """Stages of (c): per kill-switch trip at exchange ms ``ts``, the account partition
    handing over the marks update (``mark_emit marks@ts``), then the entries' cancels
    (decided at ``ts``): the first one in the broker and its write-ahead, and the last
    one to arrive (lane start, request sent, DELETE received)."""
    deletes: dict[str, float] = {}
    for r in log:
        if r["method"] == "DELETE":
            for cid in r.get("client_order_ids") or [r.get("client_order_id")]:
                if cid:
                    deletes.setdefault(cid, r["wall"])
    cancels = [o for o in orders if o["tag"].startswith("L") and o["client_order_id"]
               in deletes]
    rows = []
    for ts in trips:
        w = clock.wall_at(ts)
        if w is None:
            continue
        # per entry slot cancelled at ts, the first DELETE at or after the trip of an
        # order placed at or before it (the slot's order of that hour, not another's)
        first: dict[str, float] = {}
        for o in cancels:
            k, at = f"{o['symbol']}@{ts}:{o['tag']}", deletes[o["client_order_id"]]
            if o["ts_ms"] <= ts and at >= w and f"broker_in {k}" in marks:
                first[k] = min(first.get(k, at), at)
        here = [(at, k) for k, at in first.items()]
        if ts < since_ms or not here or f"mark_emit marks@{ts}" not in marks:
            continue
        last_at, last = max(here)
        e = {"mark_emit": (marks[f"mark_emit marks@{ts}"] - w) * 1000,
             **({"mark_parsed": (marks[f"mark_parsed marks@{ts}"] - w) * 1000}
                if f"mark_parsed marks@{ts}" in marks else {}),
             "engine_out": (marks.get(f"engine_out marks@{ts}", marks[f"mark_emit marks@{ts}"])
                            - w) * 1000,
             "broker_in": (min(marks[f"broker_in {k}"] for _, k in here) - w) * 1000,
             "broker_wa": (min(marks[f"broker_wa {k}"] for _, k in here
                               if f"broker_wa {k}" in marks) - w) * 1000,
             "lane_start": (marks.get(f"lane_start {last}", 0.0) - w) * 1000,
             "received": (last_at - w) * 1000}
        if f"send {last}" in marks:  # a cancel is not marked when sent
            e["send"] = (marks[f"send {last}"] - w) * 1000
        if e["lane_start"] > 0:
            rows.append(e)
    return _stage_table(rows, TRIP_STAGES)


def fill_wall(clock, arrival: dict[str, float], trade: dict) -> float | None:
    """Wall time (s) at which the exchange made ``trade``: the publication of the piece
    whose walk reached its time, or, for an order that arrived after that publication
    and filled at once (a marketable limit, a market order), its arrival (``arrival``:
    client order id -> wall s of its POST). Counting a taker fill from the piece before
    its order existed would add the order's own way to the exchange to the fill's
    answer. None if the piece is unknown."""
    w = clock.wall_at(int(trade["time"]))
    if w is None:
        return None
    return max(w, arrival.get(trade.get("clientOrderId") or "", w))


def read_marks(trace: Path) -> dict[str, float]:
    """``"stage key"`` -> wall s of its first mark in ``trace``."""
    marks: dict[str, float] = {}
    for line in trace.read_text().splitlines():
        ns, stage, key = line.split(" ", 2)
        key = key.replace(":USDT@", "@")  # ccxt's perpetual symbol -> the config's
        marks.setdefault(f"{stage} {key}", int(ns) / 1e9)
    return marks


def breakdown(trace: Path, orders: list[dict], clock, log, trades, since_ms: int,
              symbols, trips: list[int] = ()) -> dict:
    """Where the time of (a), (b) and (c) goes: the flow's stage marks (wall ns, the file
    ``trace``) joined with the exchange's publication (``clock``) and arrival times
    (``log``), in ms after the publication; ``orders``: the journal's orders."""
    marks = read_marks(trace)
    arrival = {}
    for r in log:
        if r["method"] == "POST":  # a batch names its orders in client_order_ids
            for cid in r.get("client_order_ids") or [r.get("client_order_id")]:
                if cid:
                    arrival.setdefault(cid, r["wall"])
    by_cid = {o["client_order_id"]: o for o in orders}
    answers: dict[str, list[str]] = {}
    for o in orders:
        answers.setdefault(f"{o['symbol']}@{o['ts_ms']}", []).append(o["tag"])

    def event(key: str, w: float, tags: list[str], first: bool) -> dict:
        """Stage times of the answer to ``key``: of its first order to arrive (``first``,
        the entries of a candle) or of the later of its orders (take profit and stop);
        ``lane_go`` (after margin waits) defaults to ``lane_start`` (none)."""
        e: dict = {}
        for st in ("fill_parsed", "fill_recv", "fill_emit", "engine_in", "engine_out", "candle_emit"):
            if f"{st} {key}" in marks:
                e[st] = (marks[f"{st} {key}"] - w) * 1000
        by_tag = {o["tag"]: arrival.get(o["client_order_id"]) for o in orders_at.get(key, [])
                  if o["tag"] in tags}
        if not by_tag or None in by_tag.values():
            return e
        pick = (min if first else max)(by_tag, key=by_tag.get)
        e["received"] = (by_tag[pick] - w) * 1000
        for st in ("broker_in", "broker_wa", "lane_start", "lane_go", "send"):
            m = marks.get(f"{st} {key}:{pick}", marks.get(f"lane_start {key}:{pick}")
                          if st == "lane_go" else None)
            if m is not None:
                e[st] = (m - w) * 1000
        return e

    orders_at: dict[str, list[dict]] = {}
    for o in orders:
        orders_at.setdefault(f"{o['symbol']}@{o['ts_ms']}", []).append(o)
    fills = []
    for t in trades:
        o = by_cid.get(t["clientOrderId"])
        w = fill_wall(clock, arrival, t)
        key = f"{o['symbol']}@{int(t['time'])}" if o else ""
        if o and o["tag"].startswith("L") and w is not None \
                and {"TP", "SL"} <= set(answers.get(key, [])):
            fills.append(event(key, w, ["TP", "SL"], first=False))
    closes = []
    for opened, w in clock.closes.items():
        for sym in symbols:
            key = f"{sym}@{opened + H}"
            tags = [t for t in answers.get(key, []) if t.startswith("L")]
            if tags and opened + H > since_ms:
                closes.append(event(key, w, tags, first=True))
    return {"fill_to_tp_and_stop": _stage_table(fills, FILL_STAGES),
            "candle_close_to_entry": _stage_table(closes, CANDLE_STAGES),
            "mark_to_kill_switch_cancels": trip_breakdown(marks, orders, clock, log,
                                                          list(trips), since_ms)}
