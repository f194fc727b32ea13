"""The store-interface suite's backends: each test that takes ``store`` runs on SQLite and on PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import pytest

from proj.tracking.sqlite import SqliteStore
from proj.tracking.store import RunStore

BACKENDS = ("sqlite", "postgresql")


def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> RunStore:
    """A new empty store of the test's backend (PostgreSQL: a fresh database copied from a migrated one)."""
    if request.param == "sqlite":
        return SqliteStore(tmp_path / "store")
    from proj.tracking.postgres import PostgresStore

    uri = request.getfixturevalue("pg_store_uri")
    store = PostgresStore(uri, tmp_path / "store")
    request.addfinalizer(store.close)
    return store


def sqlite_only(store: RunStore, why: str) -> None:
    """For a case that reads or damages SQLite's own file: the PostgreSQL run says why it does not apply."""
    if not isinstance(store, SqliteStore) or type(store).__name__ != "SqliteStore":
        pytest.skip(f"SQLite's file only: {why}")


def raw(store: RunStore, sql: str) -> list[tuple[object, ...]]:
    """Run ``sql`` on the store's database through a connection of the test's own (behind the store's back:
    ties, damage, a check of what was written), committed; its rows."""
    if type(store).__name__ == "PostgresStore":
        import psycopg

        with psycopg.connect(store.uri, autocommit=True) as conn:  # type: ignore[attr-defined]
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []
    import sqlite3

    with sqlite3.connect(store.root / "proj.db") as db:
        return db.execute(sql).fetchall()


def psycopg_error() -> type[BaseException]:
    """psycopg's base error when it is installed (a refusal by the PostgreSQL server), else a stand-in."""
    try:
        import psycopg
    except ImportError:
        return LookupError
    return psycopg.Error


def read_only(store: RunStore) -> RunStore:
    """A second, read-only handle of the same store (what reading commands open)."""
    if type(store).__name__ == "PostgresStore":
        from proj.tracking.postgres import PostgresStore

        return PostgresStore(store.uri, store.root, readonly=True)  # type: ignore[attr-defined]
    return SqliteStore(store.root, readonly=True)
