"""The process's heap as a flow starts: what the imports and the flow's construction made
is moved out of the cyclic garbage collector's scans (:func:`gc.freeze`).

A full collection (generation 2) visits every object the collector tracks. After
gridflow's imports (numba, SQLAlchemy, pydantic, Bytewax, ccxt, pyarrow) that is about
370k objects, and one full collection took about 150 ms on a 2-core machine: a pause
in the middle of a replay, or between a fill and its take profit in a live flow. The
replay's journal keeps its records until it writes them, and that is what tips the
collector into a full collection (seen in about one replay in three of
``benchmarks/replay_throughput.py``'s plain loop, each time adding the whole pause).
Frozen, the startup objects are skipped. A full collection then takes a few ms, and
objects made later are collected as usual.
"""

from __future__ import annotations

import atexit
import gc
import threading

_lock = threading.Lock()
_frozen = False


def freeze_startup_heap() -> int:
    """Move every object the garbage collector tracks now into its permanent
    generation, once per process (later calls do nothing).

    Returns
    -------
    int
        Objects frozen by this call (0 on every call after the first).

    Notes
    -----
    Garbage cycles that exist at the call are kept until the process exits: a one-off,
    bounded by what the imports and the flow's construction left behind. Objects freed
    by reference counting (nearly all) are freed as always, frozen or not. At exit the
    heap is unfrozen (:func:`gc.unfreeze`, an :mod:`atexit` hook), so the interpreter's
    last collections finalize what they did before: an SQLite connection left to them
    is closed, and its write-ahead log checkpointed into the journal file (frozen, a
    journal kept its last rows in ``journal.db-wal``, and a copy of ``journal.db``
    alone lacked them).
    """
    global _frozen
    with _lock:
        if _frozen:
            return 0
        _frozen = True
        before = gc.get_freeze_count()
        gc.freeze()
        atexit.register(gc.unfreeze)
        return gc.get_freeze_count() - before
