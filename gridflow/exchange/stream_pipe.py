"""Messages between the flow and its stream process: length-prefixed pickles on a pipe.

Each message is a 4-byte big-endian length, then the pickle of a tuple. The pipes are
private to the two processes of one flow (made by
:class:`~gridflow.exchange.stream_process.StreamProcess`, inherited by its child only),
so unpickling trusts its writer.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO

__all__ = ["recv_frame", "recv_msg", "send_msg"]

_HEAD = struct.Struct("!I")


def send_msg(f: BinaryIO, msg: Any) -> None:
    """Write ``msg`` as one length-prefixed pickle and flush.

    Raises
    ------
    OSError
        The pipe is broken (the other process is gone).
    """
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_HEAD.pack(len(data)) + data)
    f.flush()


def recv_frame(f: BinaryIO) -> bytes:
    """The next message of ``f`` (blocking), still pickled: a message that cannot be
    unpickled can be skipped without losing the framing.

    Raises
    ------
    EOFError
        The pipe ended (the other process closed it or is gone).
    """
    head = f.read(_HEAD.size)
    if len(head) < _HEAD.size:
        raise EOFError("the stream pipe ended")
    (n,) = _HEAD.unpack(head)
    data = f.read(n)
    if len(data) < n:
        raise EOFError("the stream pipe ended mid-message")
    return data


def recv_msg(f: BinaryIO) -> Any:
    """The next message of ``f`` (blocking), unpickled.

    Raises
    ------
    EOFError
        The pipe ended (the other process closed it or is gone).
    pickle.UnpicklingError, AttributeError, ImportError
        The message cannot be unpickled here.
    """
    return pickle.loads(recv_frame(f))  # noqa: S301 - a private pipe of our two processes
