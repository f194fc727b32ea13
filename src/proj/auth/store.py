"""The auth store's interface and records: users, grants, API tokens, the audit log (SQLite now, PostgreSQL later)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass


@dataclass(frozen=True)
class User:
    id: int
    username: str
    is_admin: bool
    password_hash: str  # never sent anywhere; kept so the store can verify a password

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "username": self.username, "is_admin": self.is_admin}


@dataclass(frozen=True)
class Grant:
    user_id: int
    resource_type: str  # permissions.EXPERIMENT or REGISTERED_MODEL
    resource_id: str  # an experiment id, or a registered model's name
    permission: str


@dataclass(frozen=True)
class Token:
    id: str
    user_id: int
    username: str
    created: float
    expires: float | None  # seconds since the epoch; None: never
    read_only: bool
    experiment_id: str | None  # the one experiment it reaches, None: all the user's
    revoked: float | None
    secret_hash: str
    note: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    time: float
    actor: str | None  # who did it (None: not authenticated)
    client: str | None  # the client's address
    action: str  # grant, revoke, user-create, token-create, denied, unauthenticated, rate-limited...
    resource_type: str | None
    resource_id: str | None
    target: str | None  # the user a change is about
    permission: str | None
    detail: str | None


class AuthStore(ABC):
    """What the server's auth needs from its store: every method one short transaction of standard SQL."""

    @abstractmethod
    def create_user(self, username: str, password: str, *, is_admin: bool = False) -> User: ...

    @abstractmethod
    def get_user(self, username: str) -> User: ...

    @abstractmethod
    def find_user(self, username: str) -> User | None: ...

    @abstractmethod
    def user_by_id(self, user_id: int) -> User | None: ...

    @abstractmethod
    def list_users(self) -> list[User]: ...

    @abstractmethod
    def update_password(self, username: str, password: str) -> None: ...

    @abstractmethod
    def update_admin(self, username: str, is_admin: bool) -> None: ...

    @abstractmethod
    def delete_user(self, username: str) -> None: ...

    @abstractmethod
    def authenticate(self, username: str, password: str) -> User | None: ...

    @abstractmethod
    def set_grant(self, username: str, resource_type: str, resource_id: str, permission: str) -> Grant: ...

    @abstractmethod
    def get_grant(self, username: str, resource_type: str, resource_id: str) -> Grant | None: ...

    @abstractmethod
    def delete_grant(self, username: str, resource_type: str, resource_id: str) -> bool: ...

    @abstractmethod
    def grants_of(self, user_id: int) -> list[Grant]: ...

    @abstractmethod
    def rename_resource(self, resource_type: str, old: str, new: str) -> None: ...

    @abstractmethod
    def create_token(self, username: str, *, expires: float | None, read_only: bool,
                     experiment_id: str | None, note: str | None = None) -> tuple[Token, str]: ...

    @abstractmethod
    def list_tokens(self, username: str | None = None) -> list[Token]: ...

    @abstractmethod
    def get_token(self, token_id: str) -> Token | None:
        """The token with this id (its hash, expiry, revocation), or None."""

    @abstractmethod
    def revoke_token(self, token_id: str) -> Token: ...

    @abstractmethod
    def authenticate_token(self, token: str, now: float) -> Token | None: ...

    @abstractmethod
    def audit(self, action: str, *, actor: str | None = None, client: str | None = None,
              resource_type: str | None = None, resource_id: str | None = None, target: str | None = None,
              permission: str | None = None, detail: str | None = None) -> None: ...

    @abstractmethod
    def audit_entries(self, since: float | None = None, limit: int = 1000) -> list[AuditEntry]: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]: ...

    @abstractmethod
    def reopen(self) -> "AuthStore": ...

    @abstractmethod
    def close(self) -> None: ...
