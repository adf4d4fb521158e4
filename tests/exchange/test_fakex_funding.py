"""Funding settlements and the wallet of the fake exchange, driven by real ccxt.

Bundled real BTC/ETH 1h candles and Binance funding rates around 2024-01-01 (settlements
at 00/08/16 UTC), plus two made-up BTC settlements inside candles. A settlement on a
candle boundary is paid at the close of the candle ending there; one inside a candle at
the path price at that time (path ``open -> low -> high -> close`` if green, else
``open -> high -> low -> close``, three legs of a third of the candle).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import bundled_window
from pydantic import SecretStr

from gridflow.config.live import ExchangeConfig
from gridflow.data.funding import bundled_funding_files, read_funding
from gridflow.exchange.client import make_exchange
from gridflow.fakex import FakeExchange

START = 1704067200000  # 2024-01-01 00:00 UTC, itself a settlement (never paid: not passed)
HOUR = 3_600_000
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
T_IN = START + 20 * HOUR + HOUR // 2  # made-up BTC settlements inside candles 20 and 21
T_IN2 = START + 21 * HOUR + 10 * 60_000
R_IN, R_IN2 = 0.001, -0.0005


def bars() -> dict[str, np.ndarray]:
    return bundled_window(START, 30, 30)


def funding() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    files = bundled_funding_files()
    out = {s: read_funding(files[s]) for s in ("BTC/USDT", "ETH/USDT")}
    ts, rate = out["BTC/USDT"]
    ts = np.append(ts, [T_IN, T_IN2])
    rate = np.append(rate, [R_IN, R_IN2])
    order = np.argsort(ts, kind="stable")
    out["BTC/USDT"] = (ts[order], rate[order])
    return out


def candle(cs, sym: str, t: int) -> tuple[float, float, float, float]:
    r = cs[sym][int(np.searchsorted(cs[sym][:, 0], t))]
    assert r[0] == t
    return float(r[1]), float(r[2]), float(r[3]), float(r[4])


def path_price(cs, sym: str, t: int) -> float:
    """Price at time ``t`` on the path of the candle containing it (test's own reading)."""
    t_open = t - t % HOUR
    o, h, lo, c = candle(cs, sym, t_open)
    path = [o, lo, h, c] if c >= o else [o, h, lo, c]
    u = t - t_open
    i = min(int(u / (HOUR / 3)), 2)
    return path[i] + (path[i + 1] - path[i]) * (u - i * HOUR / 3) / (HOUR / 3)


def rate_at(fd, sym: str, t: int) -> float:
    ts, rate = fd[sym]
    i = int(np.searchsorted(ts, t))
    assert ts[i] == t
    return float(rate[i])


@pytest.fixture
def setup():
    cs, fd = bars(), funding()
    fx = FakeExchange(cs, timeframe="1h", start_ms=START, leverage=5, funding=fd)
    fx.start()
    ex = make_exchange(ExchangeConfig(
        id="binanceusdm", api_key=SecretStr("test-key"), secret=SecretStr("test-secret"),
        urls=fx.ccxt_urls(), rate_limit_ms=1))
    yield fx, ex, cs, fd
    fx.stop()


def check_wallet(fx, ex) -> None:
    """Wallet = initial - fees + realized - funding; total = wallet + unrealized at mark."""
    trades = fx.trades()
    fees = sum(t["commission"] for t in trades)
    realized = sum(t["realizedPnl"] for t in trades)
    paid = sum(p["paid"] for p in fx.funding_payments())
    wallet = 10_000.0 - fees + realized - paid
    assert fx.balance() == pytest.approx(wallet, abs=1e-9)
    marks = ex.fetch_mark_prices([BTC, ETH])
    upnl = sum(p["amount"] * (marks[f"{s}:USDT"]["markPrice"] - p["entry_price"])
               for s, p in fx.positions().items())
    assert fx.unrealized() == pytest.approx(upnl, abs=1e-6)
    assert fx.equity() == pytest.approx(wallet + upnl, abs=1e-6)
    bal = ex.fetch_balance()
    info, asset = bal["info"], bal["info"]["assets"][0]
    assert float(info["totalWalletBalance"]) == pytest.approx(wallet, abs=1e-7)
    assert float(asset["walletBalance"]) == pytest.approx(wallet, abs=1e-7)
    assert float(info["totalUnrealizedProfit"]) == pytest.approx(upnl, abs=1e-6)
    assert float(asset["unrealizedProfit"]) == pytest.approx(upnl, abs=1e-6)
    assert float(info["totalMarginBalance"]) == pytest.approx(wallet + upnl, abs=1e-6)
    assert bal["USDT"]["total"] == pytest.approx(wallet + upnl, abs=1e-6)


def test_positions_pay_funding_at_the_mark(setup):
    fx, ex, cs, fd = setup
    ex.create_order(BTC, "market", "buy", 0.05, None)
    fx.step(8)  # 08:00 settles at the close of the 07:00 candle
    ex.create_order(BTC, "market", "sell", 0.1, None)  # flip to short 0.05
    ex.create_order(ETH, "market", "buy", 1.0, None)
    for _ in range(32):  # to 16:00 in quarter candles
        fx.substep(1, 4)
    fx.step(4)
    fx.substep(2, 4)  # stops exactly on T_IN (20:30)
    assert fx.now_ms() == T_IN
    m = ex.fetch_mark_price(BTC)
    assert float(m["info"]["lastFundingRate"]) == R_IN and m["info"]["nextFundingTime"] == T_IN2
    fx.step()
    fx.substep(1, 2)  # 21:00 -> 21:30 passes T_IN2 (21:10) inside the walk
    check_wallet(fx, ex)  # mid-candle: unrealized at the path price
    fx.step(3)  # to 00:00: settles at the close of the 23:00 candle

    btc, eth = 0.05, 1.0
    want = [  # (symbol, time, position, mark)
        ("BTC/USDT", START + 8 * HOUR, btc, candle(cs, "BTC/USDT", START + 7 * HOUR)[3]),
        ("BTC/USDT", START + 16 * HOUR, -btc, candle(cs, "BTC/USDT", START + 15 * HOUR)[3]),
        ("ETH/USDT", START + 16 * HOUR, eth, candle(cs, "ETH/USDT", START + 15 * HOUR)[3]),
        ("BTC/USDT", T_IN, -btc, path_price(cs, "BTC/USDT", T_IN)),
        ("BTC/USDT", T_IN2, -btc, path_price(cs, "BTC/USDT", T_IN2)),
        ("BTC/USDT", START + 24 * HOUR, -btc, candle(cs, "BTC/USDT", START + 23 * HOUR)[3]),
        ("ETH/USDT", START + 24 * HOUR, eth, candle(cs, "ETH/USDT", START + 23 * HOUR)[3]),
    ]
    got = fx.funding_payments()
    assert [(p["symbol"], p["time"]) for p in got] == [(s, t) for s, t, _, _ in want]
    for p, (sym, t, amount, mark) in zip(got, want):
        rate = rate_at(fd, sym, t)
        assert p["amount"] == pytest.approx(amount) and p["rate"] == rate
        assert p["mark"] == pytest.approx(mark, rel=1e-12)
        assert p["paid"] == pytest.approx(amount * mark * rate, rel=1e-12)
    assert got[3]["paid"] < 0 < got[4]["paid"]  # short receives +rate, pays -rate

    for sym, code in ((BTC, "BTC/USDT"), (ETH, "ETH/USDT")):
        hist = ex.fetch_funding_history(sym, since=START)
        mine = [p for p in got if p["symbol"] == code]
        assert len(hist) == len(mine)
        for h, p in zip(hist, mine):
            assert (h["symbol"], h["code"], h["timestamp"]) == (sym, "USDT", p["time"])
            assert h["id"] == str(p["tranId"]) and h["info"]["incomeType"] == "FUNDING_FEE"
            assert h["amount"] == pytest.approx(-p["paid"], abs=1e-8)
    assert len(ex.fetch_funding_history(since=START)) == len(got)
    assert len(ex.fetch_funding_history(BTC, since=T_IN, params={"until": T_IN2})) == 2
    assert [h["timestamp"] for h in ex.fetch_funding_history(BTC, since=START, limit=2)] == \
        [got[0]["time"], got[1]["time"]]

    check_wallet(fx, ex)
    rows = ex.fapiPrivateGetIncome({"startTime": START, "limit": 1000})  # every kind
    assert {r["incomeType"] for r in rows} == {"FUNDING_FEE", "COMMISSION", "REALIZED_PNL"}
    assert sum(float(r["income"]) for r in rows) == pytest.approx(fx.balance() - 10_000,
                                                                  abs=1e-6)
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_no_schedule_no_funding_and_flat_accounts_pay_nothing(setup):
    fx, ex, _, fd = setup
    fx.step(9)
    assert fx.funding_payments() == [] and fx.balance() == 10_000.0
    assert ex.fetch_funding_history(BTC, since=START) == []
    plain = FakeExchange(bars(), timeframe="1h", start_ms=START)
    plain.step(9)
    assert plain.funding_payments() == [] and plain.balance() == 10_000.0
    with pytest.raises(ValueError, match="no candles"):
        FakeExchange(bars(), start_ms=START, funding={"XRP/USDT": fd["BTC/USDT"]})
