"""Who may do what: a user's effective permission on an experiment or a registered model (grants, the default
permission, admins, and the caps of the API token the request came with)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from proj.auth.permissions import (
    DENY,
    EXPERIMENT,
    MANAGE,
    NO_PERMISSIONS,
    READ,
    REGISTERED_MODEL,
    Permission,
    capped,
    permission,
)
from proj.auth.store import AuthStore, Token, User


@dataclass
class Identity:
    """The authenticated caller: a user, and the token it came with (None: a password). Its grants are loaded
    once per request (``grants``), so filtering a search over many experiments costs one query."""

    user: User
    token: Token | None = None
    grants: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def read_only(self) -> bool:
        return self.token is not None and self.token.read_only

    @property
    def scope(self) -> str | None:
        """The one experiment a scoped token reaches."""
        return self.token.experiment_id if self.token is not None else None

    @property
    def is_admin(self) -> bool:
        """An admin's password, or an unrestricted token of an admin (a scoped token never carries admin rights)."""
        return self.user.is_admin and not self.read_only and self.scope is None

    @property
    def can_create(self) -> bool:
        """Creating an experiment or a registered model (its creator gets MANAGE on it, as in MLflow)."""
        return not self.read_only and self.scope is None


def identify(store: AuthStore, user: User, token: Token | None = None) -> Identity:
    grants = {(g.resource_type, g.resource_id): g.permission for g in store.grants_of(user.id)}
    return Identity(user, token, grants)


class Policy:
    def __init__(self, default: Permission) -> None:
        self.default = default

    def _cap(self, ident: Identity, found: Permission) -> Permission:
        return capped(found, READ) if ident.read_only else found

    def _granted(self, ident: Identity, kind: str, resource_id: str) -> Permission | None:
        name = ident.grants.get((kind, str(resource_id)))
        return permission(name) if name else None

    def experiment(self, ident: Identity, experiment_id: str) -> Permission:
        if ident.scope is not None and str(experiment_id) != ident.scope:
            return NO_PERMISSIONS
        if ident.user.is_admin:
            return self._cap(ident, MANAGE)
        found = self._granted(ident, EXPERIMENT, experiment_id) or self.default
        return self._cap(ident, NO_PERMISSIONS if found is DENY else found)

    def registered_model(self, ident: Identity, name: str, produced_in: Iterable[str] = ()) -> Permission:
        """A model's permission: its grant, else the default; without a grant a model whose versions were all
        produced in experiments the user cannot read is hidden too (it would show their runs' names and
        sources). ``produced_in``: the experiments of its versions' source runs."""
        if ident.scope is not None:
            return NO_PERMISSIONS  # a token scoped to one experiment reaches nothing of the registry
        if ident.user.is_admin:
            return self._cap(ident, MANAGE)
        granted = self._granted(ident, REGISTERED_MODEL, name)
        if granted is not None:
            return self._cap(ident, NO_PERMISSIONS if granted is DENY else granted)
        sources = set(produced_in)
        if sources and not any(self.experiment(ident, e).can_read for e in sources):
            return NO_PERMISSIONS
        return self._cap(ident, self.default)

    def version_visible(self, ident: Identity, name: str, run_experiment: str | None) -> bool:
        """A version is shown to a reader of its model unless it came from a run the user cannot read (and the
        model was not granted to the user explicitly)."""
        if run_experiment is None or ident.user.is_admin or self._granted(ident, REGISTERED_MODEL, name):
            return True
        return self.experiment(ident, run_experiment).can_read
