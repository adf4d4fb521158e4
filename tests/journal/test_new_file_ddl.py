"""A new SQLite journal is created from DDL compiled once per process
(``schema._new_file_ddl``): it must leave exactly the schema ``create_all`` leaves."""

from __future__ import annotations

import sqlite3

from sqlalchemy import create_engine
from sqlmodel import SQLModel

import gridflow.journal.commands  # noqa: F401  (its tables are part of a journal)
from gridflow.journal import schema

SCHEMA = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"


def test_a_new_journal_has_the_schema_create_all_makes(tmp_path) -> None:
    fast = schema.open_store(f"sqlite:///{tmp_path / 'fast.db'}")
    fast.dispose()
    plain = create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    SQLModel.metadata.create_all(plain)
    plain.dispose()
    with sqlite3.connect(tmp_path / "fast.db") as a, sqlite3.connect(tmp_path / "plain.db") as b:
        made, expected = a.execute(SCHEMA).fetchall(), b.execute(SCHEMA).fetchall()
    assert len(expected) > 20 and made == expected


def test_the_compiled_ddl_follows_the_tables_loaded(tmp_path, monkeypatch) -> None:
    """A table added to the metadata later (a module loaded after a first open) is in
    the next new journal: the cache is keyed by the set of tables."""
    from sqlalchemy import Column, Integer, Table

    schema.open_store(f"sqlite:///{tmp_path / 'a.db'}").dispose()
    extra = Table("zz_test_extra", SQLModel.metadata, Column("k", Integer, primary_key=True))
    try:
        schema.open_store(f"sqlite:///{tmp_path / 'b.db'}").dispose()
        with sqlite3.connect(tmp_path / "b.db") as con:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        assert "zz_test_extra" in names
    finally:
        SQLModel.metadata.remove(extra)


def test_a_table_redefined_under_its_name_gets_its_new_ddl(tmp_path) -> None:
    from sqlalchemy import Column, Integer, Table

    first = Table("zz_test_redefined", SQLModel.metadata, Column("k", Integer, primary_key=True))
    try:
        schema.open_store(f"sqlite:///{tmp_path / 'a.db'}").dispose()
        SQLModel.metadata.remove(first)
        Table("zz_test_redefined", SQLModel.metadata,
              Column("k", Integer, primary_key=True), Column("v", Integer))
        schema.open_store(f"sqlite:///{tmp_path / 'b.db'}").dispose()
        with sqlite3.connect(tmp_path / "b.db") as con:
            cols = [r[1] for r in con.execute("PRAGMA table_info(zz_test_redefined)")]
        assert cols == ["k", "v"]
    finally:
        for t in list(SQLModel.metadata.tables.values()):
            if t.name == "zz_test_redefined":
                SQLModel.metadata.remove(t)
