"""The auth store (auth.db, or schema proj_auth of a PostgreSQL run store: each store case runs on both):
passwords and tokens only as salted scrypt hashes, users, grants, tokens with expiry and revocation, the audit
log, migrations; the policy (defaults, DENY, admins, token caps); the failed-login limiter."""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from helpers.stores import BACKENDS
from proj.auth import hashing
from proj.auth.open import open_auth_store
from proj.auth.permissions import EDIT, MANAGE, NO_PERMISSIONS, READ
from proj.auth.policy import Policy, identify
from proj.auth.ratelimit import FailedLogins
from proj.auth.sqlite import AUTH_DB, SCHEMA_VERSION, SqliteAuthStore
from proj.auth.store import AuthStore
from proj.errors import AlreadyExists, NotFound, StoreDamaged, UsageError


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> AuthStore:
    """A new auth store as the server opens it: auth.db beside an SQLite run store, or in the run store's
    PostgreSQL database (a fresh one per test)."""
    uri = request.getfixturevalue("pg_store_uri") if request.param == "postgresql" else None
    opened = open_auth_store(uri, tmp_path)
    request.addfinalizer(opened.close)
    return opened


def stored(store: AuthStore, tmp_path: Path) -> bytes:
    """Everything the store keeps, as bytes: the SQLite file, or every row of the PostgreSQL tables."""
    if isinstance(store, SqliteAuthStore) and type(store) is SqliteAuthStore:  # its write-ahead log too
        return b"".join(p.read_bytes() for p in tmp_path.glob(AUTH_DB + "*"))
    rows = [store._db.execute(f"SELECT * FROM {t}").fetchall() for t in ("users", "tokens", "grants", "audit")]
    return repr(rows).encode()


def test_passwords_are_salted_slow_hashes(store: AuthStore, tmp_path: Path) -> None:
    a = store.create_user("a", "same-password")
    b = store.create_user("b", "same-password")
    assert a.password_hash.startswith("scrypt$16384$8$1$") and a.password_hash != b.password_hash
    assert a.password_hash.encode() in stored(store, tmp_path) and b"same-password" not in stored(store, tmp_path)
    assert store.authenticate("a", "same-password") == a
    assert store.authenticate("a", "same-passwor") is None and store.authenticate("nobody", "x") is None
    assert not hashing.verify_secret("x", "not$a$hash") and not hashing.verify_secret("x", "md5$1$1$1$aa$bb")


def test_users(store: AuthStore) -> None:
    store.create_user("alice", "password-123")
    with pytest.raises(AlreadyExists, match="alice"):
        store.create_user("alice", "other-password")
    for bad in ("", "  ", "a:b", "x\ny"):
        with pytest.raises(UsageError):
            store.create_user(bad, "password-123")
    with pytest.raises(UsageError, match="empty"):
        store.create_user("bob", "")
    with pytest.raises(UsageError, match="at least 12"):
        store.create_user("bob", "short")
    store.update_password("alice", "new-password-1")
    assert store.authenticate("alice", "password-123") is None and store.authenticate("alice", "new-password-1") is not None
    store.update_admin("alice", True)
    assert store.get_user("alice").is_admin
    with pytest.raises(NotFound):
        store.update_admin("nobody", True)
    store.set_grant("alice", "experiment", "1", "READ")
    store.delete_user("alice")
    assert store.list_users() == [] and store.find_user("alice") is None
    assert store._db.execute("SELECT count(*) FROM grants").fetchone()[0] == 0  # cascaded


def test_grants(store: AuthStore) -> None:
    user = store.create_user("u", "password-123")
    store.set_grant("u", "experiment", "7", "READ")
    store.set_grant("u", "experiment", "7", "edit")  # an upsert, case as MLflow accepts it
    store.set_grant("u", "registered_model", "m", "DENY")
    assert [(g.resource_id, g.permission) for g in store.grants_of(user.id)] == [("7", "EDIT"), ("m", "DENY")]
    with pytest.raises(UsageError, match="Valid permissions"):
        store.set_grant("u", "experiment", "7", "OWNER")
    with pytest.raises(UsageError, match="resource type"):
        store.set_grant("u", "run", "7", "READ")
    store.rename_resource("registered_model", "m", "m2")
    assert store.get_grant("u", "registered_model", "m2") is not None
    assert store.delete_grant("u", "experiment", "7") and not store.delete_grant("u", "experiment", "7")


def test_tokens(store: AuthStore, tmp_path: Path) -> None:
    store.create_user("u", "password-123")
    now = time.time()
    made, given = store.create_token("u", expires=now + 60, read_only=True, experiment_id="3")
    assert given.startswith("proj_") and given.split("_", 2)[2].encode() not in stored(store, tmp_path)
    assert made.secret_hash.encode() in stored(store, tmp_path)
    found = store.authenticate_token(given, now)
    assert found is not None and found.read_only and found.experiment_id == "3" and found.username == "u"
    assert store.authenticate_token(given, now + 61) is None  # expired
    assert store.authenticate_token(given[:-1] + ("A" if given[-1] != "A" else "B"), now) is None
    assert store.authenticate_token("proj_nope", now) is None and store.authenticate_token("abc", now) is None
    assert store.get_token(made.id) == found and store.get_token("000000000000") is None
    store.revoke_token(made.id)
    assert store.authenticate_token(given, now) is None
    revoked = store.get_token(made.id)
    assert revoked is not None and revoked.revoked is not None and revoked.secret_hash == made.secret_hash
    with pytest.raises(NotFound, match="token list"):
        store.revoke_token("000000000000")


