"""The ASGI app: MLflow's tracking endpoints over the run store, /health, /version, server-info, artifacts."""
from __future__ import annotations

import logging
import os
from typing import Any, Awaitable, Callable

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from proj import __version__
from proj.auth.open import open_auth_store
from proj.auth.permissions import permission
from proj.auth.ratelimit import MAX_FAILURES, FailedLogins
from proj.server.auth import endpoints as auth_endpoints
from proj.server.auth.guard import ServerAuth
from proj.server.auth.middleware import AuthMiddleware
from proj.server.object_store import destination as parse_destination
from proj.server.protocol.call import Call, Handler, JsonDict
from proj.server.protocol.errors import error_response, failure_response
from proj.server.protocol.validate import MAX_JSON_BYTES, capped_body, json_object, query_args
from proj.server.routes import API_PREFIXES, ENDPOINTS
from proj.server.state import DEFAULT_MAX_ARTIFACT_BYTES, ServerState
from proj.server.ui.routes import routes as ui_routes

try:  # helper C's artifact routes (mlflow-artifacts); the tracking API works without them
    from proj.server.artifacts import routes as artifact_routes
except ImportError:  # pragma: no cover - only while the artifacts module is not there
    artifact_routes = []

log = logging.getLogger("proj.server")

# Environment variables serve.py sets for worker processes (uvicorn imports create_app in each of them)
ENV_STORE = "PROJ_SERVER_STORE_URI"
ENV_ARTIFACTS = "PROJ_SERVER_ARTIFACTS_DESTINATION"
ENV_MAX_ARTIFACT = "PROJ_SERVER_MAX_ARTIFACT_BYTES"  # --max-artifact-size, for the worker processes
ENV_AUTH = "PROJ_SERVER_AUTH"  # set: --auth is on, "<default permission>:<failed logins a minute>"

_JSON = "application/json"
Endpoint = Callable[[Request], Awaitable[Response]]


def _json_response(payload: JsonDict) -> Response:
    return Response(orjson.dumps(payload), media_type=_JSON)


async def _body(request: Request) -> tuple[dict[str, Any], int]:
    """The JSON body as MLflow's server reads it (double-encoded JSON from older clients decoded again)."""
    raw = await capped_body(request.stream(), request.headers.get("content-length"), MAX_JSON_BYTES, "the request body")
    return json_object(raw, request.headers.get("content-type", "")), len(raw)


def endpoint(handler: Handler) -> Endpoint:
    """An HTTP endpoint around a sync handler: parse the request, run the handler in the thread pool (the
    store is sync, one connection per thread), answer JSON or MLflow's error JSON."""

    async def serve(request: Request) -> Response:
        state: ServerState = request.app.state.tracking
        body: dict[str, Any]
        try:
            if request.method == "GET":
                body, size = query_args(request.query_params.multi_items()), 0
            else:
                body, size = await _body(request)
            result = await run_in_threadpool(_invoke, handler, state, body, dict(request.path_params), size)
        except Exception as exc:  # noqa: BLE001 - MLflow's error JSON; an internal failure logged, never sent
            return failure_response(exc, request.method, request.url.path)
        return _json_response(result)

    return serve


def _invoke(handler: Handler, state: ServerState, body: dict[str, Any], path: dict[str, str], size: int) -> JsonDict:
    return handler(Call(body=body, store=state.store(), path=path, size=size, artifacts_root=state.artifacts_root))


async def health(request: Request) -> Response:
    return PlainTextResponse("OK")


async def version(request: Request) -> Response:
    return PlainTextResponse(__version__)


async def server_info(request: Request) -> Response:
    # What MLflow 3 clients read: no multipart or presigned uploads (they use plain PUTs), no workspaces.
    return _json_response({
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    })


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if status == 405:
        # 405 as mlflow server answers it, with MLflow's JSON error instead of its HTML page
        return error_response("ENDPOINT_NOT_FOUND", f"{request.method} is not allowed for {request.url.path}", 405)
    return error_response("ENDPOINT_NOT_FOUND", f"No API endpoint {request.method} {request.url.path}")


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = [Route("/health", health, methods=["GET"]), Route("/version", version, methods=["GET"])]
    for prefix in ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow"):
        table.append(Route(f"{prefix}/server-info", server_info, methods=["GET"]))
    for prefix in API_PREFIXES:
        for path, methods, handler in ENDPOINTS:
            table.append(Route(prefix + path, endpoint(handler), methods=list(methods)))
    table.extend(artifact_routes)
    table.extend(ui_routes())  # the web UI at /: its page, static files and read endpoints
    return table


def server_auth(state: ServerState, default_permission: str, failed_logins: int = MAX_FAILURES) -> ServerAuth:
    """``--auth``: the auth store (in a PostgreSQL store's database, else auth.db beside the run store; created
    and migrated now) and its policy; the audit entries are also logged, one line each, on the server's stderr."""
    audit_log = logging.getLogger("proj.auth")
    if not audit_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s %(message)s"))
        audit_log.addHandler(handler)
        audit_log.setLevel(logging.INFO)
    level = permission(default_permission, what="default permission")
    return ServerAuth(open_auth_store(state.store_uri, state.store_root), level, state.store,
                      FailedLogins(failed_logins))


def build_app(state: ServerState, auth: ServerAuth | None = None) -> Starlette:
    """The app; with ``auth`` every request but /health, /version, server-info and the UI's page and static
    files is authenticated and checked against its route's rule (server.auth.rules) before its handler runs."""
    table = routes()
    middleware: list[Middleware] = []
    if auth is not None:
        table[:0] = auth_endpoints.routes()
        middleware.append(Middleware(AuthMiddleware, auth=auth))
    app = Starlette(routes=table, middleware=middleware, exception_handlers={404: _not_found, 405: _not_found})
    app.state.tracking = state
    app.state.auth = auth
    return app


def create_app() -> Starlette:
    """The factory uvicorn's worker processes call (``proj.server.app:create_app``): config from the
    environment serve.py set."""
    destination = os.environ.get(ENV_ARTIFACTS)
    limit = os.environ.get(ENV_MAX_ARTIFACT)
    state = ServerState(os.environ.get(ENV_STORE) or None, parse_destination(destination) if destination else None,
                        int(limit) if limit else DEFAULT_MAX_ARTIFACT_BYTES)
    default, _, failed = (os.environ.get(ENV_AUTH) or "").partition(":")
    return build_app(state, server_auth(state, default, int(failed or MAX_FAILURES)) if default else None)
