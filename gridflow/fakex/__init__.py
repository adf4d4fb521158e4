"""A local fake Binance USDⓈ-M futures exchange for tests.

It serves the subset of the Binance USDⓈ-M REST API that ccxt's ``binanceusdm`` calls
(markets, klines, tickers, mark prices, orders, algo (conditional) orders, trades,
balance, positions, income history) over HTTP on 127.0.0.1, replays candles on a simulated clock, matches
orders against each candle's price path and injects seeded faults. Prices are in
quote currency (USDT), amounts in base currency, timestamps in ms UTC.

Use it through :func:`gridflow.exchange.client.make_exchange` with
``ExchangeConfig(id="binanceusdm", urls=fx.ccxt_urls(), ...)``: that sets the option
``fetchCurrencies: False`` (no spot-wallet ``sapi`` call) and merges ccxt's USDⓈ-M
error map (chosen by URL host otherwise). Calling ``fetch_open_orders()`` without a
symbol also needs ``options={"fetchOpenOrders": {"warnWithoutSymbol": False}}``.

ccxt call forms (``sym = "BTC/USDT:USDT"``):

* order by client id: ``create_order(sym, "limit", side, amount, price,
  {"clientOrderId": cid})``; ``fetch_order(None, sym, {"clientOrderId": cid})``;
  ``cancel_order(None, sym, {"clientOrderId": cid})``.
* stop (algo API): ``create_order(sym, "market", "sell", amount, None, {"stopPrice": p,
  "reduceOnly": True, "clientOrderId": cid})``; fetch / cancel with the same params
  plus ``"trigger": True``; open stops: ``fetch_open_orders(sym, params={"trigger":
  True})``.

Clock and mark: ``fx.step(n)`` closes whole candles; ``fx.substep(k, of)`` and
``fx.advance_ms(ms)`` move the clock inside the forming candle along the same price path
the matcher walks (fills, ``/fapi/v1/time``, the forming kline, tickers, the mark price of
``/fapi/v1/premiumIndex`` and unrealized PnL follow it). ``FakeExchange(...,
funding={"BTC/USDT": (times_ms, rates)})`` settles funding on open positions; ccxt's
``fetch_funding_history`` reads the payments from ``/fapi/v1/income``.

Conventions: a triggered algo order places a MARKET (or LIMIT) order whose
``clientOrderId`` is the algo order's ``clientAlgoId`` (so ``fetch_order(None, sym,
{"clientOrderId": cid})`` without ``trigger`` finds it) and whose id is the algo
order's ``actualOrderId``. A client id used once, by any order in any status, is
refused as duplicate (-4116).

>>> fx = FakeExchange(candles={"BTC/USDT": arr}, start_ms=ts)   # doctest: +SKIP
>>> url = fx.start(); urls = fx.ccxt_urls()                      # doctest: +SKIP
"""

from gridflow.fakex.faults import FaultPlan
from gridflow.fakex.server import FakeExchange

__all__ = ["FakeExchange", "FaultPlan"]
