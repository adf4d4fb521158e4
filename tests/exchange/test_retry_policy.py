"""The one retry policy (:func:`gridflow.exchange.retry.retry_call`, tenacity) on its own,
and the order gateway's rounds on top of it against a scripted in-memory exchange: which
requests are made, in what order, with which waits (no network, no real sleeping)."""

from __future__ import annotations

import random
from collections.abc import Callable

import ccxt
import pytest

from gridflow.config.live import RetryConfig
from gridflow.events import OrderIntent
from gridflow.exchange.gateway import OrderGateway
from gridflow.exchange.retry import backoff_delays, retry_call

CFG = RetryConfig(max_attempts=5, base_delay_s=0.5, max_delay_s=3.0)


class Script:
    """``fn()`` that raises/returns the scripted items in turn; counts its calls."""

    def __init__(self, *items: object) -> None:
        self.items, self.calls = list(items), 0

    def __call__(self) -> object:
        item = self.items[self.calls]
        self.calls += 1
        if isinstance(item, BaseException):
            raise item
        return item


def run(fn: Callable[[], object], cfg: RetryConfig = CFG, **kw) -> tuple[object, list[float]]:
    """``retry_call`` with a recording sleep and ``random.Random(3)``: (result, sleeps)."""
    sleeps: list[float] = []
    return retry_call(fn, cfg, sleep=sleeps.append, rng=random.Random(3), **kw), sleeps


def test_success_after_retries_waits_the_config_delays() -> None:
    fn = Script(ccxt.RequestTimeout("t"), ccxt.ExchangeNotAvailable("503"), "ok")
    out, sleeps = run(fn)
    assert out == "ok" and fn.calls == 3
    assert sleeps == backoff_delays(CFG, random.Random(3))[:2]  # drawn up front, in order
    assert all(0.0 <= s <= min(CFG.max_delay_s, CFG.base_delay_s * 2**k)
               for k, s in enumerate(sleeps))


def test_first_success_neither_sleeps_nor_retries() -> None:
    fn = Script("ok")
    assert run(fn) == ("ok", []) and fn.calls == 1


def test_exhausted_raises_the_last_error_itself() -> None:
    errors = [ccxt.RequestTimeout(f"t{i}") for i in range(CFG.max_attempts)]
    fn = Script(*errors)
    sleeps: list[float] = []
    with pytest.raises(ccxt.RequestTimeout) as info:
        retry_call(fn, CFG, sleep=sleeps.append, rng=random.Random(3))
    assert info.value is errors[-1] and fn.calls == CFG.max_attempts
    assert sleeps == backoff_delays(CFG, random.Random(3))  # max_attempts - 1 waits


@pytest.mark.parametrize("exc", [ccxt.InvalidOrder("no"), ccxt.InsufficientFunds("no"),
                                 ccxt.AuthenticationError("no"), ValueError("not ccxt")])
def test_non_retryable_stops_at_once(exc: BaseException) -> None:
    fn = Script(exc, "never")
    sleeps: list[float] = []
    with pytest.raises(type(exc)) as info:
        retry_call(fn, CFG, sleep=sleeps.append, rng=random.Random(3))
    assert info.value is exc and fn.calls == 1 and sleeps == []


def test_single_attempt_config_never_retries() -> None:
    fn = Script(ccxt.RequestTimeout("t"), "ok")
    with pytest.raises(ccxt.RequestTimeout):
        run(fn, RetryConfig(max_attempts=1))
    assert fn.calls == 1


def test_custom_predicate_and_on_retry_hook() -> None:
    seen: list[tuple[str, float]] = []
    fn = Script(KeyError("a"), KeyError("b"), 7)
    out, sleeps = run(fn, retryable=lambda e: isinstance(e, KeyError),
                      on_retry=lambda e, s: seen.append((str(e), s)))
    assert out == 7 and seen == [("'a'", sleeps[0]), ("'b'", sleeps[1])]


# --- the gateway's rounds on the policy ----------------------------------------------

class ScriptedExchange:
    """Just enough of a ccxt exchange for :class:`OrderGateway`: one linear swap market;
    ``create_order`` / ``fetch_order`` / ``cancel_order`` answer from scripts (an
    exception is raised, anything else returned) and every request is logged."""

    id, has, features = "scripted", {}, {}

    def __init__(self, **scripts: list) -> None:
        self.scripts, self.log = scripts, []

    def market(self, symbol: str) -> dict:
        return {"symbol": symbol, "spot": False, "contract": True, "linear": True,
                "limits": {}}

    def amount_to_precision(self, symbol: str, amount: float) -> str:
        return f"{amount:.3f}"

    def price_to_precision(self, symbol: str, price: float) -> str:
        return f"{price:.1f}"

    def _answer(self, name: str) -> object:
        self.log.append(name)
        item = self.scripts[name].pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def create_order(self, *args: object) -> object:
        return self._answer("create_order")

    def fetch_order(self, *args: object) -> object:
        return self._answer("fetch_order")

    def cancel_order(self, *args: object) -> object:
        return self._answer("cancel_order")


