"""MLflow's permission levels (READ, USE, EDIT, MANAGE, NO_PERMISSIONS, DENY) and what each allows."""
from __future__ import annotations

from dataclasses import dataclass

from proj.errors import UsageError

EXPERIMENT = "experiment"
REGISTERED_MODEL = "registered_model"
RESOURCE_TYPES = (EXPERIMENT, REGISTERED_MODEL)


@dataclass(frozen=True)
class Permission:
    name: str
    rank: int  # what a request needs is compared by rank: READ < USE < EDIT < MANAGE

    @property
    def can_read(self) -> bool:
        return self.rank >= READ.rank

    @property
    def can_update(self) -> bool:
        return self.rank >= EDIT.rank

    @property
    def can_manage(self) -> bool:
        return self.rank >= MANAGE.rank

    def allows(self, needed: "Permission") -> bool:
        return self.rank >= needed.rank > 0


DENY = Permission("DENY", -1)  # an explicit refusal, stronger than the default permission
NO_PERMISSIONS = Permission("NO_PERMISSIONS", 0)
READ = Permission("READ", 1)
USE = Permission("USE", 2)
EDIT = Permission("EDIT", 3)
MANAGE = Permission("MANAGE", 4)
ALL = {p.name: p for p in (READ, USE, EDIT, MANAGE, NO_PERMISSIONS, DENY)}
GRANTABLE = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS", "DENY")
DEFAULTS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")  # what --auth-default-permission accepts


def permission(name: str, *, what: str = "permission") -> Permission:
    """The named permission; UsageError (MLflow's message shape) for any other name."""
    found = ALL.get(str(name).upper()) if isinstance(name, str) else None
    if found is None:
        raise UsageError(f"Invalid {what} '{name}'. Valid permissions are: {GRANTABLE}")
    return found


def resource_type(name: str) -> str:
    if name not in RESOURCE_TYPES:
        raise UsageError(f"Invalid resource type '{name}'. Valid resource types are: {RESOURCE_TYPES}")
    return name


def capped(found: Permission, cap: Permission) -> Permission:
    """``found`` lowered to at most ``cap`` (a read-only token caps everything at READ)."""
    return found if found.rank <= cap.rank else cap
