"""JSON columns of the journal hold strict JSON on every backend: NaN and infinities
(a correlation denial's detail has them) are stored as null, on SQLite (the raw insert
and SQLAlchemy's own path) and on PostgreSQL, which refuses the bare ``NaN`` token."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_helpers import pg_schema
from sqlalchemy import String, cast, insert, select

from gridflow.chunks import JournalBatch
from gridflow.events import JournalEvent
from gridflow.journal.schema import JSON_SERIALIZER, EventRow
from gridflow.journal.store import Journal, read_events

SCALARS = (st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=6)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([math.nan, math.inf, -math.inf]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)
DETAILS = st.dictionaries(st.text(max_size=8), VALUES, max_size=5)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def strict_loads(text: str) -> Any:
    """``json.loads`` that refuses what RFC 8259 refuses (``NaN``, ``Infinity``)."""
    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token} in {text!r}")

    return json.loads(text, parse_constant=refuse)


def finite(v: Any) -> Any:
    """What a stored value reads back as: non-finite floats as None."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def events(details: list[dict[str, Any]]) -> list[JournalEvent]:
    return [JournalEvent(event_id=f"e{i}", kind="order_denied", reason="CORRELATION",
                         ts_ms=1_700_000_000_000 + i, account="a", symbol="BTC/USDT", seq=i,
                         detail=d) for i, d in enumerate(details)]


def check_round_trip(url: str, run: str, details: list[dict[str, Any]]) -> None:
    """Both write paths (the journal's bulk writer, SQLAlchemy's insert) store strict
    JSON that reads back as the details with null for each non-finite float."""
    with Journal(url) as journal:
        journal.write(run, JournalBatch(events=events(details)))
        table = EventRow.__table__
        with journal.engine.begin() as conn:  # the engine's serializer (the PostgreSQL path)
            conn.execute(insert(table), [{**e.model_dump(), "run_id": run + "/orm"}
                                         for e in events(details)])
            stored = conn.execute(select(table.c.run_id, cast(table.c.detail, String))
                                  .where(table.c.run_id.in_([run, run + "/orm"]))).all()
        assert len(stored) == 2 * len(details)
        for _run, text in stored:
            strict_loads(text)
        want = [finite(d) for d in details]
        for r in (run, run + "/orm"):
            assert [e["detail"] for e in read_events(journal.engine, r)] == want


@given(value=VALUES)
@settings(max_examples=200, deadline=None)
def test_the_serializer_writes_strict_json_with_sorted_keys(value: Any) -> None:
    text = JSON_SERIALIZER(value)
    assert strict_loads(text) == finite(value)
    if finite(value) == value:  # no non-finite float: the text json.dumps always wrote
        assert text == json.dumps(value, sort_keys=True)


def test_tuples_numpy_scalars_and_nested_non_finite_values() -> None:
    got = JSON_SERIALIZER({"b": (1.5, math.nan), "a": {"x": [-math.inf, {"y": math.inf}]}})
    assert got == '{"a": {"x": [null, {"y": null}]}, "b": [1.5, null]}'
    assert JSON_SERIALIZER({"n": np.float32(1.5), "i": np.int64(3), "z": np.float64("nan")}) \
        == '{"i": 3, "n": 1.5, "z": null}'  # numpy scalars as plain numbers
    with pytest.raises(TypeError):
        JSON_SERIALIZER({"x": object()})


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('json') / 'j.db'}"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with pg_schema() as url:
        yield url


RUNS = (f"run{n}" for n in itertools.count())  # a new run id per example


@given(details=st.lists(DETAILS, min_size=1, max_size=6))
@SETTINGS
def test_details_with_nan_and_inf_round_trip_as_json_on_sqlite(sqlite_url: str,
                                                              details: list[dict]) -> None:
    check_round_trip(sqlite_url, next(RUNS), details)


@given(details=st.lists(DETAILS, min_size=1, max_size=6))
@SETTINGS
def test_details_with_nan_and_inf_round_trip_as_json_on_postgresql(pg_url: str,
                                                                  details: list[dict]) -> None:
    check_round_trip(pg_url, next(RUNS), details)

