"""Opening the store a tracking URI names: the embedded SQLite file, or a tracking server (http(s)://, through
tracking.rest, imported only then). Pure: it never reaps."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeGuard

from proj import settings
from proj.errors import StoreError, StoreMissing
from proj.paths import DEFAULT_STORE_DIRNAME, store_root
from proj.tracking.dbfile import DB_NAME, check_beside_runs, verify
from proj.tracking.sqlite import SqliteStore
from proj.tracking.store import RunStore

POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")
FILES_ENV = "PROJ_STORE_FILES"  # where a PostgreSQL store's run folders live (default ./.proj)


def open_store(tracking_uri: str | None = None, *, create: bool = True, write: bool | None = None,
               files_root: Path | None = None, upgrade: bool = True) -> RunStore:
    """Open the store a tracking URI names. Opening is pure: it never collects dead runs (commands that act
    on runs use ``pipeline.reaper.open_to_act``).

    ``write`` (default: ``create``) opens it for writing: created if missing (only if ``create``), checked
    for damage before anything is written, migrated. Otherwise it is opened read-only: nothing is created,
    written or migrated, so a read-only or full disk can still be read. Reading commands pass
    ``create=False``: looking at runs must not leave a ``.proj/`` in every directory it is tried in.

    An http(s) URI (``--tracking-uri``, else PROJ_TRACKING_URI, else an http(s) MLFLOW_TRACKING_URI) opens a
    RestStore: a file: MLFLOW_TRACKING_URI is left to the child, as before.

    A postgresql:// URI opens the PostgreSQL store (psycopg is imported only then); its run folders live in
    ``files_root`` (the server's --artifacts-destination), else PROJ_STORE_FILES, else ./.proj. ``upgrade``
    False (the server): a schema older or newer than this proj's is refused instead of migrated.
    """
    remote = server_uri(tracking_uri)
    if remote is not None:
        from proj.tracking.rest import RestStore  # urllib3 only for runs that record to a server

        return RestStore(remote)
    uri = tracking_uri or settings.tracking_uri()
    if is_postgres(uri):
        from proj.tracking.postgres import PostgresStore  # psycopg only for a PostgreSQL store

        files = files_root or Path(os.environ.get(FILES_ENV) or DEFAULT_STORE_DIRNAME).expanduser().resolve()
        return PostgresStore(uri, files, readonly=not (create if write is None else write), upgrade=upgrade)
    root = store_root(tracking_uri)
    db = root / DB_NAME
    check_beside_runs(root, db)
    if not create and not db.is_file():
        raise StoreMissing(f"no runs recorded in {root} yet (`proj run` creates the store there; "
                           f"use --tracking-uri or PROJ_TRACKING_URI to read another one)")
    if not (create if write is None else write):
        return SqliteStore(root, readonly=True)
    for path in (root, db):  # access() says EROFS on a read-only mount even for root
        if path.exists() and not os.access(path, os.W_OK):
            raise StoreError(f"run store {path} is read-only: reading commands work; to record runs, use a "
                             f"writable store (--tracking-uri or PROJ_TRACKING_URI)")
    if db.is_file():
        verify(db)  # before the first write (a migration, a new run) touches a damaged file
    return SqliteStore(root, upgrade=upgrade)


def is_postgres(uri: str | None) -> TypeGuard[str]:
    """Whether a store URI names a PostgreSQL database (``postgresql://``, ``postgresql+psycopg://``, ``postgres://``)."""
    return uri is not None and uri.lower().startswith(POSTGRES_SCHEMES)


def server_uri(tracking_uri: str | None = None) -> str | None:
    """The tracking server's URI when the store to open is one, else None."""
    uri = tracking_uri or settings.tracking_uri()
    if uri is None:
        mlflow = os.environ.get("MLFLOW_TRACKING_URI", "")
        uri = mlflow if mlflow.lower().startswith(("http://", "https://")) else None
    return uri if uri and uri.lower().startswith(("http://", "https://")) else None


def existing_store(tracking_uri: str | None = None) -> RunStore | None:
    """The store if one exists there, else None (listing an empty place is not an error)."""
    try:
        return open_store(tracking_uri, create=False)
    except StoreMissing:
        return None
