"""The ASGI middleware of ``proj server --auth``: every request but the open ones authenticated (HTTP Basic or
a Bearer API token), its route's rule checked before the handler runs, searches narrowed, answers filtered."""
from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Awaitable, Callable, MutableMapping
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match

from proj.auth.policy import Identity
from proj.errors import ProjError, TooLarge, UsageError
from proj.server.auth import rules as r
from proj.server.auth.guard import Denied, ServerAuth, Verdict
from proj.server.protocol.errors import status_of
from proj.server.protocol.validate import MAX_JSON_BYTES, capped_body, json_object, query_args
from proj.server.state import ServerState

log = logging.getLogger("proj.auth")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REALM = 'Basic realm="mlflow"'
UNAUTHENTICATED = ("You are not authenticated. Please see "
                   "https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow on how to authenticate.")
IDENTITY = "proj.auth.identity"  # where a handler finds the caller: request.scope[IDENTITY]
_STREAMED = {"PUT"}  # artifact uploads: the permission comes from the path, the body is streamed to disk


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """An ASGI request's body, a message at a time."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _error(send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    body = orjson.dumps({"error_code": code, "message": message})
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class AuthMiddleware:
    def __init__(self, app: ASGIApp, auth: ServerAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or r.is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        method, path = scope["method"].upper(), scope["path"]
        wait = self.auth.limiter.retry_after(client)
        if wait is not None:
            await self._audit("rate-limited", None, client, detail=f"{method} {path}")
            await _error(send, 429, "REQUEST_LIMIT_EXCEEDED",
                         f"Too many failed logins from {client}; try again in {wait} s", {"Retry-After": str(wait)})
            return
        header = _header(scope, b"authorization")
        ident = await run_in_threadpool(self.auth.authenticate, header) if header else None
        if ident is None:
            if header:
                self.auth.limiter.failed(client)
            await self._audit("unauthenticated", None, client,
                              detail=f"{method} {path}: {'wrong credentials' if header else 'no credentials'}")
            await _error(send, 401, "UNAUTHENTICATED", UNAUTHENTICATED, {"WWW-Authenticate": REALM})
            return
        scope[IDENTITY] = ident
        template, params = self._route(scope)
        if template is None:  # no such endpoint: the app answers 404/405 (nothing to protect)
            await self.app(scope, receive, send)
            return
        rule = r.rule_for(template, method) or r.NO_RULE
        original = receive
        try:
            body, receive = await self._body(scope, receive, method)
        except TooLarge as exc:  # before any of it is checked or kept: the app's own limit, answered here
            await _error(send, 413, exc.error_code, str(exc))
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        fields: dict[str, Any] = {**query_args(query), **body, **params}
        state: ServerState = scope["app"].state.tracking
        try:
            verdict: Verdict = await run_in_threadpool(
                lambda: self.auth.check(ident, rule, template, method, fields, state.store()))
        except Denied as exc:
            resource = exc.resource or (None, None)
            await self._audit("denied", ident.username, client, resource_type=resource[0], resource_id=resource[1],
                              permission=exc.need.name if exc.need else None,
                              detail=f"{method} {path}: needs {exc}")
            await _error(send, 403, "PERMISSION_DENIED", f"Permission denied: {method} {path} needs {exc}")
            return
        except ProjError as exc:
            await _error(send, status_of(exc.error_code), exc.error_code, str(exc))
            return
        if verdict.answer is not None:
            payload = orjson.dumps(verdict.answer)
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        if verdict.narrow is not None:
            scope, receive = self._narrowed(scope, body, verdict.narrow, rule.field or "experiment_ids", original)
        acts = rule.then in (r.GRANT_CREATOR, r.RENAME_MODEL)  # for admins too
        filters = rule.kind == r.FILTERED or (rule.then or "").startswith("filter:")
        if not acts and (not filters or ident.is_admin):
            await self.app(scope, receive, send)
            return
        await self._answer_through(scope, receive, send, ident, rule, template, fields, state)

    def _route(self, scope: Scope) -> tuple[str | None, dict[str, Any]]:
        for route in scope["app"].router.routes:
            match, child = route.matches(scope)
            if match == Match.FULL:
                return getattr(route, "path", None), dict(child.get("path_params", {}))
        for route in scope["app"].router.routes:  # right path, other method: the app answers 405
            match, child = route.matches(scope)
            if match == Match.PARTIAL:
                return None, {}
        return None, {}

    @staticmethod
    async def _body(scope: Scope, receive: Receive, method: str) -> tuple[dict[str, Any], Receive]:
        """The JSON body's fields, and a receive that gives the handler the same body again."""
        if method in ("GET", "HEAD") or method in _STREAMED:
            return {}, receive
        declared = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"content-length"), None)
        raw = await capped_body(_chunks(receive), declared, MAX_JSON_BYTES, "the request body")
        try:
            fields = json_object(raw, "")
        except UsageError:
            fields = {}  # the handler refuses it with MLflow's message
        return fields, _replay(raw, receive)

    @staticmethod
    def _narrowed(scope: Scope, body: dict[str, Any], keep: list[str], field: str,
                  receive: Receive) -> tuple[Scope, Receive]:
        """The request with only ``keep`` as its experiment ids (in the query of a GET, else the JSON body)."""
        scope = dict(scope)
        if scope["method"].upper() == "GET":
            pairs = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                                  keep_blank_values=True) if k != field]
            scope["query_string"] = urlencode([*pairs, *((field, e) for e in keep)]).encode("latin-1")
            return scope, receive
        raw = orjson.dumps({**body, field: keep})
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        scope["headers"].append((b"content-length", str(len(raw)).encode()))
        return scope, _replay(raw, receive)

    async def _answer_through(self, scope: Scope, receive: Receive, send: Send, ident: Identity, rule: r.Rule,
                              template: str, fields: dict[str, Any], state: ServerState) -> None:
        """Run the handler, keep its answer, filter it (a search) or act on it (a creator's grant), send it."""
        start: Message = {}
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, keep)
        body = b"".join(chunks)
        if start.get("status") == 200:
            try:
                body = await run_in_threadpool(self._after, ident, rule, template, fields, body, state)
            except Denied as exc:
                await self._audit("denied", ident.username, (scope.get("client") or ("unknown",))[0],
                                  detail=f"{scope['method']} {scope['path']}: needs {exc}")
                await _error(send, 403, "PERMISSION_DENIED", f"Permission denied: needs {exc}")
                return
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _after(self, ident: Identity, rule: r.Rule, template: str, fields: dict[str, Any], body: bytes,
               state: ServerState) -> bytes:
        answer = orjson.loads(body) if body else {}
        if not isinstance(answer, dict):
            return body
        if rule.kind == r.FILTERED and rule.field:
            return orjson.dumps(self.auth.filter_answer(ident, rule.field, answer, state.store()))
        if rule.then and rule.then.startswith("filter:"):
            return orjson.dumps(self.auth.filter_answer(ident, rule.then[len("filter:"):], answer, state.store()))
        self.auth.after(ident, rule, template, fields, answer)
        return body

    async def _audit(self, action: str, actor: str | None, client: str, **what: Any) -> None:
        try:
            await run_in_threadpool(lambda: self.auth.store().audit(action, actor=actor, client=client, **what))
        except Exception:  # the refusal stands even if its audit row cannot be written; say so in the log
            log.exception("cannot write the audit entry for %s by %s", action, actor)


def _replay(raw: bytes, receive: Receive) -> Receive:
    """A receive that gives ``raw`` as the whole body, then waits on the client (a disconnect) as before."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return again


