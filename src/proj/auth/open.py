"""The auth store that goes with a run store: in its PostgreSQL database, else ``auth.db`` beside its folder."""
from __future__ import annotations

from pathlib import Path

from proj.auth.sqlite import SqliteAuthStore
from proj.auth.store import AuthStore
from proj.tracking.open import is_postgres


def open_auth_store(store_uri: str | None, store_root: Path) -> AuthStore:
    """Created and migrated when missing. A PostgreSQL run store keeps its users in the same database (schema
    ``proj_auth``), so that every server over that database shares them; psycopg is imported only then."""
    if is_postgres(store_uri):
        from proj.auth.postgres import PostgresAuthStore

        return PostgresAuthStore(store_uri)
    return SqliteAuthStore.beside(store_root)