def place_intent() -> OrderIntent:
    return OrderIntent(intent_id="p1:place", action="place", account="acc", symbol="BTC/USDT",
                       client_order_id="p1", tag="L0", ts_ms=0, side="buy", type="limit",
                       price=29_000.0, amount=0.01)


def gateway(ex: ScriptedExchange) -> tuple[OrderGateway, list[float]]:
    sleeps: list[float] = []
    return OrderGateway(ex, "swap", CFG, sleep=sleeps.append, rng=random.Random(5)), sleeps


def test_unknown_outcome_is_looked_up_before_resending() -> None:
    ex = ScriptedExchange(create_order=[ccxt.RequestTimeout("t"), {"id": "9"}],
                          fetch_order=[ccxt.RequestTimeout("t"), ccxt.OrderNotFound("-2013")])
    gw, sleeps = gateway(ex)
    out = gw.place(place_intent())
    assert ex.log == ["create_order", "fetch_order", "fetch_order", "create_order"]
    assert (out.status, out.exchange_order_id, out.attempts) == ("sent", "9", 4)
    assert out.faults == ["RequestTimeout", "RequestTimeout"]
    assert sleeps == backoff_delays(CFG, random.Random(5))[:2]  # one wait per round


def test_lookup_that_finds_the_order_ends_without_resending() -> None:
    ex = ScriptedExchange(create_order=[ccxt.NetworkError("reset")],
                          fetch_order=[{"id": "4", "status": "open"}])
    gw, sleeps = gateway(ex)
    out = gw.place(place_intent())
    assert ex.log == ["create_order", "fetch_order"] and len(sleeps) == 1
    assert (out.status, out.exchange_order_id, out.attempts) == ("sent", "4", 2)


def test_rate_limit_resends_without_lookup_and_refusal_is_final() -> None:
    ex = ScriptedExchange(create_order=[ccxt.RateLimitExceeded("429"), ccxt.InvalidOrder("-2019")])
    gw, sleeps = gateway(ex)
    out = gw.place(place_intent())
    assert ex.log == ["create_order", "create_order"] and len(sleeps) == 1
    assert (out.status, out.attempts, out.faults) == ("rejected", 2,
                                                      ["RateLimitExceeded", "InvalidOrder"])


def test_every_round_failing_is_failed_with_unknown_outcome() -> None:
    ex = ScriptedExchange(create_order=[ccxt.RequestTimeout("t")],
                          fetch_order=[ccxt.RequestTimeout("t")] * (CFG.max_attempts - 1))
    gw, sleeps = gateway(ex)
    out = gw.place(place_intent())
    assert ex.log == ["create_order"] + ["fetch_order"] * (CFG.max_attempts - 1)
    assert (out.status, out.attempts) == ("failed", CFG.max_attempts)
    assert out.error.startswith("outcome unknown (the order may exist)")
    assert sleeps == backoff_delays(CFG, random.Random(5))


def test_non_retryable_lookup_error_fails_without_resending() -> None:
    ex = ScriptedExchange(create_order=[ccxt.RequestTimeout("t")],
                          fetch_order=[ccxt.AuthenticationError("-2015")])
    gw, _ = gateway(ex)
    out = gw.place(place_intent())
    assert ex.log == ["create_order", "fetch_order"]
    assert (out.status, out.faults) == ("failed", ["RequestTimeout", "AuthenticationError"])


@pytest.mark.parametrize(("script", "status", "lookups"), [
    ([ccxt.RequestTimeout("t"), {"id": "4", "status": "open"}], "sent", 2),
    ([ccxt.OrderNotFound("-2013")], "sending", 1),
    ([ccxt.AuthenticationError("-2015")], "failed", 1),
    ([ccxt.RequestTimeout("t")] * CFG.max_attempts, "failed", CFG.max_attempts),
])
def test_recover_retries_lookups_only(script, status, lookups) -> None:
    ex = ScriptedExchange(fetch_order=list(script))
    gw, sleeps = gateway(ex)
    out = gw.recover(place_intent())
    assert ex.log == ["fetch_order"] * lookups and len(sleeps) == lookups - 1
    assert (out.status, out.attempts) == (status, lookups)
    if status == "failed":
        assert out.error.startswith("outcome unknown, lookups failed")
