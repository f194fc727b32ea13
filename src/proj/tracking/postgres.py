"""The run store on a PostgreSQL server: the SQLite store's parts over a psycopg connection (tracking.pg_connection
translates their SQL), the run folders in a files root; imported only for postgresql:// URIs."""
from __future__ import annotations

import functools
import inspect
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.conninfo import make_conninfo

from proj.errors import StoreError, StoreMissing, StoreUnavailable
from proj.redact import mask_url
from proj.tracking import migrations
from proj.tracking.dbfile import write_transaction
from proj.tracking.pg_connection import PgConnection, unavailable
from proj.tracking.records import SCHEMA_VERSION, json_number
from proj.tracking.sql_dialect import Table, ddl_to_postgres, tables_of
from proj.tracking.sqlite import _ADDED_COLUMNS, _MODELS_SCHEMA, _REVISION, _SCHEMA, SqliteStore, _ignore_in_git
from proj.tracking.sqlite_runs import MAX_HISTORY_PAGE
from proj.tracking.sqlite_schema import (
    BACKFILL_BLOCKS,
    BACKFILL_EXTREMES,
    BLOCKS_SCHEMA,
    ENTITY_SCHEMA,
    EXTREME_COLUMNS,
    EXTREME_INDEXES,
    UI_INDEXES,
    default_experiment_id,
)

# What the user or the server's administrator must mend (the server gone, a timeout, a role without the right to
# create tables): one line naming the database. Any other psycopg error is proj's own bug and keeps its traceback.
_REFUSED = (psycopg.OperationalError, psycopg.errors.InsufficientPrivilege)
_DDL = _SCHEMA + ENTITY_SCHEMA + ";" + _MODELS_SCHEMA + ";\n" + BLOCKS_SCHEMA
TABLES = tables_of(_DDL)
_TRIGGERS = (
    "CREATE OR REPLACE FUNCTION registry_events_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN RAISE EXCEPTION 'registry events are append-only'; END $$",
    "DROP TRIGGER IF EXISTS registry_events_no_change ON registry_events",
    "CREATE TRIGGER registry_events_no_change BEFORE UPDATE OR DELETE ON registry_events FOR EACH ROW"
    " EXECUTE FUNCTION registry_events_append_only()",
)


def conninfo(uri: str) -> str:
    """The URI psycopg connects with (``postgresql+psycopg://`` is SQLAlchemy's spelling of the same)."""
    return "postgresql://" + uri.split("://", 1)[1]


def where(uri: str) -> str:
    """host:port/db of a URI, for messages (never the password)."""
    parts = urlsplit(conninfo(uri))
    netloc = parts.netloc.rsplit("@", 1)[-1]  # never the userinfo; the port as written, even when not a number
    host, _, port = netloc.rpartition(":") if ":" in netloc.lstrip("[").split("]")[-1] else (netloc, "", "")
    return f"{host or 'localhost'}:{port or 5432}/{unquote(parts.path.lstrip('/')) or '?'}"


def connect(uri: str, tables: dict[str, Table] = TABLES, **options: str) -> PgConnection:
    """A connection to the database ``uri`` names (``options``: libpq's, e.g. the auth store's search_path);
    one line naming host, port and database (never the password) when it cannot be made."""
    try:
        return PgConnection(make_conninfo(conninfo(uri), **options) if options else conninfo(uri), tables)
    except psycopg.Error as exc:
        kind = StoreUnavailable if unavailable(exc) else StoreError
        raise kind(f"PostgreSQL store {where(uri)} cannot be opened: {_hidden(_first_line(exc), uri)}") from None
    except (ValueError, psycopg.ProgrammingError) as exc:
        raise StoreError(f"PostgreSQL store URI {mask_url(uri)} is not valid: {_first_line(exc)}") from None


def _hidden(message: str, uri: str) -> str:
    """The message without any piece of the URI's password (psycopg may quote a badly encoded one)."""
    rest = uri.split("://", 1)[-1]
    userinfo = rest.rsplit("@", 1)[0] if "@" in rest else ""
    for piece in re.split(r"[:@/]", userinfo)[1:]:
        if len(piece) > 2:  # a shorter one would mask ordinary words
            message = message.replace(piece, "***")
    return message


def _first_line(exc: BaseException) -> str:
    """psycopg's reason without its preamble ("connection failed: connection to server at ... failed: ")."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return mask_url(" ".join(first.rsplit("failed: ", 1)[-1].split()))


def schema_version(db: PgConnection) -> int:
    """How many of migrations.STEPS the database has (0: no proj tables yet)."""
    if db.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = ?", (migrations.VERSION_KEY,)).fetchone()
    return int(row[0]) if row else 0


def upgrade(db: PgConnection) -> tuple[int, int]:
    """Apply the missing steps in one transaction (concurrent first users migrate once); (from, to)."""
    db.begin_write()
    try:
        found = schema_version(db)
        if found > migrations.LATEST:
            raise migrations.SchemaMismatch(f"schema version {found} is newer than this proj's {migrations.LATEST}: "
                                            "upgrade proj")
        for step in range(found + 1, migrations.LATEST + 1):
            _STEPS[step](db)
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (migrations.VERSION_KEY, str(migrations.LATEST)))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_revision', ?)", (_REVISION,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return found, migrations.LATEST


def upgrade_uri(uri: str) -> tuple[int, int]:
    """``proj db upgrade`` of a postgresql:// URI: (from, to), a refusal in one line."""
    db = connect(uri)
    try:
        return _guard_call(uri, upgrade, db)  # type: ignore[no-any-return]
    finally:
        db.close()


