"""Wall-clock marks along the live path, for finding where a latency tail comes from.

Off unless ``GRIDFLOW_LATENCY_TRACE`` names a file when the process starts: then each
:func:`mark` appends one line ``wall_ns stage key`` to it (line-buffered, so a killed
process loses nothing it marked). ``benchmarks/live_latency.py --trace`` turns it on in
the live flow it starts and joins the marks with the local exchange's request log.

Stages marked (key ``symbol@ts_ms``: the symbol and the exchange time of the fill or
candle close the work answers; the intents a fill causes carry its time):

* ``fill_parsed``: ccxt.pro parsed a fill in the stream process (``streams.hub =
  "process"``), ``fill_recv``: the flow's process has it (its stream feed),
  ``fill_emit``:
  the account partition hands the update holding it to Bytewax (``mark_emit``, key
  ``marks@wm``: an update holding mark prices, at the partition's watermark;
  ``mark_parsed``: the stream process parsed a mark-price message, at its newest time);
* ``engine_in`` / ``engine_out``: the account engine step begins / ends the item;
* ``broker_in``: the broker sink received an intent, ``broker_wa``: its write-ahead row
  is committed, ``send``: its lane calls the exchange.

Never raises: a mark that cannot be written is dropped.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["ENV", "enabled", "mark"]

ENV = "GRIDFLOW_LATENCY_TRACE"
_path = os.environ.get(ENV) or None
_file = None
_lock = threading.Lock()


def enabled() -> bool:
    """Whether marks are written (``GRIDFLOW_LATENCY_TRACE`` was set at import)."""
    return _path is not None


def mark(stage: str, key: str) -> None:
    """Append ``wall_ns stage key`` to the trace file when tracing is on."""
    global _file
    if _path is None:
        return
    line = f"{time.time_ns()} {stage} {key}\n"
    try:
        with _lock:
            if _file is None:
                _file = open(_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
            _file.write(line)
    except OSError:
        pass
