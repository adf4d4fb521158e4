"""The websocket methods of :class:`~gridflow.fakex.server.FakeExchange` (a mixin).

URLs for ccxt, the websocket faults (drop, silence, listen-key expiry; duplicate and
reorder come from :class:`~gridflow.fakex.faults.FaultPlan`), connection and stream
introspection for tests, and the REST request weight. The server itself is
:class:`gridflow.fakex.ws.WsHub`.
"""

from __future__ import annotations

import threading
from typing import Any

from gridflow.fakex.weights import total_weight
from gridflow.fakex.ws import WsHub

__all__ = ["WsApi"]

_STREAMS = ("user", "market", "all")


class WsApi:
    """The websocket side of :class:`~gridflow.fakex.server.FakeExchange` (mixed in:
    needs ``self._hub`` (:class:`WsHub`), ``self._lock``, ``self.request_log``)."""

    _hub: WsHub
    _lock: threading.RLock
    request_log: list[dict[str, Any]]

    def ccxt_ws_urls(self) -> dict[str, str]:
        """Entries to merge into ccxt's ``urls["api"]["ws"]``: ``{"linear":
        "ws://127.0.0.1:PORT/ws"}`` (ccxt then dials ``.../market/ws/<n>``,
        ``.../public/ws/<n>`` and ``.../private/ws?listenKey=K``).

        Raises
        ------
        RuntimeError
            Before :meth:`start`.
        """
        if self._hub.url is None:
            raise RuntimeError("call start() first")
        return {"linear": f"{self._hub.url}/ws"}

    def ws_drop(self, stream: str = "all") -> int:
        """Cut the ``"user"``, ``"market"`` or ``"all"`` websocket connections now,
        without a close frame (after everything published before); returns how many.

        Raises
        ------
        ValueError
            Unknown ``stream``.
        """
        _check_stream(stream)
        return self._hub.command(("drop", stream), "ws_drop", f"ws:{stream}")

    def ws_silence(self, stream: str, on: bool) -> int:
        """Keep the ``stream`` connections (and new ones) open but send nothing on them
        while ``on`` (what would have been sent is lost, as in a real outage); returns
        the connections open now. Counted in ``fault_log`` as ``ws_silence`` (with
        ``on``)."""
        _check_stream(stream)
        return self._hub.command(("silence", stream, bool(on)), "ws_silence", f"ws:{stream}",
                                 on=bool(on))

    def expire_listen_key(self) -> str | None:
        """Expire the active listen key: Binance's ``{"e": "listenKeyExpired", "E",
        "listenKey"}`` goes to its user streams, which are then closed (code 1000); the
        key is refused from now on (``PUT`` keep-alive answers -1125, a ``POST`` makes
        a new key). Returns the expired key, or None when there was none."""
        with self._lock:
            key = self._hub.listen_key
            if key is None:
                return None
            self._hub.listen_key = None
            event = {"e": "listenKeyExpired", "E": self._hub.book.feed.now, "listenKey": key}
        self._hub.command(("close_key", key, event), "listen_key_expired", "ws:user")
        return key

    def ws_streams(self) -> list[str]:
        """Market streams some connection is subscribed to, sorted."""
        return self._hub.streams()

    def ws_connections(self) -> dict[str, int]:
        """Open websocket connections: ``{"market": n, "user": m}``."""
        return self._hub.connections()

    def ws_stats(self) -> dict[str, int]:
        """Websocket counters: ``sent``, ``withheld`` (silenced), ``send_failed``,
        ``bad_request``, ``handshake_refused``, ``market_connections``,
        ``user_connections`` (connections ever opened)."""
        return self._hub.stats()

    def rest_weight(self, start: int = 0) -> int:
        """Binance request weight of the REST requests logged from index ``start`` of
        ``request_log`` on (see :mod:`gridflow.fakex.weights`)."""
        with self._lock:
            return total_weight(self.request_log[start:])


def _check_stream(stream: str) -> None:
    if stream not in _STREAMS:
        raise ValueError(f"stream must be one of {_STREAMS}, got {stream!r}")
