"""The one redactor (gridflow.redaction): every text path and every logging filter."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from gridflow.dataflows import alert_sink
from gridflow.exchange import client, retry
from gridflow.redaction import (
    MIN_SECRET_LEN,
    REDACTED,
    SECRET_FILTER,
    SecretFilter,
    error_text,
    forget_secrets,
    redact,
)

SECRET = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=MIN_SECRET_LEN,
                 max_size=80)
TEXT = st.text(max_size=60)


@given(SECRET, TEXT, TEXT)
def test_a_literal_secret_never_survives(secret, before, after):
    out = redact(before + secret + after + secret, [secret])
    assert secret not in out
    assert REDACTED in out


@given(st.sampled_from(["signature", "apiKey", "X-MBX-APIKEY", "listenKey", "password",
                        "token", "secret"]),
       st.sampled_from(["=", ": ", '":"']), st.from_regex(r"[A-Za-z0-9]{6,40}", fullmatch=True))
def test_the_value_of_a_credential_key_is_masked(key, sep, value):
    out = redact(f"POST /fapi/v1/order?symbol=BTCUSDT&{key}{sep}{value}&x=1", [])
    assert value not in out.split(key, 1)[1][:len(sep) + len(value)]
    assert f"{key}{sep}{REDACTED}" in out


def test_short_literals_are_left_alone_unless_asked():
    assert redact("user abc logged", ["abc"]) == "user abc logged"
    assert redact("host ABCD down", ["abcd"], min_len=4, ignore_case=True) == "host *** down"


def test_the_filter_masks_message_arguments_and_traceback():
    f = SecretFilter(["0123456789abcdef"])
    f.add(["later-added-secret"])
    try:
        raise RuntimeError("boom with later-added-secret inside")
    except RuntimeError:
        import sys

        rec = logging.LogRecord("ccxt", logging.ERROR, __file__, 1, "key %s failed",
                                ("0123456789abcdef",), sys.exc_info())
    assert f.filter(rec)
    text = rec.getMessage()
    assert "0123456789abcdef" not in text and "later-added-secret" not in text
    assert "RuntimeError" in text and rec.exc_info is None


def test_every_path_uses_the_one_redactor():
    assert retry.redact is redact and retry.error_text is error_text
    assert isinstance(alert_sink._REDACTOR, SecretFilter)
    logger = logging.getLogger("ccxt")
    try:
        client._guard_logs(["an-api-key-12345"])
        assert SECRET_FILTER in logger.filters
        client._guard_logs(["an-api-key-12345"])  # once, however many exchanges
        assert logger.filters.count(SECRET_FILTER) == 1
        assert redact("key an-api-key-12345 sent") == "key *** sent"  # every path
    finally:
        forget_secrets(["an-api-key-12345"])
    assert redact("key an-api-key-12345 sent") == "key an-api-key-12345 sent"
