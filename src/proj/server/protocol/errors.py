"""MLflow's error answers: ``{"error_code", "message"}`` with the HTTP status MLflow gives each code."""
from __future__ import annotations

import logging

import orjson
from starlette.responses import Response

from proj.errors import ProjError, StoreUnavailable

log = logging.getLogger("proj.server")

# mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS (the codes a tracking server answers with)
HTTP_STATUS = {
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_LIMIT_EXCEEDED": 413,  # a body over the server's limit (proj's; MLflow's server sets none)
    "CANCELLED": 499,
    "RESOURCE_EXHAUSTED": 429,
    "ABORTED": 409,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "PERMISSION_DENIED": 403,
    "CUSTOMER_UNAUTHORIZED": 401,
    "UNAUTHENTICATED": 401,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
}
# Seconds a client waits before it retries a TEMPORARILY_UNAVAILABLE answer (the store's database restarting).
# MLflow's client (urllib3's Retry, respect_retry_after_header) sleeps this instead of its exponential backoff:
# 7 retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES) of 2 s ride out an outage of about 14 s.
RETRY_AFTER_SECONDS = 2


class ApiError(ProjError):
    """A protocol-level failure with an explicit MLflow error code (unknown endpoint, a bad request)."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def status_of(error_code: str) -> int:
    return HTTP_STATUS.get(error_code, 500)


def error_response(error_code: str, message: str, status: int | None = None) -> Response:
    """MLflow's error JSON, with the status MLflow gives the code (``status`` when HTTP's own differs: 405); a
    503 says when to retry."""
    body = orjson.dumps({"error_code": error_code, "message": message})
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if error_code == "TEMPORARILY_UNAVAILABLE" else None
    return Response(body, status_code=status or status_of(error_code), headers=headers, media_type="application/json")


def from_exception(exc: ProjError) -> Response:
    """The answer for a user-facing failure: its MLflow code, and its one-line message."""
    return error_response(exc.error_code, str(exc))


def failure_response(exc: Exception, method: str, path: str) -> Response:
    """The answer to a handler's failure: a user-facing one as MLflow's error JSON; an internal one logged here with
    its traceback (for ``method`` ``path``) and never sent to the client."""
    if isinstance(exc, StoreUnavailable):  # the database restarting: one line for the operator, a 503 to retry
        log.warning("%s %s: %s", method, path, exc)
    if isinstance(exc, ProjError):
        return from_exception(exc)
    if isinstance(exc, NotImplementedError):
        return error_response("NOT_IMPLEMENTED", str(exc))
    log.error("internal error in %s %s", method, path, exc_info=exc)
    return error_response("INTERNAL_ERROR", "Internal server error (see the server's log)")
