"""A psycopg 3 connection that the SQLite store's parts use as they use sqlite3's: execute, executemany,
fetchone/fetchall, iteration, rowcount, lastrowid, in_transaction (imported only for postgresql:// stores)."""
from __future__ import annotations

import sqlite3
from typing import Any, Callable, Iterator, Sequence, TypeVar

import psycopg
from psycopg import errors as pg_errors

from proj.tracking.sql_dialect import Table, Translated, arguments, to_postgres

# Every write transaction takes this transaction-level advisory lock first: PostgreSQL then serialises writers
# exactly as SQLite's BEGIN IMMEDIATE does, so the store's read-then-write steps (the next version number, a new
# experiment id, a param already logged) need no second design. Reads never wait for it.
WRITE_LOCK = 0x70726F6A  # "proj"
# A write that touches one run's rows only (a log-batch) takes WRITE_LOCK shared, then this class's lock on the run
# (the two-key space, apart from WRITE_LOCK's): writers to different runs go side by side, writers to one run and
# every other writer (which takes WRITE_LOCK exclusively) still one at a time.
RUN_LOCK_CLASS = 0x72756E  # "run"
T = TypeVar("T")


class PgCursor:
    """The part of sqlite3.Cursor the store uses."""

    def __init__(self, cursor: psycopg.Cursor[Any], lastrowid: int | None) -> None:
        self._cursor = cursor
        self.lastrowid = lastrowid

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConnection:
    """One psycopg connection in autocommit mode; BEGIN/COMMIT/ROLLBACK pass through as on sqlite3."""

    def __init__(self, conninfo: str, tables: dict[str, Table]) -> None:
        self._conninfo = conninfo
        self._conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        self._tables = tuple(sorted(tables.items()))
        self._open = False
        self._xid: int | None = None  # the open write transaction's id (txid_current)

    @property
    def in_transaction(self) -> bool:
        return self._open

    def begin_write(self, run_id: str | None = None) -> None:
        """BEGIN and the write lock: all of it, or (``run_id``) its shared half and that run's own lock."""
        locks = (f"pg_advisory_xact_lock({WRITE_LOCK})" if run_id is None else
                 f"pg_advisory_xact_lock_shared({WRITE_LOCK}), pg_advisory_xact_lock({RUN_LOCK_CLASS}, hashtext(?))")
        self.execute("BEGIN")
        try:  # the transaction's id too: a COMMIT whose answer was lost is looked up by it (_commit)
            self._xid = self.execute(f"SELECT txid_current(), {locks}", () if run_id is None else (run_id,)).fetchone()[0]
        except BaseException:
            self.execute("ROLLBACK")  # not left "in a transaction": the handle would never reconnect
            raise

    def execute(self, sql: str, args: Sequence[Any] | None = None) -> PgCursor:
        word = sql.strip().split(None, 1)[0].upper() if sql.strip() else ""
        if word in ("BEGIN", "COMMIT", "ROLLBACK", "END"):
            self._open = False  # a COMMIT or ROLLBACK that fails ends it too (a lost connection's is gone with it)
            if word == "BEGIN":
                self._xid = None
                self._again(lambda: self._live().execute("BEGIN"))
            elif word in ("COMMIT", "END"):
                self._commit()
            elif not self._conn.broken:  # a lost connection's transaction is gone with it: the first error stands
                self._conn.execute(word)
            self._open = word == "BEGIN"
            return PgCursor(self._conn.cursor(), None)
        done = to_postgres(sql, self._tables)
        cursor = self._run(done, lambda c: c.execute(done.sql, arguments(args, done.globs)), again=word == "SELECT")
        lastrowid = None
        if done.returns_id and cursor.description:
            row = cursor.fetchone()
            lastrowid = row[0] if row else None
        return PgCursor(cursor, lastrowid)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> PgCursor:
        done = to_postgres(sql, self._tables)
        rows = list(rows)
        cursor = self._live().cursor()
        if rows:
            self._run(done, lambda c: c.executemany(done.sql, [arguments(r, done.globs) for r in rows]), cursor)
        return PgCursor(cursor, None)

    def _run(self, done: Translated, call: Any, cursor: psycopg.Cursor[Any] | None = None,
             again: bool = False) -> psycopg.Cursor[Any]:
        try:
            if cursor is None and again:
                return self._again(lambda: _called(call, self._live().cursor()))
            cursor = cursor or self._live().cursor()
            call(cursor)
        except pg_errors.IntegrityError as exc:  # the store's parts catch sqlite3's (a taken name, a key)
            raise sqlite3.IntegrityError(str(exc).splitlines()[0]) from exc
        return cursor

    def _commit(self) -> None:
        """COMMIT; when the connection is lost on the way the transaction may have committed all the same (its
        answer never came back): a new connection asks the server, so a committed one is not reported as failed
        (and retried by the client: a second copy of its points). If the server cannot be asked, the loss stands."""
        try:
            self._conn.execute("COMMIT")
        except psycopg.OperationalError:
            xid, self._xid = self._xid, None
            if xid is None or not self._conn.broken or not self._committed(xid):
                raise
        self._xid = None

    def _committed(self, xid: int) -> bool:
        try:
            row = self._live().execute("SELECT txid_status(%s)", (xid,)).fetchone()
        except psycopg.OperationalError:
            return False
        return bool(row and row[0] == "committed")

    def raw(self, sql: str) -> None:
        """A statement in PostgreSQL's own words (the migration's DDL), not translated."""
        self._live().execute(sql)

    def _again(self, send: Callable[[], T]) -> T:
        """Outside a transaction, a BEGIN or a SELECT that meets a connection the server ended while it sat idle
        (a restart, an idle timeout: a long run's end) is sent once more on a new one: nothing of it was done."""
        try:
            return send()
        except psycopg.OperationalError:
            if self._open or not self._conn.broken:
                raise
            return send()

    def _live(self) -> psycopg.Connection[Any]:
        """The connection, opened again if the server dropped it (a restart, an idle timeout) between transactions:
        the failed call was one line (PostgresStore's guard), and a handle kept per server thread must not fail
        every later request. Inside a transaction the loss stands: its work is gone."""
        if self._conn.broken and not self._open:
            self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
        return self._conn

    def close(self) -> None:
        self._conn.close()


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the server cannot be reached now and a retry may succeed once it is back: the
    connection refused or ended (a restart, a shutdown, an administrator), the server starting up or shutting
    down, no connection slot free. Anything else (a timeout, a refused role, a missing database) is not."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    if state is not None:
        return state.startswith("08") or state in _UNAVAILABLE_STATES
    text = str(exc)
    # libpq's own failures carry no SQLSTATE: refused, reset, "the connection is closed" are all of the network;
    # a FATAL the server sent while connecting is one only when it is the server starting, stopping or full.
    return "FATAL:" not in text or any(reason in text for reason in _UNAVAILABLE_FATALS)


# 57P01 admin shutdown (a fast shutdown, pg_terminate_backend), 57P02 crash shutdown, 57P03 cannot connect now,
# 53300 too many connections
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_UNAVAILABLE_FATALS = ("the database system is", "too many clients", "remaining connection slots")


def _called(call: Callable[[psycopg.Cursor[Any]], object], cursor: psycopg.Cursor[Any]) -> psycopg.Cursor[Any]:
    call(cursor)
    return cursor