def test_audit_is_appended_and_read_since(store: AuthStore) -> None:
    store.audit("grant", actor="admin", resource_type="experiment", resource_id="1", target="u", permission="READ")
    middle = time.time()
    store.audit("denied", actor="u", client="10.0.0.1", detail="GET /x")
    assert [e.action for e in store.audit_entries()] == ["grant", "denied"]
    assert [e.action for e in store.audit_entries(since=middle)] == ["denied"]


def test_migrations_and_a_newer_schema(tmp_path: Path) -> None:
    SqliteAuthStore.beside(tmp_path).close()
    db = sqlite3.connect(tmp_path / AUTH_DB)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreDamaged, match="newer than this proj knows"):
        SqliteAuthStore.beside(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / AUTH_DB).write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreDamaged, match="not a usable auth database"):
        SqliteAuthStore.beside(tmp_path / "bad")


def test_policy(store: AuthStore) -> None:
    user = store.create_user("u", "password-123")
    admin = store.create_user("root", "password-123", is_admin=True)
    store.set_grant("u", "experiment", "1", "EDIT")
    store.set_grant("u", "experiment", "2", "DENY")
    store.set_grant("u", "registered_model", "granted", "READ")
    ident = identify(store, user)
    reading = Policy(READ)
    assert reading.experiment(ident, "1") == EDIT and reading.experiment(ident, "3") == READ
    assert reading.experiment(ident, "2") == NO_PERMISSIONS  # DENY beats the default
    assert Policy(NO_PERMISSIONS).experiment(ident, "3") == NO_PERMISSIONS
    assert reading.experiment(identify(store, admin), "2") == MANAGE
    # a model produced only in experiments the user cannot read is hidden unless granted
    assert reading.registered_model(ident, "m", ["2"]) == NO_PERMISSIONS
    assert reading.registered_model(ident, "m", ["2", "3"]) == READ
    assert reading.registered_model(ident, "granted", ["2"]) == READ
    assert not reading.version_visible(ident, "m", "2") and reading.version_visible(ident, "granted", "2")
    # tokens: read-only caps at READ, a scoped one reaches its experiment only, neither carries admin rights
    _, given = store.create_token("root", expires=None, read_only=True, experiment_id=None)
    token = store.authenticate_token(given, time.time())
    read_only_admin = identify(store, admin, token)
    assert not read_only_admin.is_admin and reading.experiment(read_only_admin, "5") == READ
    _, given = store.create_token("u", expires=None, read_only=False, experiment_id="1")
    scoped = identify(store, user, store.authenticate_token(given, time.time()))
    assert reading.experiment(scoped, "1") == EDIT and reading.experiment(scoped, "3") == NO_PERMISSIONS
    assert reading.registered_model(scoped, "granted") == NO_PERMISSIONS and not scoped.can_create


def test_postgresql_auth_schema_migrates_once_and_refuses_a_newer_one(pg_store_uri: str, tmp_path: Path) -> None:
    from proj.auth.postgres import PostgresAuthStore

    opened: list[AuthStore] = []
    starts = [threading.Thread(target=lambda: opened.append(PostgresAuthStore(pg_store_uri))) for _ in range(4)]
    for t in starts:
        t.start()
    for t in starts:
        t.join()
    assert len(opened) == 4  # four servers starting at once: one migrated, none failed
    opened[0].create_user("shared", "password-123")
    assert [u.username for u in opened[3].list_users()] == ["shared"]  # one set of users for every server
    db = opened[0]._db  # type: ignore[attr-defined]
    assert db.execute("SELECT value FROM meta WHERE key = 'auth_schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert db.execute("SELECT to_regclass('public.users')").fetchone()[0] is None  # apart from the run store's tables
    db.execute("UPDATE meta SET value = ? WHERE key = 'auth_schema_version'", (str(SCHEMA_VERSION + 1),))
    for store in opened:
        store.close()
    with pytest.raises(StoreDamaged, match="newer than this proj knows"):
        PostgresAuthStore(pg_store_uri)


def test_failed_logins_are_bounded_per_address() -> None:
    limiter = FailedLogins(limit=3, window=60)
    for second in range(3):
        assert limiter.retry_after("1.2.3.4", now=100 + second) is None
        limiter.failed("1.2.3.4", now=100 + second)
    assert limiter.retry_after("1.2.3.4", now=103) == 57  # until the first failure leaves the window
    assert limiter.retry_after("5.6.7.8", now=103) is None  # another address is not affected
    assert limiter.retry_after("1.2.3.4", now=160.5) is None  # the window moved past the first failure
