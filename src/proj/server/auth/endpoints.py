"""MLflow's basic-auth API: users (``/api/2.0/mlflow/users/...``), MLflow 3's per-user grants
(``/api/3.0/mlflow/users/permissions/...``) and the older per-resource permission endpoints."""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proj.auth.permissions import EXPERIMENT, REGISTERED_MODEL, permission, resource_type
from proj.auth.policy import Identity, identify
from proj.auth.store import AuthStore, Grant, User
from proj.errors import AlreadyExists, NotFound, UsageError
from proj.server.auth.guard import ServerAuth
from proj.server.auth.middleware import IDENTITY
from proj.server.protocol.errors import failure_response
from proj.server.protocol.validate import MAX_JSON_BYTES, capped_body, json_object

log = logging.getLogger("proj.auth")

Fields = dict[str, Any]
AuthHandler = Callable[[ServerAuth, Identity, Fields], dict[str, Any]]


def _field(fields: Fields, name: str, *, need: bool = True) -> str:
    value = fields.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or value == "":
        if need:
            raise UsageError(f"Missing value for required parameter '{name}'.")
        return ""
    return str(value)


def _flag(fields: Fields, name: str) -> bool:
    value = fields.get(name)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise UsageError(f"Invalid value {value!r} for parameter '{name}': true or false")


def _experiment_permission(grant: Grant) -> dict[str, Any]:
    return {"experiment_id": grant.resource_id, "user_id": grant.user_id, "permission": grant.permission}


def _model_permission(grant: Grant) -> dict[str, Any]:
    return {"name": grant.resource_id, "user_id": grant.user_id, "permission": grant.permission}


def _user_json(store: AuthStore, user: User) -> dict[str, Any]:
    """MLflow 3's user (id, username, is_admin) with MLflow 2's permission lists, which its client reads."""
    grants = store.grants_of(user.id)
    return {**user.to_json(),
            "experiment_permissions": [_experiment_permission(g) for g in grants if g.resource_type == EXPERIMENT],
            "registered_model_permissions": [_model_permission(g) for g in grants
                                             if g.resource_type == REGISTERED_MODEL]}


def _audit(auth: ServerAuth, ident: Identity, action: str, **what: Any) -> None:
    auth.store().audit(action, actor=ident.username, **what)


# ---- users ----

