"""ccxt logs request headers at DEBUG level: the API key and secret never reach a log."""

from __future__ import annotations

import logging

import numpy as np
from pydantic import SecretStr

from gridflow.config.live import ExchangeConfig
from gridflow.exchange.client import make_exchange
from gridflow.fakex import FakeExchange

KEY, SECRET = "AKIA-LOG-TEST-KEY-123", "LOG-TEST-SECRET-456"


def test_ccxt_debug_logs_never_show_the_key_or_secret(caplog):
    H = 3_600_000
    ts = np.arange(100, dtype=float) * H + 1_700_000_000_000 // H * H
    arr = np.column_stack([ts, np.full(100, 100.0), np.full(100, 101.0), np.full(100, 99.0),
                           np.full(100, 100.0), np.ones(100)])
    fx = FakeExchange(candles={"BTC/USDT": arr}, start_ms=int(ts[50]), api_key=KEY, secret=SECRET)
    fx.start()
    try:
        ex = make_exchange(ExchangeConfig(api_key=SecretStr(KEY), secret=SecretStr(SECRET),
                                          urls=fx.ccxt_urls(), rate_limit_ms=0))
        with caplog.at_level(logging.DEBUG):
            logging.getLogger("ccxt").setLevel(logging.DEBUG)
            ex.verbose = False
            ex.load_markets()
            ex.fetch_balance()
            bad = make_exchange(ExchangeConfig(api_key=SecretStr(KEY), secret=SecretStr("WRONG-SECRET-0000"),
                                               urls=fx.ccxt_urls(), rate_limit_ms=0))
            try:
                bad.fetch_balance()
            except Exception as exc:  # AuthenticationError: its text must not carry them
                assert KEY not in str(exc) and SECRET not in str(exc)
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "fapi" in text and "***" in text  # ccxt logged its signed requests, redacted
        assert KEY not in text and SECRET not in text
    finally:
        fx.stop()
