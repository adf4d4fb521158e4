"""The venues a config may name and the rules each imposes before anything connects
(:mod:`gridflow.config.venues`), and the passphrase as a secret."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from gridflow.config import load_config
from gridflow.config.live import ExchangeConfig
from gridflow.config.loader import config_hash
from gridflow.config.venues import VENUES, short_field

LIVE = {"mode": "live", "allow_live": True}
KEYS = {"api_key": "k" * 16, "secret": "s" * 32}


def test_a_venue_sets_its_market_type_and_refuses_the_other():
    assert ExchangeConfig(id="binance").market_type == "spot"
    assert ExchangeConfig(id="bitget").market_type == "swap"
    assert ExchangeConfig().market_type == "swap"  # binanceusdm
    with pytest.raises(ValidationError, match="'binance' is Binance spot: market_type must "
                                              "be 'spot'"):
        load_config(None, live={"exchange": {"id": "binance", "market_type": "swap"}})
    with pytest.raises(ValidationError, match="Bitget USDT-M perpetuals: market_type must be"):
        load_config(None, live={"exchange": {"id": "bitget", "market_type": "spot"}})
    # paper takes any ccxt venue, the downloader any market of any venue
    assert load_config(None, live={"exchange": {"id": "kraken", "market_type": "spot"}})
    assert ExchangeConfig(id="bitget", market_type="spot").market_type == "spot"


def test_live_orders_only_on_a_venue_tested_end_to_end():
    ok = load_config(None, live={**LIVE, "exchange": {"id": "binanceusdm", **KEYS}})
    assert ok.live.mode == "live"
    with pytest.raises(ValidationError, match="not a venue gridflow trades"):
        load_config(None, accounts=({"name": "a"},),
                    live={**LIVE, "exchange": {"id": "kraken", **KEYS}})
    pw = {"password": "p" * 12}
    bitget = load_config(None, live={**LIVE, "exchange": {"id": "bitget", **KEYS, **pw}})
    assert bitget.live.exchange.id == "bitget" and VENUES["bitget"].live == "live"
    with pytest.raises(ValidationError, match="needs live.exchange.password"):
        load_config(None, live={**LIVE, "exchange": {"id": "bitget", **KEYS}})
    with pytest.raises(ValidationError, match="Binance spot is in beta"):
        load_config(None, live={**LIVE, "exchange": {"id": "binance", **KEYS}})
    beta = load_config(None, live={**LIVE, "allow_beta_venue": True,
                                   "exchange": {"id": "binance", **KEYS}})
    assert beta.live.exchange.market_type == "spot" and VENUES["binance"].live == "beta"
    paper = load_config(None, live={"exchange": {"id": "bitget"}})  # paper: fine
    assert paper.live.exchange.market_type == "swap"


def test_a_short_strategy_on_a_spot_market_is_refused_naming_the_field():
    spot = {"exchange": {"id": "binance"}}
    for strategy, field in (({"name": "grid_atr", "side": "short"}, "side = 'short'"),
                            ({"name": "envelope_dca", "side": "short"}, "side = 'short'"),
                            ({"name": "grid_trend"}, "name = 'grid_trend'"),
                            ({"name": "grid_multi_tf"}, "name = 'grid_multi_tf'"),
                            ({"name": "grid_funding"}, "name = 'grid_funding'")):
        acct = {"name": "a", "strategies": [{"name": "grid_atr"},
                                            {**strategy, "symbols": ["ETH/USDT"]}]}
        with pytest.raises(ValidationError, match=rf"accounts\[0\]\.strategies\[1\]\.{field}"):
            load_config(None, accounts=(acct,), live=spot)
    sneaky = {"name": "a", "strategies": [
        {"name": "grid_atr", "overrides": {"ETH/USDT": {"side": "short"}}}]}
    with pytest.raises(ValidationError,
                       match=r"strategies\[0\]\.overrides\['ETH/USDT'\]\.side = 'short'"):
        load_config(None, accounts=(sneaky,), live=spot)
    long_only = {"name": "a", "strategies": [
        {"name": "grid_atr"}, {"name": "envelope_dca", "side": "long", "symbols": ["ETH/USDT"]}]}
    cfg = load_config(None, accounts=(long_only,), live=spot)
    assert [short_field(p) for p in cfg.accounts[0].strategies] == [None, None]
    with pytest.raises(ValidationError, match=r"accounts\[0\]\.leverage = 2: a spot market"):
        load_config(None, accounts=({"name": "a", "leverage": 2.0},), live=spot)
    # the same short strategy on a perpetual is fine
    load_config(None, accounts=({"name": "a", "strategies": [{"name": "grid_trend"}]},))


def test_the_passphrase_is_a_secret_required_where_the_venue_has_one(caplog):
    from gridflow.exchange.client import make_exchange

    VENUES_LIVE = {**VENUES}
    assert VENUES_LIVE["bitget"].passphrase and not VENUES_LIVE["binanceusdm"].passphrase
    pw = "my-pass-phrase-123"
    cfg = ExchangeConfig(id="bitget", password=pw, **KEYS)
    assert pw not in repr(cfg) and pw not in cfg.model_dump_json()
    ex = make_exchange(cfg)
    assert ex.password == pw
    assert ex.options["fetchMarkets"] == {"types": ["swap"]}  # no spot calls on load
    with caplog.at_level(logging.INFO):
        logging.getLogger("ccxt").warning("request headers ACCESS-PASSPHRASE: %s", pw)
        logging.getLogger("gridflow").warning("echo %s", pw)
    assert pw not in caplog.text
    # a default config's identity is unchanged by the new field
    assert config_hash(load_config(None)) == config_hash(
        load_config(None, live={"exchange": {"password": None}}))


def _market(ex, symbol: str, spot: bool) -> dict:
    """A market as ccxt's own ``set_markets`` builds it (the fields capabilities read)."""
    base, quote = symbol.split(":")[0].split("/")
    ex.set_markets([{"id": base + quote, "symbol": symbol, "base": base, "quote": quote,
                     "settle": None if spot else quote, "type": "spot" if spot else "swap",
                     "spot": spot, "swap": not spot, "contract": not spot,
                     "linear": None if spot else True, "inverse": None if spot else False,
                     "active": True, "precision": {}, "limits": {}}])
    return ex.market(symbol)


