"""server.app.endpoint, driven over raw ASGI: a handler's ProjError is MLflow's error JSON; an unexpected
failure is INTERNAL_ERROR 500 with no traceback in the answer (it goes to the server's log instead)."""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from proj.errors import NotFound
from proj.server.app import endpoint
from proj.server.protocol.call import Call, JsonDict
from proj.server.state import ServerState


def _boom(call: Call) -> JsonDict:
    raise KeyError("secret internal detail")


def _missing(call: Call) -> JsonDict:
    raise NotFound("No Experiment with id=9 exists")


def _echo(call: Call) -> JsonDict:
    return {"body": call.body, "path": call.path, "size": call.size}


def _request(app: Starlette, method: str, path: str, body: bytes = b"", query: bytes = b"") -> tuple[int, Any]:
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": query, "root_path": "", "scheme": "http",
             "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80)}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload)


@pytest.fixture
def app(tmp_path: Path) -> Starlette:
    application = Starlette(routes=[Route("/boom", endpoint(_boom), methods=["POST"]),
                                    Route("/missing", endpoint(_missing), methods=["GET"]),
                                    Route("/echo/{model_id}", endpoint(_echo), methods=["GET", "POST"])])
    application.state.tracking = ServerState(str(tmp_path / "store"))
    return application


def test_internal_error_has_no_traceback(app: Starlette, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="proj.server"):
        status, body = _request(app, "POST", "/boom", b"{}")
    assert status == 500 and body["error_code"] == "INTERNAL_ERROR"
    assert "secret" not in body["message"] and "Traceback" not in body["message"]
    assert "secret internal detail" in caplog.text  # logged on the server, with its traceback


def test_proj_error_is_mlflow_error_json(app: Starlette) -> None:
    assert _request(app, "GET", "/missing") == (404, {"error_code": "RESOURCE_DOES_NOT_EXIST",
                                                      "message": "No Experiment with id=9 exists"})


def test_query_and_body_and_path_parameters(app: Starlette) -> None:
    status, got = _request(app, "GET", "/echo/m-1", query=b"run_ids=a&run_ids=b&metric_key=loss")
    assert status == 200 and got == {"body": {"run_ids": ["a", "b"], "metric_key": "loss"},
                                     "path": {"model_id": "m-1"}, "size": 0}
    status, got = _request(app, "POST", "/echo/m-2", b'"{\\"a\\": 1}"')  # double-encoded JSON (older clients)
    assert status == 200 and got["body"] == {"a": 1} and got["size"] == 12