def _step_1(db: PgConnection) -> None:
    for statement in ddl_to_postgres(_DDL).split(";\n"):
        db.raw(statement)
    for table, column, decl in _ADDED_COLUMNS:
        db.raw(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {ddl_to_postgres(decl)}")
    default_experiment_id(db, time.time())  # type: ignore[arg-type]


def _step_2(db: PgConnection) -> None:
    for statement in (*_TRIGGERS, *UI_INDEXES):
        db.raw(statement)


def _step_3(db: PgConnection) -> None:
    """The UI's metric summaries, filled from the history in one pass (a store made at step 1 today has the
    table and columns already, empty: the backfill is then of nothing)."""
    db.raw(ddl_to_postgres(BLOCKS_SCHEMA))
    for table, column, decl in EXTREME_COLUMNS:
        db.raw(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {ddl_to_postgres(decl)}")
    db.execute("DELETE FROM metric_blocks")
    db.execute(BACKFILL_BLOCKS)
    db.execute(BACKFILL_EXTREMES)
    for statement in EXTREME_INDEXES:
        db.raw(statement)


_STEPS: dict[int, Callable[[PgConnection], None]] = {1: _step_1, 2: _step_2, 3: _step_3}


class PostgresStore(SqliteStore):
    """The same store on PostgreSQL. ``upgrade``: bring an older schema up to date on open (``proj run``,
    ``proj db upgrade``); the server passes False and an older or newer schema is refused with one line."""

    def __init__(self, uri: str, files_root: Path, *, readonly: bool = False, upgrade: bool = True) -> None:
        self.uri = uri
        self.root = files_root
        self.readonly = readonly
        self._upgrade = upgrade
        self._has_models = True  # created by the migration
        self._db = connect(uri)  # type: ignore[assignment]
        try:
            self._open_schema()
            if not readonly:
                files_root.mkdir(parents=True, exist_ok=True)
                _ignore_in_git(files_root)
        except OSError as exc:
            self._db.close()
            raise StoreError(f"run folders {files_root} of PostgreSQL store {where(uri)} cannot be created: {exc}"
                             " (PROJ_STORE_FILES, or --artifacts-destination for the server)") from None
        except BaseException:
            self._db.close()
            raise

    def _open_schema(self) -> None:
        found = _guard_call(self.uri, schema_version, self._db)
        if found == migrations.LATEST:
            return
        if self.readonly:
            if found == 0:
                raise StoreMissing(f"no runs recorded in PostgreSQL store {where(self.uri)} yet")
            migrations.check_servable(f"PostgreSQL {where(self.uri)}", found, mask_url(self.uri))
        if self._upgrade or found == 0:  # an empty database has no clients yet: the server creates the tables
            _guard_call(self.uri, upgrade, self._db)
            return
        migrations.check_servable(f"PostgreSQL {where(self.uri)}", found, mask_url(self.uri))

    def reopen(self) -> "PostgresStore":
        return PostgresStore(self.uri, self.root, readonly=self.readonly, upgrade=False)

    def verify(self) -> None:
        """The server checks its own pages; nothing to check from here (a file store checks its file)."""

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One write transaction, serialised with every other writer as SQLite's BEGIN IMMEDIATE serialises
        them (pg_connection.WRITE_LOCK)."""
        db: PgConnection = self._db  # type: ignore[assignment]
        with write_transaction(db, db.begin_write):
            yield db

    @contextmanager
    def _run_tx(self, run_id: str) -> Iterator[Any]:
        """A write of one run's rows: side by side with other runs' writers, still one at a time with this run's
        and with every other writer (pg_connection.RUN_LOCK_CLASS)."""
        db: PgConnection = self._db  # type: ignore[assignment]
        with write_transaction(db, lambda: db.begin_write(run_id)):
            yield db

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self._tx():
                yield
        except _REFUSED as exc:  # not under guarded (a context manager): the same one line
            raise _refusal(self.uri, exc) from None

    def metric_history_wire(self, run_id: str, key: str, max_results: int = MAX_HISTORY_PAGE,
                            page_token: str | None = None) -> tuple[list[Any], str | None]:
        """SQLite's CASE yields MLflow's strings beside numbers; PostgreSQL's CASE has one type (double), so
        NaN and the infinities are named here."""
        rows, token = super().metric_history_wire(run_id, key, max_results, page_token)
        return [(row[0] if isinstance(row[0], str) else json_number(row[0]), *row[1:]) for row in rows], token

    def _models_table(self) -> None:
        """Created by the migration."""

    def close(self) -> None:
        self._db.close()


def _guard_call(uri: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except _REFUSED as exc:
        raise _refusal(uri, exc) from None


@contextmanager
def refusals(uri: str) -> Iterator[None]:
    """Code that reads a PostgreSQL store's connection itself (an import's lookups), outside the store's guarded
    methods: a refused or lost connection is the same one line as theirs, not psycopg's traceback."""
    try:
        yield
    except _REFUSED as exc:
        raise _refusal(uri, exc) from None


def _refusal(uri: str, exc: BaseException) -> StoreError:
    """The one line for a refused call: StoreUnavailable (the server answers 503, clients retry) when the database
    server cannot be reached now, else StoreError. Either way a transaction it cut off is gone whole."""
    kind = StoreUnavailable if unavailable(exc) else StoreError
    return kind(f"PostgreSQL store {where(uri)}: {_first_line(exc)}")


def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of an object with a ``uri`` (this store, the auth store), a lost or refused connection made
    one line (a StoreError)."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except _REFUSED as exc:  # the server went away, a timeout: one line, not a traceback
            raise _refusal(self.uri, exc) from None
    return wrapper


for _name in dir(PostgresStore):
    _member = inspect.getattr_static(PostgresStore, _name)
    if not _name.startswith("_") and inspect.isfunction(_member) and _name not in ("transaction", "reopen"):
        setattr(PostgresStore, _name, guarded(_member))