def test_capabilities_come_from_ccxt_for_each_venue():
    import ccxt

    from gridflow.exchange.venue import capabilities

    usdm = ccxt.binanceusdm()
    c = capabilities(usdm, _market(usdm, "BTC/USDT:USDT", spot=False))
    assert (c.reduce_only, c.stop, c.trigger_flag, c.trigger_lookup) == (
        True, "stop_market", True, "fetch_order")
    assert (c.batch_place, c.batch_cancel, c.funding, c.tp_and_stop_share_amount) == (
        5, 10, True, True)
    spot = ccxt.binance()
    c = capabilities(spot, _market(spot, "BTC/USDT", spot=True))
    assert (c.spot, c.reduce_only, c.stop, c.trigger_flag, c.trigger_lookup) == (
        True, False, "stop_limit", False, "fetch_order")
    assert (c.tp_and_stop_share_amount, c.funding, c.batch_place) == (False, False, 0)
    bitget = ccxt.bitget()
    c = capabilities(bitget, _market(bitget, "BTC/USDT:USDT", spot=False))
    # Bitget plan orders: placed and cancelled with trigger=True, but its order detail
    # does not know them: found by listing; no batch endpoint of ours there
    assert (c.reduce_only, c.trigger_flag, c.trigger_lookup, c.batch_place, c.funding) == (
        True, True, "list", 0, True)
    assert c.hedge
    with pytest.raises(ValueError, match="neither spot nor a contract"):
        capabilities(bitget, {"symbol": "X/Y"})


def test_unset_fees_are_the_venues_regular_tier_and_set_ones_are_kept(tmp_path):
    """The replay, paper and the sweep charge the venue's fees unless the config says
    otherwise: Binance USDT-M 0.02 / 0.05 %, Bitget 0.02 / 0.06 %, Binance spot 0.1 %."""
    got = {v: load_config(None, live={"exchange": {"id": v}}).fees
           for v in ("binanceusdm", "bitget", "binance")}
    assert {v: (f.maker_fee, f.taker_fee) for v, f in got.items()} == {
        "binanceusdm": (0.0002, 0.0005), "bitget": (0.0002, 0.0006),
        "binance": (0.001, 0.001)}
    assert all((f.maker_fee, f.taker_fee) == (VENUES[v].maker_fee, VENUES[v].taker_fee)
               for v, f in got.items())
    mine = load_config(None, fees={"taker_fee": 0.0004}, live={"exchange": {"id": "binance"}})
    assert (mine.fees.maker_fee, mine.fees.taker_fee) == (0.001, 0.0004)
    preset = tmp_path / "spot.toml"
    preset.write_text('[live.exchange]\nid = "binance"\n[fees]\nslippage = 0.001\n')
    spot = load_config(preset)
    assert (spot.fees.maker_fee, spot.fees.taker_fee, spot.fees.slippage) == (
        0.001, 0.001, 0.001)
