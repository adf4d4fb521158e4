"""The broker sink: sends :class:`~gridflow.events.OrderIntent` items to the exchange,
exactly once per intent, and journals each :class:`~gridflow.events.OrderOutcome`.

Bytewax recovery is at-least-once: after a crash the intents since the last snapshot
come again. The sink is idempotent by construction, through a write-ahead row per
intent in the journal's ``broker_outcomes`` table
(:func:`gridflow.journal.store.broker_begin`):

* row absent: write ``sending``, send, store the outcome;
* row terminal (``sent``, ``duplicate``, ``rejected``, ``failed``, ``canceled``,
  ``not_found``, ``skipped``): already done, nothing is sent;
* row ``sending`` (crashed mid-flight, outcome unknown): the order is looked up by its
  client id first and sent only if the exchange does not have it.

The deterministic client id is the second guard: an exchange that refuses a reused id
(Binance ``-4116``) turns any leftover race into a ``duplicate`` outcome.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from sqlalchemy import Engine

from gridflow.config.live import LiveConfig
from gridflow.events import OrderIntent, OrderOutcome
from gridflow.exchange.client import make_exchange
from gridflow.exchange.gateway import OrderGateway
from gridflow.exchange.retry import error_text, retry_call
from gridflow.journal.store import BROKER_TERMINAL, broker_begin, broker_finish, open_store

log = logging.getLogger(__name__)

BROKER_PART = "broker"


class BrokerSinkConfig(Protocol):
    """What the sink needs of :class:`~gridflow.config.models.GridflowConfig`."""

    db_url: str
    run_id: str
    live: LiveConfig


def build_gateway(live: LiveConfig, sleep: Any = time.sleep) -> OrderGateway:
    """A ccxt exchange from ``live.exchange`` with its markets loaded, in a gateway.

    ``load_markets`` is retried on transport errors like orders are.

    Raises
    ------
    RuntimeError
        When the markets cannot be loaded (message redacted, no chained ccxt error).
    ValueError
        Unknown ccxt exchange id.
    """
    cfg = live.exchange
    secrets = tuple(s.get_secret_value() for s in (cfg.api_key, cfg.secret) if s is not None)
    exchange = make_exchange(cfg)

    def warn(exc: BaseException, _wait_s: float) -> None:
        log.warning("load_markets failed (%s), retrying", error_text(exc, secrets))

    try:
        retry_call(exchange.load_markets, live.retry, sleep=sleep, on_retry=warn)
    except Exception as exc:  # noqa: BLE001 - ccxt errors and transport failures
        text = error_text(exc, secrets)
        raise RuntimeError(f"cannot load the markets of {cfg.id}: {text}") from None
    return OrderGateway(exchange, cfg.market_type, live.retry, secrets=secrets, sleep=sleep,
                        stop_limit_offset=live.stop_limit_offset)


def _sending(intent: OrderIntent) -> OrderOutcome:
    return OrderOutcome(
        intent_id=intent.intent_id, client_order_id=intent.client_order_id,
        action=intent.action, account=intent.account, symbol=intent.symbol, tag=intent.tag,
        status="sending", ts_ms=time.time_ns() // 1_000_000)


def _merge(pre: OrderOutcome | None, out: OrderOutcome) -> OrderOutcome:
    """``out`` with the attempts and faults of a recovery lookup ``pre`` added."""
    if pre is None:
        return out
    return out.model_copy(update={"attempts": pre.attempts + out.attempts,
                                  "faults": [*pre.faults, *out.faults],
                                  "error": out.error or pre.error})


class BrokerWriter:
    """Carries intents out idempotently and journals their outcomes (the body of the
    sink partition; usable without Bytewax).

    Parameters
    ----------
    store : str or sqlalchemy.Engine
        Journal URL or engine; the ``broker_outcomes`` table is created if missing.
    run_id : str
    gateway : OrderGateway, optional
        Ready gateway (tests); otherwise built on first use by ``gateway_factory``.
    gateway_factory : callable, optional
        ``() -> OrderGateway``, called once, lazily.

    Raises
    ------
    ValueError
        Neither ``gateway`` nor ``gateway_factory`` given.
    """

    def __init__(self, store: str | Engine, run_id: str, gateway: OrderGateway | None = None,
                 gateway_factory: Any = None) -> None:
        if gateway is None and gateway_factory is None:
            raise ValueError("BrokerWriter needs a gateway or a gateway_factory")
        self._own_engine = not isinstance(store, Engine)
        self.engine: Engine = open_store(store) if self._own_engine else store
        self.run_id = run_id
        self._gateway = gateway
        self._factory = gateway_factory

    @property
    def gateway(self) -> OrderGateway:
        """The gateway, built on first access."""
        if self._gateway is None:
            self._gateway = self._factory()
        return self._gateway

    def handle(self, intent: OrderIntent) -> list[OrderOutcome]:
        """Carry one intent out unless its journal row says it was done.

        Returns
        -------
        list[OrderOutcome]
            The outcomes journaled by this call (empty when every step was already
            done): the replaced order's cancel first for a ``cancel_first`` place.

        Raises
        ------
        sqlalchemy.exc.SQLAlchemyError
            The journal cannot be written: nothing is sent without its write-ahead row.
        RuntimeError
            From the lazy gateway build (markets cannot be loaded).
        """
        done: list[OrderOutcome] = []
        status = broker_begin(self.engine, self.run_id, _sending(intent))
        if status in BROKER_TERMINAL:
            return done
        gw = self.gateway
        pre = gw.recover(intent) if status == "sending" else None
        if pre is not None and pre.status != "sending":
            # resolved by the lookup, or "failed" (lookups failed: never send blind)
            return self._finish(done, pre)
        if intent.action == "cancel":
            out = gw.cancel(intent)
        elif intent.cancel_first is None:
            out = gw.place(intent)
        else:
            cancel_status = self._step_cancel(gw.replaced_cancel(intent), done)
            out = gw.after_cancel(intent, cancel_status)
        return self._finish(done, _merge(pre, out))

    def _step_cancel(self, cancel: OrderIntent, done: list[OrderOutcome]) -> str:
        """The replaced order's cancel, journaled under its own ``{cid}:cancel`` row;
        returns its status (the stored one if it was done before)."""
        status = broker_begin(self.engine, self.run_id, _sending(cancel))
        if status in BROKER_TERMINAL:
            return status
        gw = self.gateway
        pre = gw.recover(cancel) if status == "sending" else None
        out = pre if pre is not None and pre.status != "sending" else _merge(pre, gw.cancel(cancel))
        self._finish(done, out)
        return out.status

    def _finish(self, done: list[OrderOutcome], out: OrderOutcome) -> list[OrderOutcome]:
        broker_finish(self.engine, self.run_id, out)
        done.append(out)
        return done

    def close(self) -> None:
        """Release the journal engine if this writer opened it."""
        if self._own_engine:
            self.engine.dispose()


class _BrokerPartition(StatefulSinkPartition[OrderIntent, None]):
    """The single broker partition: one ccxt client, intents in arrival order."""

    def __init__(self, writer: BrokerWriter) -> None:
        self._writer = writer

    def write_batch(self, values: list[OrderIntent]) -> None:
        for intent in values:
            self._writer.handle(intent)

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self._writer.close()


class BrokerSink(FixedPartitionedSink[OrderIntent, None]):
    """Send ``(key, OrderIntent)`` items to the exchange, exactly once per intent.

    Parameters
    ----------
    cfg : GridflowConfig or alike
        ``db_url`` (journal), ``run_id``, ``live`` (exchange, retry,
        ``stop_limit_offset``).
    gateway : OrderGateway, optional
        A ready gateway (tests). Without it each worker building the partition makes
        its ccxt exchange lazily, on the first batch, with
        :func:`~gridflow.exchange.client.make_exchange` and loads the markets once.
    run_id : str, optional
        The run's id when ``cfg.run_id`` is empty (the default id of the plan).

    Notes
    -----
    One partition, ``"broker"``: every item goes to one worker, in order, so there is
    one exchange client and the journal has one writer (like
    :class:`~gridflow.dataflows.sinks.JournalSink`). The routing key is ignored.
    ``snapshot`` returns None: the journal rows are the state (see the module
    docstring), so replayed intents are recognised there, not by a resume position.
    """

    def __init__(self, cfg: BrokerSinkConfig, gateway: OrderGateway | None = None,
                 run_id: str | None = None) -> None:
        self.db_url = cfg.db_url
        self.run_id = run_id or cfg.run_id
        self.live = cfg.live
        self.gateway = gateway

    def __repr__(self) -> str:
        return f"BrokerSink(run_id={self.run_id!r})"

    def list_parts(self) -> list[str]:
        """The single partition, ``["broker"]``."""
        return [BROKER_PART]

    def build_part(self, step_id: str, for_part: str,
                   resume_state: None) -> StatefulSinkPartition[OrderIntent, None]:
        """Open the journal; the gateway is built on the first batch."""
        live = self.live
        return _BrokerPartition(BrokerWriter(
            self.db_url, self.run_id, gateway=self.gateway,
            gateway_factory=lambda: build_gateway(live)))


__all__ = ["BROKER_PART", "BrokerSink", "BrokerSinkConfig", "BrokerWriter", "build_gateway"]
