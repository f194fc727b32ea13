"""The auth store in the run store's PostgreSQL database, in a schema of its own (``proj_auth``), so that every
server process and every replica over that database sees the same users, grants, tokens and audit log."""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Any, Iterator

from proj.auth import sqlite as auth_sqlite
from proj.auth.sqlite import SqliteAuthStore
from proj.errors import StoreDamaged
from proj.tracking import postgres
from proj.tracking.dbfile import write_transaction
from proj.tracking.pg_connection import PgConnection
from proj.tracking.sql_dialect import ddl_to_postgres, tables_of

SCHEMA = "proj_auth"  # apart from the run store's tables (a table "users" there would be another thing)
_TABLES = tables_of(";".join(auth_sqlite.MIGRATIONS))
_VERSION = "auth_schema_version"


class PostgresAuthStore(SqliteAuthStore):
    """The SQLite auth store's statements over the run store's translating connection, confined to ``proj_auth``
    by the connection's search_path; writes take the run store's write lock (one writer at a time, as SQLite)."""

    def __init__(self, uri: str) -> None:  # noqa: D107 - no super().__init__: that one opens a file
        self.uri = uri
        self._db = _connect(uri)  # type: ignore[assignment]
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        """Every missing step in one transaction under the write lock: two servers starting at once migrate once."""
        db: PgConnection = self._db  # type: ignore[assignment]
        db.begin_write()
        try:
            db.raw(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            db.raw(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = db.execute("SELECT value FROM meta WHERE key = ?", (_VERSION,)).fetchone()
            version = int(row[0]) if row else 0
            if version > auth_sqlite.SCHEMA_VERSION:
                raise StoreDamaged(f"PostgreSQL {postgres.where(self.uri)} has auth schema version {version}, newer "
                                   f"than this proj knows ({auth_sqlite.SCHEMA_VERSION}); upgrade proj")
            for step in range(version, auth_sqlite.SCHEMA_VERSION):
                for statement in ddl_to_postgres(auth_sqlite.MIGRATIONS[step]).split(";\n"):
                    db.raw(statement)
            db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       (_VERSION, str(auth_sqlite.SCHEMA_VERSION)))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        db: PgConnection = self._db  # type: ignore[assignment]
        with write_transaction(db, db.begin_write):
            yield db

    def reopen(self) -> "PostgresAuthStore":
        return PostgresAuthStore(self.uri)


def _connect(uri: str) -> PgConnection:
    """The run store's kind of connection, its unqualified names resolved in ``proj_auth`` only."""
    return postgres.connect(uri, _TABLES, options=f"-c search_path={SCHEMA}")


# A lost or refused connection is one line (the server answers it with a 503), as for the run store.
for _name in dir(PostgresAuthStore):
    _member = inspect.getattr_static(PostgresAuthStore, _name)
    if not _name.startswith("_") and inspect.isfunction(_member) and _name not in ("transaction", "reopen"):
        setattr(PostgresAuthStore, _name, postgres.guarded(_member))
