"""The UI's own read endpoints under ``/ajax-api/2.0/proj/`` (and ``/api/2.0/proj/`` for scripts): JSON
answers, MLflow's error JSON, handlers run in the thread pool with the thread's own store."""
from __future__ import annotations

import logging
from typing import AsyncIterator, Awaitable, Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from proj.errors import ProjError
from proj.server.protocol.errors import error_response, failure_response
from proj.server.protocol.validate import query_args
from proj.server.state import ServerState
from proj.server.ui import previews, record, sampling, table
from proj.server.ui.call import JsonDict, UiCall

log = logging.getLogger("proj.server")

PREFIXES = ("/ajax-api/2.0/proj", "/api/2.0/proj")
UiHandler = Callable[[UiCall], JsonDict]
Endpoint = Callable[[Request], Awaitable[Response]]


def _call(request: Request) -> UiCall:
    # app.endpoint's reading of a GET, with the server's state too: the preview needs the artifact places.
    state: ServerState = request.app.state.tracking
    return UiCall(query_args(request.query_params.multi_items()), state)


def _failure(request: Request, exc: Exception) -> Response:
    """app.endpoint's answer (protocol.errors.failure_response), and a file the UI could not read said in one line."""
    if isinstance(exc, OSError) and not isinstance(exc, ProjError):
        log.exception("reading failed in %s %s", request.method, request.url.path)
        return error_response("INTERNAL_ERROR", f"reading failed: {exc.strerror or type(exc).__name__}")
    return failure_response(exc, request.method, request.url.path)


def endpoint(handler: UiHandler) -> Endpoint:
    async def serve(request: Request) -> Response:
        try:
            result = await run_in_threadpool(handler, _call(request))
        except Exception as exc:  # noqa: BLE001 - answered as MLflow's error JSON (see _failure)
            return _failure(request, exc)
        return Response(orjson.dumps(result), media_type="application/json")

    return serve


async def export_csv(request: Request) -> Response:
    """``runs/export.csv``: the runs table as CSV, streamed a page at a time (each page read in the thread pool
    with that thread's store); the parameters are checked before the first byte, so a bad one is JSON."""
    call = _call(request)
    try:
        q, cols, order = await run_in_threadpool(lambda: (table.query(call), table.columns(call), table.orders(call)))
        first = await run_in_threadpool(table.csv_page, call, q, cols, order, 0)
    except Exception as exc:  # noqa: BLE001 - answered as MLflow's error JSON
        return _failure(request, exc)

    async def body() -> AsyncIterator[bytes]:
        yield table.header_bytes(cols)
        data, count = first
        offset = 0
        while True:
            yield data
            if count < table.EXPORT_PAGE:
                return
            offset += table.EXPORT_PAGE
            data, count = await run_in_threadpool(table.csv_page, call, q, cols, order, offset)

    return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="runs.csv"'})


ENDPOINTS: list[tuple[str, UiHandler]] = [
    ("/runs/table", table.runs_table),
    ("/runs/keys", table.run_keys),
    ("/runs/groups", table.run_groups),
    ("/metrics/sampled", sampling.sampled),
    ("/runs/record", record.record),
    ("/runs/log", record.log),
    ("/runs/patch", record.patch),
    ("/artifacts/preview", previews.preview),
    ("/runs/compare", record.compare),
    ("/registry/history", record.registry_history),
    ("/registry/lineage", record.registry_lineage),
    ("/experiments/summary", record.experiments_summary),
]


def routes() -> list[BaseRoute]:
    table_: list[BaseRoute] = []
    for prefix in PREFIXES:
        table_ += [Route(prefix + path, endpoint(handler), methods=["GET"]) for path, handler in ENDPOINTS]
        table_.append(Route(prefix + "/runs/export.csv", export_csv, methods=["GET"]))
    return table_
