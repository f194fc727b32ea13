"""Request fields checked as `mlflow server` checks them: required fields, types, MLflow's limits and messages
(mlflow.utils.validation), each failure a one-line INVALID_PARAMETER_VALUE."""
from __future__ import annotations

import json
import logging
import math
import os
import posixpath
import re
from typing import Any, AsyncIterator, Iterable

import orjson

from proj.errors import TooLarge, UsageError

log = logging.getLogger("proj.server")

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_LOG_REQUEST_SIZE = 1_000_000
MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_SEARCH_RESULTS = 50000
MAX_RUNS_BULK_HISTORY = 100
MAX_RESULTS_PER_RUN = 2500

_API_DOCS = " See the API docs for more information about request parameters."
_NAME = re.compile(r"^[/\w.\- :]*$")
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_BAD_CHARACTERS = ("Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), "
                   "colon(:) and slashes (/).")
_INT64 = (-(2**63), 2**63 - 1)


class QueryArgs(dict[str, Any]):
    """A GET request's query parameters: a key given once is a string, one given several times a list."""


def query_args(pairs: Iterable[tuple[str, str]]) -> QueryArgs:
    """The query's (key, value) pairs as QueryArgs (the app's handlers and the auth middleware read them alike)."""
    args = QueryArgs()
    for key, value in pairs:
        if key in args:
            previous = args[key]
            args[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            args[key] = value
    return args


# A JSON request body's limit: MLflow's largest (a log-batch of 1000 metrics, 100 params of 6,000 characters and
# 100 tags of 8,000; a dataset's schema and profile) is a few MiB; a bigger one is refused before it is read whole.
MAX_JSON_BYTES = 32 << 20


# A refused body is still read (and dropped) up to this much, so that a client sending it whole sees the 413
# instead of a reset connection; past it the connection is closed on it.
DRAIN_BYTES = 64 << 20


async def drain(chunks: AsyncIterator[bytes], declared: str | None = None) -> None:
    """Read and drop the rest of a refused body, up to DRAIN_BYTES (none when it announced more)."""
    if declared is not None and declared.isdigit() and int(declared) > DRAIN_BYTES:
        return
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > DRAIN_BYTES:
            return


async def capped_body(chunks: AsyncIterator[bytes], declared: str | None, limit: int, what: str) -> bytes:
    """A request's body, refused (TooLarge) once it says or proves to be over ``limit`` bytes: none of the rest
    is kept (it is drained, see DRAIN_BYTES)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        await drain(chunks, declared)
        raise TooLarge(f"{what} of {int(declared):,} bytes is over this server's limit of {limit:,} bytes")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            body.clear()
            await drain(chunks)
            raise TooLarge(f"{what} is over this server's limit of {limit:,} bytes")
    return bytes(body)


def json_object(raw: bytes, content_type: str) -> dict[str, Any]:
    """A request body as MLflow's server reads it: empty is {}; else JSON (a Content-Type, when sent, must be
    application/json), an object, double-encoded JSON from older clients decoded again."""
    kind = content_type.split(";")[0].strip().lower()
    if raw and kind and kind != "application/json":
        raise UsageError("Bad Request. Content-Type must be one of ['application/json'].")
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
        if isinstance(data, str):
            data = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"Malformed JSON in the request body: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"The request body must be a JSON object, got {type(data).__name__}")
    return data


def invalid_value(path: str, value: Any, message: str | None = None) -> str:
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return f"Invalid value {shown} for parameter '{path}' supplied" + (f": {message}" if message else ".")


def missing(path: str) -> UsageError:
    return UsageError(f"Missing value for required parameter '{path}'.{_API_DOCS}")


def _type_error(path: str, value: Any) -> UsageError:
    return UsageError(invalid_value(path, value, f" Hint: Value was of type '{type(value).__name__}'.") + _API_DOCS)


def required(body: dict[str, Any], key: str, path: str | None = None) -> Any:
    value = body.get(key)
    if value is None or value == "":
        raise missing(path or key)
    return value


def string(body: dict[str, Any], key: str, *, need: bool = False, path: str | None = None) -> str | None:
    value = required(body, key, path) if need else body.get(key)
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 1:  # a query parameter given once more than expected
        value = value[0]
    if not isinstance(value, str):
        raise _type_error(path or key, value)
    return value


def integer(body: dict[str, Any], key: str, default: int | None = None, *, path: str | None = None) -> int | None:
    """An int64 field: JSON numbers, or the decimal strings query parameters and protobuf's JSON carry."""
    value = body.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise _type_error(path or key, value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise _type_error(path or key, value) from None
    if not isinstance(value, int) or not _INT64[0] <= value <= _INT64[1]:
        raise _type_error(path or key, value)
    return value


def double(value: Any, path: str, context: str = "") -> float:
    """A metric value: a JSON number, or "NaN"/"Infinity"/"-Infinity" as protobuf's JSON writes them."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            parsed = None
        if parsed is not None and (math.isfinite(parsed) or value in ("NaN", "Infinity", "-Infinity")):
            return parsed
    raise UsageError(invalid_value(path, value, f"{context}Please specify value as a valid double "
                                                f"(64-bit floating point)"))


def array(body: dict[str, Any], key: str, *, path: str | None = None) -> list[Any]:
    """A repeated field: a JSON list, or a query parameter given once or several times."""
    value = body.get(key)
    if value is None:
        return []
    if isinstance(value, str) and isinstance(body, QueryArgs):  # a repeated query parameter given once
        return [value]
    if not isinstance(value, list):
        raise _type_error(path or key, value)
    return value


def boolean(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise UsageError(f"Invalid boolean value: {value}, must be 'true' or 'false'.")
    return value


def objects(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = array(body, key)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _type_error(f"{key}[{index}]", item)
    return items


def run_id(body: dict[str, Any]) -> str:
    """``run_id``, or the deprecated ``run_uuid`` older clients send."""
    value = body.get("run_id") or body.get("run_uuid")
    if value is None or value == "":
        raise missing("run_id")
    if not isinstance(value, str):
        raise _type_error("run_id", value)
    return value


def check_run_id(value: str, path: str = "run_id") -> str:
    if not _RUN_ID.match(value):
        raise UsageError(invalid_value(path, value))
    return value


def _path_not_unique(name: str) -> bool:
    norm = posixpath.normpath(name)
    return norm != name or norm == "." or norm.startswith("..") or norm.startswith("/")


def name(value: Any, path: str, what: str = "key") -> str:
    """A metric, param or tag key: MLflow's characters, no path tricks, at most 250 characters."""
    if value is None or value == "":
        raise missing(path)
    if not isinstance(value, str):
        raise _type_error(path, value)
    if not _NAME.match(value):
        raise UsageError(invalid_value(path, value, _BAD_CHARACTERS))
    if _path_not_unique(value):
        raise UsageError(invalid_value(path, value, "Names may be treated as files in certain cases, and must "
                                                    "not resolve to other names when treated as such. This name "
                                                    f"would resolve to {posixpath.normpath(value)!r}"))
    length(what, MAX_ENTITY_KEY_LENGTH, value)
    return value


def length(path: str, limit: int, value: str | None) -> None:
    if value is not None and len(value) > limit:
        raise UsageError(f"'{path}' exceeds the maximum length of {limit} characters")


def text(value: Any, path: str, limit: int, *, cut: bool = False) -> str:
    """A param or tag value (an absent one is the empty string, as protobuf reads it). ``cut``: a run's param
    or tag, which MLflow cuts to the limit instead of refusing (its other tags it refuses)."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # older clients send numbers unquoted; protobuf's parser refuses, MLflow coerces
    if not isinstance(value, str):
        raise _type_error(path, value)
    if cut and len(value) > limit and _truncate_long_values():
        # MLflow's server cuts an over-long param or tag value (MLFLOW_TRUNCATE_LONG_VALUES, on by default) so
        # that autologging of long configs never fails a run; the cut is logged, and the limit still holds.
        log.warning("%s '%s...' (%d characters) is truncated to %d characters to meet the length limit",
                    path, value[:100], len(value), limit)
        return value[:limit]
    length(path, limit, value)
    return value


def _truncate_long_values() -> bool:
    """MLflow's own switch, read as MLflow reads booleans: off only when set to false or 0."""
    return os.environ.get("MLFLOW_TRUNCATE_LONG_VALUES", "true").strip().lower() not in ("false", "0")


def batch_limit(entity: str, limit: int, count: int) -> None:
    if count > limit:
        raise UsageError(f"A batch logging request can contain at most {limit} {entity}. Got {count} {entity}. "
                         f"Please split up {entity} across multiple requests and try again.")


def batch_limits(metrics: int, params: int, tags: int) -> None:
    batch_limit("metrics", MAX_METRICS_PER_BATCH, metrics)
    batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, params)
    batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, tags)
    batch_limit("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, metrics + params + tags)


def request_size(size: int) -> None:
    if size > MAX_BATCH_LOG_REQUEST_SIZE:
        raise UsageError(f"Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} bytes, got a "
                         f"request of size {size}.")


def max_results(body: dict[str, Any], default: int, limit: int = MAX_SEARCH_RESULTS) -> int:
    value = integer(body, "max_results", default)
    assert value is not None
    if value > limit:
        raise UsageError(invalid_value("max_results", value, f"It must be at most {limit}.") + _API_DOCS)
    if value <= 0:
        raise UsageError(f"Invalid value {value} for parameter 'max_results' supplied. It must be a positive "
                         f"integer.")
    return value


def experiment_name(value: Any) -> str:
    if value is None or value == "":
        raise UsageError("Invalid experiment name: ''")
    if not isinstance(value, str):
        raise UsageError(f"Invalid experiment name: {value}. Expects a string.")
    length("name", MAX_EXPERIMENT_NAME_LENGTH, value)
    return value


def key_values(items: list[dict[str, Any]], path: str, limit: int, *, need_value: bool = False,
               cut: bool = False) -> dict[str, str]:
    """``[{"key", "value"}]`` (tags, params) as a dict, each key and value checked."""
    out: dict[str, str] = {}
    for index, item in enumerate(items):
        key = name(item.get("key"), f"{path}[{index}].key")
        if need_value and item.get("value") is None:
            raise missing(f"{path}[{index}].value")
        out[key] = text(item.get("value"), f"{path}[{index}].value", limit, cut=cut)
    return out
