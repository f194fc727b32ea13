"""The proj.db file itself: read-only connections, the empty-file and integrity checks, one-line errors."""
from __future__ import annotations

import functools
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from proj.errors import StoreDamaged, StoreError
from proj.paths import STORE_FILE, StoreLayout

# A full quick_check reads every page (about 30 ms per 8 MB here); a bigger store checks the tables that
# creating a run writes, so `proj run` stays fast on a store of many runs.
FULL_CHECK_BYTES = 8 * 1024 * 1024
RUN_TABLES = ("meta", "experiments", "runs", "params", "tags")
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
# Errors of the machine or the file, not of proj: one line, never a traceback.
_ENVIRONMENT = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_READONLY", "SQLITE_CANTOPEN",
                "SQLITE_PERM", "SQLITE_NOMEM")
DB_NAME = STORE_FILE
_MAX_DETAIL = 200
C = TypeVar("C", bound=type)


def connect(db: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection in autocommit mode; ``readonly`` ones never write, not even a -shm file if they cannot."""
    if not readonly:
        conn = sqlite3.connect(db, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn
    uri = db.resolve().as_uri() + "?mode=ro"
    conn = _ro(uri)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if not _named(exc, ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_READONLY")):
            raise
        # A WAL store without its -shm file on a read-only or full filesystem: nobody has it open (the last
        # connection removes -shm), so reading it as an immutable file sees everything committed.
        conn.close()
        conn = _ro(uri + "&immutable=1")
    return conn


@contextmanager
def write_transaction(db: Any, begin: Callable[[], object]) -> Iterator[Any]:
    """One write transaction on ``db`` (sqlite3 or tracking.pg_connection), opened by ``begin`` (SQLite's
    BEGIN IMMEDIATE, PostgreSQL's advisory-locked BEGIN); inside one already, the caller's is joined."""
    if db.in_transaction:
        yield db
        return
    begin()
    try:
        yield db
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    if db.in_transaction:
        try:
            db.execute("COMMIT")
        except BaseException:  # SQLite keeps a transaction whose COMMIT failed (busy) open: end it, none of it stays
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


def _ro(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 60000")
    conn.execute("PRAGMA temp_store = MEMORY")  # temp views of an older schema must not need disk
    return conn


def check_beside_runs(root: Path, db: Path) -> None:
    """An empty or missing proj.db beside run folders is a lost store, not a new one: refuse it."""
    try:
        size: int | None = db.stat().st_size
    except FileNotFoundError:
        size = None
    except OSError as exc:
        raise StoreError(f"run store {db} cannot be read: {exc.strerror or exc}") from None
    if size:
        return
    runs = StoreLayout(root).runs
    count = sum(1 for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else 0
    if count:
        state = "is empty" if size == 0 else "is missing"
        folders = "1 run folder exists" if count == 1 else f"{count} run folders exist"
        raise StoreDamaged(f"run store file {db} {state} but {folders} in {runs}: restore proj.db from a backup, "
                           f"or move {root} aside to start a new store")


def quick_check(db: Path, tables: tuple[str, ...] = ()) -> str:
    """SQLite's own integrity check (of ``tables`` only, when given): 'ok' or its first findings."""
    try:
        conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        if not tables:
            return _findings(conn.execute("PRAGMA quick_check(3)").fetchall())
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in (t for t in tables if t in present):
            result = _findings(conn.execute(f"PRAGMA quick_check({table})").fetchall())
            if result != "ok":
                return result
        return "ok"
    except sqlite3.Error as exc:
        return str(exc)
    finally:
        conn.close()


def verify(db: Path) -> None:
    """Refuse a damaged store before anything is written to it (writing commands call this at open)."""
    tables = () if db.stat().st_size <= FULL_CHECK_BYTES else RUN_TABLES
    result = quick_check(db, tables)
    if result != "ok":
        raise damaged(db, f"integrity check: {result}")


def damaged(db: Path, detail: str) -> StoreDamaged:
    return StoreDamaged(f"run store {db} is damaged and cannot be used ({_short(detail)}): restore it from a backup "
                        f"or move it aside; `sqlite3 {db} .recover` salvages what it can")


def translate(exc: sqlite3.Error, db: Path) -> StoreError | None:
    """The one-line error for a failed store operation, or None for a bug in proj (its traceback shows)."""
    if _named(exc, _DAMAGED) or "malformed" in str(exc) or "not a database" in str(exc):
        return damaged(db, f"{exc}; integrity check: {quick_check(db)}")
    if _named(exc, _ENVIRONMENT):
        return StoreError(f"run store {db}: {_short(str(exc))}")
    return None


def guarded(cls: C) -> C:
    """Give every public method of a store class one-line errors for a damaged file or a failing machine."""
    for name, member in list(vars(cls).items()):
        if callable(member) and not name.startswith("_"):
            setattr(cls, name, _guard(member))
    return cls


def _guard(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            error = translate(exc, Path(self.root) / DB_NAME)
            if error is None:
                raise
            raise error from None
    return wrapper


def _named(exc: sqlite3.Error, prefixes: tuple[str, ...]) -> bool:
    return str(getattr(exc, "sqlite_errorname", "") or "").startswith(prefixes)


def _findings(rows: list[tuple[Any, ...]]) -> str:
    return "; ".join(str(r[0]) for r in rows) or "ok"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
