"""The auth store in ``auth.db`` beside the run store (as MLflow keeps basic_auth.db apart from its tracking DB)."""
from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from proj.auth import hashing
from proj.auth.permissions import permission, resource_type
from proj.auth.store import AuditEntry, AuthStore, Grant, Token, User
from proj.errors import AlreadyExists, NotFound, StoreDamaged, UsageError
from proj.tracking.dbfile import connect, write_transaction

log = logging.getLogger("proj.auth")

AUTH_DB = "auth.db"
# Each step runs once, in order, in one transaction with the version bump (PRAGMA user_version), as the run
# store migrates; the SQL is standard (a PostgreSQL store runs the same statements with its own key types).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL UNIQUE,
      password_hash TEXT NOT NULL, is_admin INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
    CREATE TABLE grants (user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      resource_type TEXT NOT NULL, resource_id TEXT NOT NULL, permission TEXT NOT NULL,
      PRIMARY KEY (user_id, resource_type, resource_id));
    CREATE INDEX grants_by_resource ON grants(resource_type, resource_id);
    CREATE TABLE tokens (id TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      secret_hash TEXT NOT NULL, created REAL NOT NULL, expires REAL, read_only INTEGER NOT NULL DEFAULT 0,
      experiment_id TEXT, revoked REAL, note TEXT);
    CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, actor TEXT, client TEXT,
      action TEXT NOT NULL, resource_type TEXT, resource_id TEXT, target TEXT, permission TEXT, detail TEXT);
    CREATE INDEX audit_by_time ON audit(time);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_MAX_NAME = 256


def _check_name(username: str) -> str:
    if not isinstance(username, str) or not username.strip():
        raise UsageError("Username cannot be empty.")
    if len(username) > _MAX_NAME or any(c in username for c in ":\n\r\0"):
        raise UsageError(f"Invalid username {username[:40]!r}: at most {_MAX_NAME} characters, no ':' or newline "
                         "(HTTP Basic splits at the first ':')")
    return username


MIN_PASSWORD = 12  # as MLflow 3's auth app (mlflow.utils.validation)


def _check_password(password: str) -> str:
    if not isinstance(password, str) or not password:
        raise UsageError("Password cannot be empty.")
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"Password must be at least {MIN_PASSWORD} characters.")
    return password


