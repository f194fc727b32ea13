"""``proj db upgrade URI``: apply the store's schema steps explicitly (the server never migrates under clients)."""
from __future__ import annotations

import click

from proj.errors import StoreError
from proj.redact import mask_url


@click.group("db")
def db() -> None:
    """The run store's database schema (SQLite or PostgreSQL)."""


@db.command("upgrade")
@click.argument("uri")
def upgrade(uri: str) -> None:
    """Bring the store at URI (postgresql://user:pass@host:port/db, a directory, file:// or sqlite:///.../proj.db)
    up to this proj's schema; prints the version it went from and to. Stop the servers using it first."""
    from proj.tracking.open import is_postgres, server_uri

    if server_uri(uri) is not None:
        raise StoreError(f"{mask_url(uri)} is a tracking server: upgrade the store it serves (its "
                         "--backend-store-uri) where the server runs")
    if is_postgres(uri):
        from proj.tracking.postgres import upgrade_uri, where

        before, after = upgrade_uri(uri)
        _report(f"PostgreSQL {where(uri)}", before, after)
        return
    before, after = _upgrade_sqlite(uri)
    _report(uri, before, after)


def _upgrade_sqlite(uri: str) -> tuple[int, int]:
    """The version an SQLite store had (0: none yet; an older revision counts as the step before) and has now."""
    import sqlite3

    from proj.paths import store_root
    from proj.tracking import migrations
    from proj.tracking.dbfile import DB_NAME
    from proj.tracking.open import open_store
    from proj.tracking.sqlite import schema_steps

    db = store_root(uri) / DB_NAME
    rows: dict[str, str] = {}
    if db.is_file():
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                rows = dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'schema_%'").fetchall())
        except sqlite3.Error:
            rows = {}
    before = schema_steps(rows)
    # an existing store only: a mistyped path is StoreMissing, never a new empty store
    open_store(uri, create=False, write=True).close()  # migrates in one transaction, as `proj run` does on open
    return before, migrations.LATEST


def _report(where: str, before: int, after: int) -> None:
    if before == after:
        click.echo(f"{where}: schema version {after}, up to date")
    else:
        click.echo(f"{where}: schema version {before} -> {after}")
