"""The process's shared stream hubs: one per exchange config and hub kind.

:func:`hub_for` gives every source partition of a process that streams from one
exchange config the same hub (20 symbols are 20 subscriptions on ccxt's shared
connections, not 20 clients): a :class:`~gridflow.exchange.streams.StreamHub` on an
event-loop thread of this process (``live.streams.hub = "thread"``) or a
:class:`~gridflow.exchange.stream_process.StreamProcess` (``"process"``, the default).
:func:`release_hub` closes it with its last user.
"""

from __future__ import annotations

import threading
from typing import Any

from gridflow.config.live import ExchangeConfig, StreamsConfig
from gridflow.exchange.stream_process import StreamProcess
from gridflow.exchange.streams import StreamHub

__all__ = ["hub_for", "release_hub"]

_HUBS: dict[str, Any] = {}
_HUBS_LOCK = threading.Lock()


def _hub_key(cfg: ExchangeConfig, kind: str) -> str:
    # the dump holds the keys in memory only; the key is never logged
    return kind + "|" + cfg.model_dump_json() + "|" + "|".join(cfg.credentials())


def hub_for(cfg: ExchangeConfig, streams: StreamsConfig | None = None) -> Any:
    """The process's shared hub of ``cfg`` (created on first use): a
    :class:`~gridflow.exchange.streams.StreamHub` (``streams.hub == "thread"``) or a
    :class:`~gridflow.exchange.stream_process.StreamProcess` (``"process"``), with
    ``streams.reconnect_max_s``. Pair every call with :func:`release_hub`.

    Raises
    ------
    RuntimeError
        The stream process did not start.
    """
    streams = streams or StreamsConfig()
    key = _hub_key(cfg, streams.hub)
    with _HUBS_LOCK:
        hub = _HUBS.get(key)
        if hub is None:
            if streams.hub == "process":
                hub = StreamProcess(cfg, streams.reconnect_max_s)
            else:
                hub = StreamHub(cfg, streams.reconnect_max_s)
            _HUBS[key] = hub
        hub.refs += 1
        return hub


def release_hub(hub: Any) -> None:
    """Drop one reference to ``hub``; the last one closes it."""
    with _HUBS_LOCK:
        hub.refs -= 1
        if hub.refs > 0:
            return
        for k, h in list(_HUBS.items()):
            if h is hub:
                del _HUBS[k]
    hub.close()