class SqliteAuthStore(AuthStore):
    """Users, grants, tokens and audit entries in one SQLite file; one connection per thread (``reopen``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = connect(path, readonly=False)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreDamaged(f"{path} is not a usable auth database ({exc}); move it aside to start anew") from None

    @classmethod
    def beside(cls, store_root: Path) -> "SqliteAuthStore":
        return cls(store_root / AUTH_DB)

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreDamaged(f"{self.path} has auth schema version {version}, newer than this proj knows "
                               f"({SCHEMA_VERSION}); upgrade proj")
        for step in range(version, SCHEMA_VERSION):
            with self._tx() as db:
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {step + 1}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        with write_transaction(db, lambda: db.execute("BEGIN IMMEDIATE")):
            yield db

    def transaction(self) -> Any:
        return self._tx()

    def reopen(self) -> "SqliteAuthStore":
        return SqliteAuthStore(self.path)

    def close(self) -> None:
        self._db.close()

    # ---- users ----

    @staticmethod
    def _user(row: tuple[Any, ...]) -> User:
        return User(id=row[0], username=row[1], is_admin=bool(row[3]), password_hash=row[2])

    def create_user(self, username: str, password: str, *, is_admin: bool = False) -> User:
        _check_name(username)
        hashed = hashing.hash_secret(_check_password(password))
        with self._tx() as db:
            if db.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
                raise AlreadyExists(f"User '{username}' already exists")
            user_id = db.execute("INSERT INTO users (username, password_hash, is_admin, created) VALUES (?,?,?,?)"
                                 " RETURNING id", (username, hashed, int(is_admin), time.time())).fetchone()[0]
        return User(user_id, username, is_admin, hashed)

    def find_user(self, username: str) -> User | None:
        row = self._db.execute("SELECT id, username, password_hash, is_admin FROM users WHERE username = ?",
                               (username,)).fetchone()
        return self._user(row) if row else None

    def get_user(self, username: str) -> User:
        found = self.find_user(username)
        if found is None:
            raise NotFound(f"User with username={username} not found")
        return found

    def user_by_id(self, user_id: int) -> User | None:
        row = self._db.execute("SELECT id, username, password_hash, is_admin FROM users WHERE id = ?",
                               (user_id,)).fetchone()
        return self._user(row) if row else None

    def list_users(self) -> list[User]:
        rows = self._db.execute("SELECT id, username, password_hash, is_admin FROM users ORDER BY username")
        return [self._user(r) for r in rows]

    def update_password(self, username: str, password: str) -> None:
        hashed = hashing.hash_secret(_check_password(password))
        with self._tx() as db:
            if db.execute("UPDATE users SET password_hash = ? WHERE username = ?", (hashed, username)).rowcount == 0:
                raise NotFound(f"User with username={username} not found")

    def update_admin(self, username: str, is_admin: bool) -> None:
        with self._tx() as db:
            if db.execute("UPDATE users SET is_admin = ? WHERE username = ?",
                          (int(is_admin), username)).rowcount == 0:
                raise NotFound(f"User with username={username} not found")

    def delete_user(self, username: str) -> None:
        with self._tx() as db:
            if db.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount == 0:
                raise NotFound(f"User with username={username} not found")

    def authenticate(self, username: str, password: str) -> User | None:
        user = self.find_user(username)
        if user is None:
            hashing.dummy_verify(password)
            return None
        return user if hashing.verify_secret(password, user.password_hash) else None

    # ---- grants ----

    def set_grant(self, username: str, resource_type_: str, resource_id: str, permission_: str) -> Grant:
        kind = resource_type(resource_type_)
        level = permission(permission_).name
        if not resource_id:
            raise UsageError(f"A {kind} permission needs the {kind}'s {'id' if kind == 'experiment' else 'name'}")
        with self._tx() as db:
            user = self.get_user(username)
            db.execute("INSERT INTO grants VALUES (?,?,?,?) ON CONFLICT(user_id, resource_type, resource_id)"
                       " DO UPDATE SET permission = excluded.permission", (user.id, kind, str(resource_id), level))
        return Grant(user.id, kind, str(resource_id), level)

    def get_grant(self, username: str, resource_type_: str, resource_id: str) -> Grant | None:
        row = self._db.execute(
            "SELECT g.user_id, g.resource_type, g.resource_id, g.permission FROM grants g JOIN users u"
            " ON u.id = g.user_id WHERE u.username = ? AND g.resource_type = ? AND g.resource_id = ?",
            (username, resource_type_, str(resource_id))).fetchone()
        return Grant(*row) if row else None

    def delete_grant(self, username: str, resource_type_: str, resource_id: str) -> bool:
        with self._tx() as db:
            user = self.get_user(username)
            return db.execute("DELETE FROM grants WHERE user_id = ? AND resource_type = ? AND resource_id = ?",
                              (user.id, resource_type_, str(resource_id))).rowcount > 0

    def grants_of(self, user_id: int) -> list[Grant]:
        rows = self._db.execute("SELECT user_id, resource_type, resource_id, permission FROM grants WHERE user_id = ?"
                                " ORDER BY resource_type, resource_id", (user_id,))
        return [Grant(*r) for r in rows]

    def rename_resource(self, resource_type_: str, old: str, new: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE grants SET resource_id = ? WHERE resource_type = ? AND resource_id = ?",
                       (new, resource_type_, old))

    # ---- tokens ----

    def _token(self, row: tuple[Any, ...]) -> Token:
        tid, uid, name, created, expires, read_only, exp_id, revoked, secret_hash, note = row
        return Token(tid, uid, name, created, expires, bool(read_only), exp_id, revoked, secret_hash, note)

    _TOKEN_COLUMNS = ("t.id, t.user_id, u.username, t.created, t.expires, t.read_only, t.experiment_id, t.revoked,"
                      " t.secret_hash, t.note FROM tokens t JOIN users u ON u.id = t.user_id")

    def create_token(self, username: str, *, expires: float | None, read_only: bool,
                     experiment_id: str | None, note: str | None = None) -> tuple[Token, str]:
        token_id, secret, given = hashing.new_token()
        hashed = hashing.hash_secret(secret)
        now = time.time()
        with self._tx() as db:
            user = self.get_user(username)
            db.execute("INSERT INTO tokens VALUES (?,?,?,?,?,?,?,?,?)",
                       (token_id, user.id, hashed, now, expires, int(read_only), experiment_id, None, note))
        return Token(token_id, user.id, username, now, expires, read_only, experiment_id, None, hashed, note), given

    def list_tokens(self, username: str | None = None) -> list[Token]:
        where, args = (" WHERE u.username = ?", (username,)) if username else ("", ())
        rows = self._db.execute(f"SELECT {self._TOKEN_COLUMNS}{where} ORDER BY t.created", args)
        return [self._token(r) for r in rows]

    def get_token(self, token_id: str) -> Token | None:
        row = self._db.execute(f"SELECT {self._TOKEN_COLUMNS} WHERE t.id = ?", (token_id,)).fetchone()
        return self._token(row) if row else None

    def revoke_token(self, token_id: str) -> Token:
        with self._tx():
            self._db.execute("UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", (time.time(), token_id))
            found = self.get_token(token_id)
        if found is None:
            raise NotFound(f"No API token with id {token_id!r} (see `proj server token list`)")
        return found

    def authenticate_token(self, token: str, now: float) -> Token | None:
        parts = hashing.split_token(token)
        if parts is None:
            return None
        found = self.get_token(parts[0])
        if found is None:
            hashing.dummy_verify(parts[1])
            return None
        if not hashing.verify_secret(parts[1], found.secret_hash):
            return None
        if found.revoked is not None or (found.expires is not None and found.expires <= now):
            return None
        return found

    # ---- audit ----

    def audit(self, action: str, *, actor: str | None = None, client: str | None = None,
              resource_type: str | None = None, resource_id: str | None = None, target: str | None = None,
              permission: str | None = None, detail: str | None = None) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO audit (time, actor, client, action, resource_type, resource_id, target, permission,"
                       " detail) VALUES (?,?,?,?,?,?,?,?,?)",
                       (time.time(), actor, client, action, resource_type, resource_id, target, permission, detail))
        log.info("audit %s actor=%s client=%s resource=%s:%s target=%s permission=%s %s", action, actor, client,
                 resource_type, resource_id, target, permission, detail or "")

    def audit_entries(self, since: float | None = None, limit: int = 1000) -> list[AuditEntry]:
        rows = self._db.execute("SELECT id, time, actor, client, action, resource_type, resource_id, target,"
                                " permission, detail FROM audit WHERE time >= ? ORDER BY id DESC LIMIT ?",
                                (since or 0.0, limit)).fetchall()
        return [AuditEntry(*r) for r in reversed(rows)]
