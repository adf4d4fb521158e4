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

Websockets (:mod:`gridflow.fakex.ws`, bodies in :mod:`gridflow.fakex.ws_events`):
``start()`` also serves Binance USDⓈ-M streams on ``fx.ws_url``. Real ccxt.pro::

    ex = ccxt.pro.binanceusdm({"apiKey": key, "secret": secret, "options": {
        "fetchCurrencies": False, "adjustForTimeDifference": False, "defaultType": "swap"}})
    ex.urls["api"] = {**ex.urls["api"], **fx.ccxt_urls(),
                      "ws": {**ex.urls["api"]["ws"], **fx.ccxt_ws_urls()}}

(``gridflow.exchange.client.make_pro_exchange`` with ``ws_urls=fx.ccxt_ws_urls()`` does
the same). ccxt then dials ``/market/ws/<n>`` (klines, mark price) and
``/private/ws?listenKey=K`` after ``POST /fapi/v1/listenKey`` (API key, no signature).
Market events come on every clock move: the forming kline (``x: false``), a final one
(``x: true``, the REST kline's numbers) per closed candle, the mark price (REST
``premiumIndex``'s); ``E`` is the simulated clock. User events: ``ORDER_TRADE_UPDATE``
(NEW, TRADE with ``t`` = the REST ``userTrades`` id, CANCELED, EXPIRED),
``ALGO_UPDATE`` (NEW, TRIGGERED, FINISHED, CANCELED, EXPIRED) and ``ACCOUNT_UPDATE``
(after each trade and funding payment), in exchange-time order; a clock move's user
events are sent before its market events (on one connection subscribing the listen key
too, strictly in that order). A new user-data connection makes ccxt fetch positions by
REST (``positionRisk``) unless ``options["watchPositions"]["fetchPositionsSnapshot"]``
is False. The listen key lives until ``fx.expire_listen_key()`` (the ``listenKeyExpired``
event, then close: ccxt's pending watch raises ``NetworkError``; ``await
ex.keep_alive_listen_key()`` then gets ``-1125`` and makes ccxt forget the key, so the
next watch authenticates anew) or ``DELETE``. Faults: ``fx.ws_drop(stream)``,
``fx.ws_silence(stream, on)``, ``FaultPlan(ws_duplicate=p, ws_reorder=q)``; each in
``fx.fault_log``. ``fx.rest_weight()`` sums Binance's request weights of the REST
requests logged (:mod:`gridflow.fakex.weights`).

Bitget: ``FakeExchange(..., dialect="bitget", passphrase=P)`` serves the Bitget v2
USDT-M futures ("mix") REST API instead (:mod:`gridflow.fakex.dialects`,
:mod:`gridflow.fakex.bitget_rest`, :mod:`gridflow.fakex.bitget_orders`) on the same
book, clock, funding and faults, one-way position mode, real Bitget contract filters;
``ccxt.bitget(fx.ccxt_config())`` (or ``urls: {"api": fx.ccxt_urls()}``, ``password``
and ``options={"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}}``) trades
against it. Stops: ``create_order(sym, "market", "sell", amount, None, {"triggerPrice":
p, "reduceOnly": True})`` (``place-plan-order``) or ``{"stopLossPrice": p}``
(``place-tpsl-order``, listed with ``params={"planType": "profit_loss"}``).

Binance spot: ``FakeExchange(..., dialect="binance", spot_balances={"BTC": 0.5})`` serves
``/api/v3`` (:mod:`gridflow.fakex.spot_rest`) on a
:class:`~gridflow.fakex.spot_book.SpotBook`: balances per asset (``free`` / ``locked``;
``fx.balances()``), the real spot filters (``binance_spot_symbols.json``,
:func:`gridflow.fakex.spot_markets.binance_spot_filters`), fees 0.001 charged in the
asset received, no positions, shorts or funding (``fx.positions()``: base held minus the
initial base). ``ccxt.binance({**fx.ccxt_config(), ...})`` trades against it. Stop-limits:
``create_order(sym, "limit", "sell", amount, limit, {"triggerPrice": p})`` is a
``STOP_LOSS_LIMIT`` (``{"takeProfitPrice": p}`` a ``TAKE_PROFIT_LIMIT``); once the path
reaches ``p`` it is a working LIMIT at ``limit`` under the same id, and a candle that
opens beyond the limit leaves it resting unfilled.

>>> fx = FakeExchange(candles={"BTC/USDT": arr}, start_ms=ts)   # doctest: +SKIP
>>> url = fx.start(); urls = fx.ccxt_urls()                      # doctest: +SKIP
"""

from gridflow.fakex.faults import FaultPlan
from gridflow.fakex.server import FakeExchange

__all__ = ["FakeExchange", "FaultPlan"]