def create_user(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    username, password = _field(fields, "username", need=False), _field(fields, "password", need=False)
    if not username or not password:
        raise UsageError("Username and password cannot be empty.")
    store = auth.store()
    user = store.create_user(username, password)
    _audit(auth, ident, "user-create", target=username)
    return {"user": _user_json(store, user)}


def get_user(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    store = auth.store()
    return {"user": _user_json(store, store.get_user(_field(fields, "username")))}


def current_user(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    user = auth.store().get_user(ident.username)
    return {"user": user.to_json(), "is_basic_auth": True}


def list_users(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    return {"users": [{**u.to_json(), "roles": []} for u in auth.store().list_users()]}


def update_password(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    username, password = _field(fields, "username"), _field(fields, "password", need=False)
    store = auth.store()
    if username == ident.username:  # as MLflow 3: changing one's own password re-asserts the current one
        current = _field(fields, "current_password", need=False)
        if not current:
            raise UsageError("Current password is required when changing your own password.")
        if store.authenticate(username, current) is None:
            raise UsageError("Current password does not match.")
        if password == current:
            raise UsageError("New password must differ from the current password.")
    store.update_password(username, password)
    _audit(auth, ident, "update-password", target=username)
    return {}


def update_admin(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    username, is_admin = _field(fields, "username"), _flag(fields, "is_admin")
    auth.store().update_admin(username, is_admin)
    _audit(auth, ident, "update-admin", target=username, detail=f"is_admin={is_admin}")
    return {}


def delete_user(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    username = _field(fields, "username")
    if username == ident.username:
        raise UsageError("Users cannot delete their own account. Ask another admin to delete this user instead.")
    auth.store().delete_user(username)
    _audit(auth, ident, "user-delete", target=username)
    return {}


# ---- MLflow 3's per-user grants ----

def _grant(auth: ServerAuth, ident: Identity, username: str, kind: str, resource_id: str, level: str) -> Grant:
    found = auth.store().set_grant(username, kind, resource_id, level)
    _audit(auth, ident, "grant", target=username, resource_type=kind, resource_id=resource_id, permission=level)
    return found


def _revoke(auth: ServerAuth, ident: Identity, username: str, kind: str, resource_id: str) -> bool:
    removed = auth.store().delete_grant(username, kind, resource_id)
    _audit(auth, ident, "revoke", target=username, resource_type=kind, resource_id=resource_id)
    return removed


def grant_permission(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    kind = resource_type(_field(fields, "resource_type"))
    level = permission(_field(fields, "permission")).name
    _grant(auth, ident, _field(fields, "username"), kind, _field(fields, "resource_id"), level)
    return {}


def revoke_permission(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    kind = resource_type(_field(fields, "resource_type"))
    username = _field(fields, "username")
    auth.store().get_user(username)
    _revoke(auth, ident, username, kind, _field(fields, "resource_id"))
    return {}


def get_permission(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    """The effective permission a user has on a resource, as a request of theirs would see it."""
    kind = resource_type(_field(fields, "resource_type"))
    store = auth.store()
    target = identify(store, store.get_user(_field(fields, "username")))
    resource_id = _field(fields, "resource_id")
    found = auth.policy.experiment(target, resource_id) if kind == EXPERIMENT else \
        auth.model_permission(target, resource_id, auth.tracking())
    return {"allowed": found.rank >= 2, "permission": found.name}  # allowed: MLflow's can_use (USE and above)


def _permission_rows(store: AuthStore, user: User) -> dict[str, Any]:
    rows = [{"role_id": user.id, "role_name": f"__user_{user.id}__", "workspace": "default",
             "resource_type": g.resource_type, "resource_pattern": g.resource_id, "permission": g.permission}
            for g in store.grants_of(user.id)]
    return {"is_admin": user.is_admin, "permissions": rows}


def list_permissions(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    store = auth.store()
    return _permission_rows(store, store.get_user(_field(fields, "username")))


def current_permissions(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
    store = auth.store()
    return _permission_rows(store, store.get_user(ident.username))


# ---- MLflow 2's per-resource permission endpoints ----

def _legacy(kind: str, key: str, shape: Callable[[Grant], dict[str, Any]], answer: str,
            action: str) -> AuthHandler:
    label = "Experiment" if kind == EXPERIMENT else "Registered model"

    def handle(auth: ServerAuth, ident: Identity, fields: Fields) -> dict[str, Any]:
        resource_id, username = _field(fields, key), _field(fields, "username")
        store = auth.store()
        existing = store.get_grant(username, kind, resource_id)
        if action == "create":
            store.get_user(username)
            if existing is not None:
                raise AlreadyExists(f"{label} permission ({key}={resource_id}, username={username}) already exists")
            return {answer: shape(_grant(auth, ident, username, kind, resource_id,
                                         permission(_field(fields, "permission")).name))}
        if existing is None:
            store.get_user(username)
            raise NotFound(f"{label} permission with {key}={resource_id} and username={username} not found")
        if action == "get":
            return {answer: shape(existing)}
        if action == "update":
            _grant(auth, ident, username, kind, resource_id, permission(_field(fields, "permission")).name)
        else:
            _revoke(auth, ident, username, kind, resource_id)
        return {}

    return handle


# ---- HTTP ----

def _endpoint(handler: AuthHandler) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        auth: ServerAuth = request.app.state.auth
        ident: Identity = request.scope[IDENTITY]
        fields: Fields = dict(request.query_params)
        try:
            raw = await capped_body(request.stream(), request.headers.get("content-length"), MAX_JSON_BYTES,
                                    "the request body")
            fields.update(json_object(raw, request.headers.get("content-type", "")))
            result = await run_in_threadpool(handler, auth, ident, fields)
        except Exception as exc:  # noqa: BLE001 - MLflow's error JSON; an internal failure logged, never sent
            return failure_response(exc, request.method, request.url.path)
        return Response(orjson.dumps(result), media_type="application/json")

    return serve


def _both(version: str, path: str) -> list[str]:
    return [f"/api/{version}/mlflow{path}", f"/ajax-api/{version}/mlflow{path}"]


TABLE: list[tuple[str, str, str, AuthHandler]] = [
    ("2.0", "/users/create", "POST", create_user),
    ("2.0", "/users/get", "GET", get_user),
    ("2.0", "/users/current", "GET", current_user),
    ("2.0", "/users/list", "GET", list_users),
    ("2.0", "/users/update-password", "PATCH", update_password),
    ("2.0", "/users/update-admin", "PATCH", update_admin),
    ("2.0", "/users/delete", "DELETE", delete_user),
    ("3.0", "/users/permissions/grant", "POST", grant_permission),
    ("3.0", "/users/permissions/revoke", "POST", revoke_permission),
    ("3.0", "/users/permissions/get", "GET", get_permission),
    ("3.0", "/users/permissions/list", "GET", list_permissions),
    ("3.0", "/users/current/permissions", "GET", current_permissions),
]
for _kind, _key, _shape, _answer, _path in (
        (EXPERIMENT, "experiment_id", _experiment_permission, "experiment_permission", "/experiments/permissions"),
        (REGISTERED_MODEL, "name", _model_permission, "registered_model_permission",
         "/registered-models/permissions")):
    for _action, _method in (("create", "POST"), ("get", "GET"), ("update", "PATCH"), ("delete", "DELETE")):
        TABLE.append(("2.0", f"{_path}/{_action}", _method, _legacy(_kind, _key, _shape, _answer, _action)))


def routes() -> list[Route]:
    return [Route(path, _endpoint(handler), methods=[method])
            for version, sub, method, handler in TABLE for path in _both(version, sub)]
