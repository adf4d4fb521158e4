"""Bytewax sources of gridflow.

:class:`CandleFileSource` replays candle files as :class:`~gridflow.chunks.CandleChunk`
items, one partition per file (per symbol), resumable at row granularity so Bytewax
recovery neither loses nor doubles candles.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from gridflow.candle_rules import ts_plausible
from gridflow.chunks import CandleChunk
from gridflow.config.models import DataFile
from gridflow.data.candle_files import read_candle_file, resolve_data_files

__all__ = ["CandleFilePartition", "CandleFileSource", "FileResumeState"]


class FileResumeState(NamedTuple):
    """Resume state of one :class:`CandleFilePartition`.

    Attributes
    ----------
    next_row : int
        0-based data row (header excluded) of the next candle to emit.
    done : bool
        True once the ``last=True`` chunk was emitted; a partition resumed with it
        emits nothing and stops.
    """

    next_row: int
    done: bool


class CandleFilePartition(StatefulSourcePartition[CandleChunk, FileResumeState]):
    """One candle file, emitted in chunks of consecutive rows.

    The file is loaded when the partition is built. Each :meth:`next_batch` returns a
    list holding exactly one chunk of up to ``chunk_size`` rows, ``first_row`` set to
    the file row of its first candle. The chunk holding the file's final row is
    flagged ``last=True`` (no extra empty chunk); an empty file, or one resumed at its
    end before the last chunk was sent, yields a single empty chunk with
    ``last=True``. The call after the ``last`` chunk raises ``StopIteration``.

    Chunk arrays are read-only views into the loaded file; a step that wants to
    modify them must copy.

    Parameters
    ----------
    path : Path
    symbol, timeframe : str
        Written into every chunk.
    chunk_size : int
        Rows per chunk, >= 1.
    pace_s : float
        Seconds to wait after each batch (0 = no wait).
    resume_state : FileResumeState or tuple, optional
        Where to continue; ``None`` starts at row 0 (the pre-roll, see Notes).
    start_ms, end_ms : int, optional
        Replay window, candle open times in ms UTC: from the first row with a plausible
        ts (:func:`~gridflow.candle_rules.ts_plausible`, 2009..2100 in ms) ``>=
        start_ms`` up to, not including, the first row after it with a plausible ts
        ``>= end_ms``; rows in between go to validation whatever they hold (a row in
        seconds or microseconds neither opens nor closes the window).
    warmup : int
        Rows before the window's first row emitted first, in chunks flagged
        ``warmup=True`` (indicators only, never traded).

    Notes
    -----
    Rows before the warm-up (the *pre-roll*) are emitted too, first, in chunks flagged
    ``preroll=True`` and never paced: validation journals their refusals and moves its
    state over them (the last accepted ts and close), then drops them. So a malformed
    row before ``start_ms`` is journaled like any other, and the window's first candle
    is checked against the candle before it.

    Raises
    ------
    ValueError
        If ``chunk_size < 1``, ``pace_s < 0``, or the resume row is outside
        ``[0, rows]``; or as :func:`~gridflow.data.candle_files.read_candle_file`.
    """

    def __init__(
        self,
        path: Path,
        symbol: str,
        timeframe: str,
        chunk_size: int,
        pace_s: float = 0.0,
        resume_state: FileResumeState | tuple[int, bool] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        warmup: int = 0,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if not pace_s >= 0:
            raise ValueError(f"pace_s must be >= 0, got {pace_s}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        self.path = Path(path)
        self.symbol = symbol
        self.timeframe = timeframe
        self.chunk_size = int(chunk_size)
        self.pace_s = float(pace_s)
        cols = read_candle_file(self.path)
        for a in cols.values():
            a.flags.writeable = False
        self._cols = cols
        ts = cols["ts"]
        self.n_rows = int(ts.shape[0])
        plausible = ts_plausible(ts)
        first = 0
        if start_ms is not None:
            hits = np.flatnonzero(plausible & (ts >= start_ms))
            first = int(hits[0]) if hits.size else self.n_rows
        if end_ms is not None:
            hits = np.flatnonzero(plausible[first:] & (ts[first:] >= end_ms))
            self.n_rows = first + int(hits[0]) if hits.size else self.n_rows
        self.trade_from = first  # rows before it are warm-up: indicators only
        self.warm_from = max(0, first - int(warmup))  # rows before it are pre-roll
        state = FileResumeState(0, False) if resume_state is None else FileResumeState(
            *resume_state
        )
        if not 0 <= state.next_row <= self.n_rows:
            raise ValueError(
                f"{self.path}: resume row {state.next_row} outside [0, {self.n_rows}]"
            )
        self._next = int(state.next_row)
        self._done = bool(state.done)
        self._awake: datetime | None = None

    def next_batch(self) -> list[CandleChunk]:
        """The next chunk, as a one-item list.

        Raises
        ------
        StopIteration
            After the ``last=True`` chunk was emitted.
        """
        if self._done:
            raise StopIteration
        start = self._next
        stop = min(start + self.chunk_size, self.n_rows)
        preroll = start < self.warm_from
        warm = not preroll and start < self.trade_from
        # a chunk is all pre-roll, all warm-up or all traded
        stop = min(stop, self.warm_from if preroll else self.trade_from if warm else stop)
        last = stop >= self.n_rows
        c = self._cols
        chunk = CandleChunk(
            self.symbol,
            self.timeframe,
            c["ts"][start:stop],
            c["open"][start:stop],
            c["high"][start:stop],
            c["low"][start:stop],
            c["close"][start:stop],
            c["volume"][start:stop],
            first_row=start,
            last=last,
            warmup=warm,
            preroll=preroll,
        )
        self._next = stop
        self._done = last
        if self.pace_s > 0 and not preroll:
            self._awake = datetime.now(timezone.utc) + timedelta(seconds=self.pace_s)
        return [chunk]

    def next_awake(self) -> datetime | None:
        """``now + pace_s`` as of the last batch when pacing, else ``None``."""
        return self._awake

    def snapshot(self) -> FileResumeState:
        """Row of the next candle to send and whether the stream is finished."""
        return FileResumeState(self._next, self._done)


class CandleFileSource(FixedPartitionedSource[CandleChunk, FileResumeState]):
    """Replay candle files into a dataflow, one partition per file.

    Parameters
    ----------
    files : sequence of DataFile, path, or (path, symbol, timeframe)
        Candle files (see :func:`~gridflow.data.candle_files.resolve_data_files`
        for the name rules and overrides). Resolved and checked here, so a missing
        file or a duplicate symbol fails when the flow is built; the data itself is
        loaded by the partition, on the worker that owns it.
    chunk_size : int, default 2000
        Candles per emitted :class:`~gridflow.chunks.CandleChunk`.
    pace_s : float, default 0.0
        Wall-clock seconds between two chunks of one partition; 0 replays as fast as
        possible. Useful to watch a replay or to test live-like timing.

    Notes
    -----
    Partition key = the file's symbol (``"BTC/USDT"``). Every worker lists every
    partition (the files must be readable by all of them); Bytewax assigns each key to
    one worker. Items per partition arrive in file order; see
    :class:`CandleFilePartition` for the chunking and ``last`` rules. Resume state is a
    :class:`FileResumeState` (plain tuple, picklable).

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`~gridflow.data.candle_files.resolve_data_files`; ValueError
        also for ``chunk_size < 1`` or ``pace_s < 0``.
    """

    def __init__(
        self,
        files: Sequence[DataFile | str | os.PathLike[str] | tuple[str | Path, str, str]],
        chunk_size: int = 2000,
        pace_s: float = 0.0,
        start_ms: int | None = None,
        end_ms: int | None = None,
        warmup: int = 0,
    ) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.warmup = int(warmup)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if not pace_s >= 0:
            raise ValueError(f"pace_s must be >= 0, got {pace_s}")
        specs = [
            DataFile(path=str(f[0]), symbol=f[1], timeframe=f[2]) if isinstance(f, tuple) else f
            for f in files
        ]
        self.files: dict[str, tuple[Path, str]] = {
            sym: (p, tf) for p, sym, tf in resolve_data_files(specs)
        }
        self.chunk_size = int(chunk_size)
        self.pace_s = float(pace_s)

    def list_parts(self) -> list[str]:
        """All symbols (partition keys)."""
        return list(self.files)

    def build_part(
        self,
        step_id: str,
        for_part: str,
        resume_state: FileResumeState | None,
    ) -> CandleFilePartition:
        """Load the file of ``for_part`` and position it at ``resume_state``."""
        path, tf = self.files[for_part]
        return CandleFilePartition(
            path, for_part, tf, self.chunk_size, self.pace_s, resume_state,
            self.start_ms, self.end_ms, self.warmup,
        )
