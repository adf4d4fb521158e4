"""The PostgreSQL test server of the PostgreSQL tests.

Its URL comes from ``GRIDFLOW_TEST_PG_URL`` (``scripts/pg-test-server.sh start`` starts
one and prints it; ``.ci/run`` does so and exports it). Without it a PostgreSQL test is
skipped, except where ``CI`` is set: there it fails, so a CI that lost its server shows.
Each test works in a schema of its own, dropped afterwards, so repeated runs start empty.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url, text

PG_ENV = "GRIDFLOW_TEST_PG_URL"


def pg_server_url() -> str:
    """The test server's URL (``postgresql+psycopg://...``).

    Skips the calling test when ``GRIDFLOW_TEST_PG_URL`` is unset, or fails it when the
    ``CI`` environment variable is set too (CI must test PostgreSQL, never skip it).
    """
    url = os.environ.get(PG_ENV, "").strip()
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{PG_ENV} is not set on CI (CI={os.environ['CI']!r}): .ci/run must start "
                    f"the server (scripts/pg-test-server.sh start) and export {PG_ENV}; "
                    "the PostgreSQL tests fail rather than skip on CI", pytrace=False)
    pytest.skip(f"set {PG_ENV}=postgresql+psycopg://... to test PostgreSQL "
                f"(export {PG_ENV}=\"$(bash scripts/pg-test-server.sh start)\")")


@contextmanager
def pg_schema() -> Iterator[str]:
    """A fresh, empty schema on the test server, dropped with its tables at exit.

    Yields
    ------
    str
        The server's URL with ``options=-csearch_path=<schema>``: every connection made
        from it (``open_store``, a ``gridflow`` subprocess) creates and reads its tables
        in that schema.
    """
    url = pg_server_url()
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={name}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()
