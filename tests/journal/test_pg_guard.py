"""The PostgreSQL tests run on CI: without a server URL they skip on a developer's
machine but fail where ``CI`` is set, every one of them goes through that guard, and
``.ci/run`` starts the server and exports its URL before the README's test command."""

from __future__ import annotations

import re

import pytest
from helpers import REPO
from pg_helpers import PG_ENV, pg_schema, pg_server_url


def test_without_a_url_a_postgresql_test_skips_locally(monkeypatch) -> None:
    monkeypatch.delenv(PG_ENV, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="pg-test-server.sh start"):
        pg_server_url()
    with pytest.raises(pytest.skip.Exception), pg_schema():
        pass


@pytest.mark.parametrize("ci", ["true", "1"])
def test_without_a_url_a_postgresql_test_fails_on_ci(monkeypatch, ci: str) -> None:
    monkeypatch.setenv(PG_ENV, "  ")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match=f"{PG_ENV} is not set on CI"):
        pg_server_url()
    with pytest.raises(pytest.fail.Exception), pg_schema():
        pass


def test_every_postgresql_test_goes_through_the_guard() -> None:
    """No test reads the variable itself (a ``skipif`` on it would skip on CI)."""
    readers = [p.relative_to(REPO).as_posix() for p in (REPO / "tests").rglob("*.py")
               if PG_ENV in p.read_text() and p.name != "pg_helpers.py"]
    assert readers == [], f"use pg_helpers.pg_schema() / pg_server_url() in {readers}"
    users = {p.name for p in (REPO / "tests").rglob("test_*.py") if "pg_schema(" in p.read_text()}
    assert {"test_store.py", "test_sweep_store.py", "test_json_columns.py",
            "test_pg_parity.py"} <= users


def test_ci_starts_the_server_before_the_test_command() -> None:
    lines = [ln.strip() for ln in (REPO / ".ci/run").read_text().splitlines()]
    start = next(i for i, ln in enumerate(lines) if "pg-test-server.sh start" in ln)
    export = next(i for i, ln in enumerate(lines) if re.match(rf"export {PG_ENV}\b", ln))
    tests = next(i for i, ln in enumerate(lines) if "python -m pytest" in ln)
    stop = next(i for i, ln in enumerate(lines) if "pg-test-server.sh stop" in ln)
    assert stop < start < export < tests and lines[stop].startswith("trap ")
