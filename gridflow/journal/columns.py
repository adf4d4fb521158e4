"""Column helpers shared by the journal and sweep tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger
from sqlmodel import Field


def big(**kw: Any) -> Any:
    """An int column stored as BIGINT (ms timestamps overflow PostgreSQL INTEGER);
    ``kw`` goes to :func:`sqlmodel.Field` (``primary_key``, ``default``...)."""
    return Field(sa_type=BigInteger, **kw)
