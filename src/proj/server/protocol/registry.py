"""MLflow's model-registry endpoints (registered models, versions, stages, aliases, tags) over the run store."""
from __future__ import annotations

import posixpath
import re
from typing import Any
from urllib.parse import unquote_plus, urlparse

from proj.errors import NotFound, UsageError
from proj.registry import service
from proj.registry.rules import check_alias
from proj.registry.service import current_user
from proj.registry.uris import is_model_uri, parse, resolve_version
from proj.server.artifact_paths import REGISTRY_ROOT
from proj.server.protocol import json as mj
from proj.server.protocol import validate as v
from proj.server.protocol.call import Call, JsonDict
from proj.tracking.records import LoggedModelRecord, RunRecord
from proj.tracking.registry_records import ModelVersionRecord, RegisteredModelRecord

MAX_TAG_VALUE_LENGTH = 100_000  # mlflow.utils.validation.MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
MAX_ALIAS_LENGTH = 255
MAX_SEARCH_MODELS = 1000  # the server's own cap on registered-models/search
MAX_SEARCH_VERSIONS = 200_000
_ALIAS = re.compile(r"^[\w\-]*$")
_BAD_ALIAS = ("Names may only contain alphanumerics, underscores (_), and dashes (-).")


# ---- the JSON mapping (`mlflow server`'s, field by field: versions as strings, times in ms; a version's
# description, run_id and run_link are "" when unset, as its handler stores the request's defaults) ----

def _compact(data: JsonDict) -> JsonDict:
    return {k: value for k, value in data.items() if value is not None and value != []}


def _pairs(items: dict[str, str]) -> list[JsonDict]:
    return [{"key": k, "value": value} for k, value in items.items()]


def model_version(mv: ModelVersionRecord, *, aliases: bool = True) -> JsonDict:
    """A version as `mlflow server` answers it. ``aliases=False`` where MLflow leaves them out (searches and a
    registered model's latest_versions); model_id and storage_location are not in MLflow's answer either."""
    return _compact({
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mj.ms(mv.creation_time),
        "last_updated_timestamp": mj.ms(mv.last_updated_time),
        "user_id": None,  # MLflow's registry never fills it (proj keeps who in the history)
        "current_stage": mv.current_stage,
        "description": mv.description or "",
        "source": mv.source,
        "run_id": mv.run_id or "",
        "status": mv.status,
        "status_message": mv.status_message or None,
        "tags": _pairs(mv.tags),
        "run_link": mv.run_link or "",
        "aliases": list(mv.aliases) if aliases else [],
    })


def registered_model(rm: RegisteredModelRecord) -> JsonDict:
    return _compact({
        "name": rm.name,
        "creation_timestamp": mj.ms(rm.creation_time),
        "last_updated_timestamp": mj.ms(rm.last_updated_time) or None,
        "description": rm.description or None,
        "latest_versions": [model_version(mv, aliases=False) for mv in rm.latest_versions],
        "tags": _pairs(rm.tags),
        "aliases": [{"alias": alias, "version": str(version)} for alias, version in rm.aliases.items()],
    })


# ---- request fields, checked with MLflow's messages ----

def _required_string(body: dict[str, Any], key: str) -> str:
    value = v.string(body, key, need=True)
    assert value is not None
    return value


def model_name(value: str, path: str = "name") -> str:
    """mlflow.utils.validation._validate_model_name: not blank, no '/' or ':', no path tricks."""
    if not value.strip():
        raise v.missing(path)
    if "/" in value or ":" in value:
        raise UsageError(f"Invalid model name '{value}'. Names cannot contain '/' or ':'.")
    normal = posixpath.normpath(value)
    if normal != value or normal == "." or normal.startswith(".."):
        raise UsageError(v.invalid_value(path, value, "Names may be treated as files in certain cases, and must not "
                                                      "resolve to other names when treated as such. This name would "
                                                      f"resolve to {normal!r}"))
    return value


def _name(call: Call) -> str:
    return model_name(_required_string(call.body, "name"))


def _version(call: Call) -> int:
    raw = v.required(call.body, "version")
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    try:
        return int(str(raw).strip())
    except ValueError:
        raise UsageError(f"Parameter 'version' must be an integer, got '{raw}'.") from None


def _tags(call: Call) -> dict[str, str]:
    return v.key_values(v.objects(call.body, "tags"), "tags", MAX_TAG_VALUE_LENGTH)


def _key(call: Call) -> str:
    return v.name(call.body.get("key"), "key")


def alias_name(value: str) -> str:
    """An alias as MLflow reads one (``^[\\w-]+$``, at most 255 characters); setting one also refuses the
    reserved ``latest`` and ``v<digits>`` (proj.registry.rules.check_alias)."""
    if not value:
        raise UsageError("Registered model alias name cannot be empty.")
    if not _ALIAS.match(value):
        raise UsageError(f"Invalid alias name: '{value}'. {_BAD_ALIAS}")
    v.length("Registered model alias name", MAX_ALIAS_LENGTH, value)
    return value


def _reason(call: Call) -> str | None:
    """proj's addition: an optional ``reason`` in the request body, recorded with the change's event (and needed
    to move a protected alias or stage)."""
    return v.string(call.body, "reason") or None


def _paged(key: str, items: list[JsonDict], token: str | None) -> JsonDict:
    out: JsonDict = {key: items} if items else {}
    if token:
        out["next_page_token"] = token
    return out


# ---- registered models ----

def create_model(call: Call) -> JsonDict:
    body = call.body
    name = _name(call)
    model = call.store.create_registered_model(name, description=v.string(body, "description") or None,
                                               tags=_tags(call), user=current_user(), reason=_reason(call))
    return {"registered_model": registered_model(model)}


def get_model(call: Call) -> JsonDict:
    return {"registered_model": registered_model(call.store.get_registered_model(_name(call)))}


def update_model(call: Call) -> JsonDict:
    name = _name(call)
    service.describe(call.store, name, None, v.string(call.body, "description") or "", reason=_reason(call))
    return {"registered_model": registered_model(call.store.get_registered_model(name))}


def rename_model(call: Call) -> JsonDict:
    name = _name(call)
    new_name = v.string(call.body, "new_name")
    if not new_name or not new_name.strip():
        raise v.missing("new_name")
    model = service.rename(call.store, name, model_name(new_name), reason=_reason(call))
    return {"registered_model": registered_model(model)}


def delete_model(call: Call) -> JsonDict:
    service.delete(call.store, _name(call), reason=_reason(call))
    return {}


def search_models(call: Call) -> JsonDict:
    body = call.body
    found, token = call.store.search_registered_models(
        filter_string=v.string(body, "filter") or None, max_results=v.max_results(body, 100, MAX_SEARCH_MODELS),
        order_by=[str(o) for o in v.array(body, "order_by")], page_token=v.string(body, "page_token") or None)
    return _paged("registered_models", [registered_model(m) for m in found], token)


def latest_versions(call: Call) -> JsonDict:
    stages = [str(s) for s in v.array(call.body, "stages")]
    found = call.store.get_latest_versions(_name(call), stages or None)
    return {"model_versions": [model_version(mv) for mv in found]} if found else {}


def set_model_tag(call: Call) -> JsonDict:
    value = v.text(call.body.get("value"), "value", MAX_TAG_VALUE_LENGTH)
    service.set_tag(call.store, _name(call), None, _key(call), value, reason=_reason(call))
    return {}


def delete_model_tag(call: Call) -> JsonDict:
    service.delete_tag(call.store, _name(call), None, _key(call), reason=_reason(call))
    return {}


# ---- aliases ----

def set_alias(call: Call) -> JsonDict:
    name = _name(call)
    alias = alias_name(_required_string(call.body, "alias"))
    service.set_alias(call.store, name, check_alias(alias), _version(call), reason=_reason(call))
    return {}


def delete_alias(call: Call) -> JsonDict:
    name = _name(call)
    alias = alias_name(_required_string(call.body, "alias"))
    if alias in call.store.get_registered_model(name).aliases:  # MLflow answers {} for an alias that is not set
        service.delete_alias(call.store, name, alias, reason=_reason(call))
    return {}


def get_by_alias(call: Call) -> JsonDict:
    name = _name(call)
    alias = alias_name(_required_string(call.body, "alias"))
    if alias.lower() == "latest":  # MLflow answers the newest version of any stage
        found = call.store.get_latest_versions(name)
        if not found:
            raise NotFound(f"Latest version not found for model {name}.")
        return {"model_version": model_version(max(found, key=lambda mv: mv.version))}
    return {"model_version": model_version(call.store.get_model_version_by_alias(name, alias))}


# ---- model versions ----

def _invalid_source(source: str, id_name: str) -> UsageError:
    return UsageError(f"Invalid model version source: '{source}'. The {id_name} request parameter must identify the "
                      "resource that contains the source.")


def _no_relative_parts(source: str) -> None:
    """mlflow.server.handlers._validate_non_local_source_contains_relative_paths: no '..', no NUL, however
    often the source was percent-encoded."""
    decoded = source
    while (once := unquote_plus(decoded)) != decoded:
        decoded = once
    path = re.sub(r"/+", "/", urlparse(decoded).path.rstrip("/"))
    if "\x00" in path or ".." in decoded.split("/") or (path and posixpath.normpath(path) != path):
        raise UsageError(f"Invalid model version source: '{source}'. If supplying a source as an http, https, local "
                         "file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided "
                         "without relative path references present. Please provide an absolute path.")


def _inside(uri: str, root: str | None) -> bool:
    if not root:
        return False
    a, b = urlparse(uri), urlparse(root)
    parts = [p for p in a.path.split("/") if p]
    root_parts = [p for p in b.path.split("/") if p]
    return (a.scheme, a.netloc) == (b.scheme, b.netloc) and bool(root_parts) and parts[:len(root_parts)] == root_parts


def _logged(call: Call, model_id: str, source: str) -> LoggedModelRecord:
    try:
        return call.store.get_logged_model(model_id)
    except NotFound:
        raise _invalid_source(source, "model_id") from None


def _source_run(call: Call, run_id: str, source: str) -> RunRecord:
    try:
        run = call.store.get_run(run_id)
    except NotFound:
        run = None
    if run is None or run.id != run_id:
        raise _invalid_source(source, "run_id")
    return run


def _check_source(call: Call, source: str, run_id: str | None, model_id: str | None,
                  ) -> tuple[str, str | None, str | None]:
    """MLflow's server-side checks of a new version's source (mlflow.server.handlers._create_model_version):
    a logged model's ``models:/m-<id>`` or artifacts with that model_id, a run's ``runs:/`` or artifacts with
    that run_id, another registered version; no local path, no relative parts. Returns (source, run_id,
    pointer): another version's source as its canonical ``models:/NAME/V``, and ``pointer`` the location of a
    source whose files the server does not hold (an s3:// URI, a version registered from one), else None."""
    parsed = urlparse(source)
    if parsed.scheme == "models":
        if parsed.netloc:
            raise UsageError(f"Invalid model version source: '{source}'. Registered model sources must use the "
                             "active model registry.")
        uri = parse(source)
        if uri.registered:
            other = resolve_version(call.store, uri)
            if (run_id and run_id != other.run_id) or (model_id and model_id != other.model_id):
                raise UsageError(f"Invalid model version source: '{source}'. The run_id and model_id request "
                                 "parameters must match the referenced model version.")
            pointer = None if other.files_sha256 else other.storage_location or other.source
            return f"models:/{other.name}/{other.version}", run_id or other.run_id, pointer
        if model_id and model_id != uri.model_id:
            raise _invalid_source(source, "model_id")
        return source, run_id or _logged(call, uri.model_id or "", source).source_run_id, None
    if parsed.scheme in ("", "file"):
        raise UsageError(f"Invalid model version source: '{source}'. To use a local path as a model version source, "
                         "the run_id request parameter has to be specified and the local path has to be contained "
                         "within the artifact directory of the run specified by the run_id.")
    _no_relative_parts(source)
    artifacts = parsed.scheme == "mlflow-artifacts" or "/mlflow-artifacts/artifacts" in parsed.path
    if model_id:
        model = _logged(call, model_id, source)
        if not artifacts or not _inside(source, model.artifact_location):
            raise _invalid_source(source, "model_id")
        return source, run_id or model.source_run_id, None
    if parsed.scheme == "runs":
        if parsed.netloc or not run_id or parsed.path.lstrip("/").split("/")[0] != run_id:
            raise _invalid_source(source, "run_id")
        _source_run(call, run_id, source)
    elif artifacts and (not run_id or not _inside(source, _source_run(call, run_id, source).artifact_uri)):
        raise _invalid_source(source, "run_id")
    return source, run_id, None if is_model_uri(source) else source


def create_version(call: Call) -> JsonDict:
    """A new version. Sources this server holds (a run's or a logged model's artifacts, another version) are
    registered by proj.registry, their files copied into the store by content; any other URI (s3://, gs://,
    http...) is recorded as MLflow records it, a pointer the server does not follow."""
    body = call.body
    name = _name(call)
    source, run_id, pointer = _check_source(call, _required_string(body, "source"),
                                            v.string(body, "run_id") or None, v.string(body, "model_id") or None)
    model_id = v.string(body, "model_id") or None
    fields: dict[str, Any] = {"tags": _tags(call), "description": v.string(body, "description") or None,
                              "run_link": v.string(body, "run_link") or None, "reason": _reason(call)}
    if pointer is None:
        version = service.register(call.store, source, name, run_id=run_id, model_id=model_id, create_model=False,
                                   artifacts_root=call.artifacts_root, **fields)
    else:
        call.store.get_registered_model(name)
        version = call.store.create_model_version(name, source, run_id=run_id, model_id=model_id,
                                                  storage_location=pointer, user=current_user(), **fields)
    return {"model_version": model_version(version)}


def get_version(call: Call) -> JsonDict:
    return {"model_version": model_version(call.store.get_model_version(_name(call), _version(call)))}


def update_version(call: Call) -> JsonDict:
    name, number = _name(call), _version(call)
    service.describe(call.store, name, number, v.string(call.body, "description") or "", reason=_reason(call))
    return {"model_version": model_version(call.store.get_model_version(name, number))}


def transition_stage(call: Call) -> JsonDict:
    name, number = _name(call), _version(call)
    stage = _required_string(call.body, "stage")
    archive = v.boolean(call.body, "archive_existing_versions", False)
    found = service.transition(call.store, name, number, stage, archive_existing=archive, reason=_reason(call))
    return {"model_version": model_version(found)}


def delete_version(call: Call) -> JsonDict:
    service.delete(call.store, _name(call), _version(call), reason=_reason(call))
    return {}


def _location(call: Call, mv: ModelVersionRecord) -> str:
    """Where a client downloads a version from: its own copy of the files, served read-only at
    ``mlflow-artifacts:/registry/<files_sha256>`` (so deleting its run or logged model later breaks nothing;
    `mlflow server` answers the source's artifact location instead); a pointer version: the pointer."""
    if mv.files_sha256:
        return f"mlflow-artifacts:/{REGISTRY_ROOT}/{mv.files_sha256}"
    if not is_model_uri(mv.source):
        return mv.storage_location or mv.source
    uri = parse(mv.source)
    if uri.registered:
        return _location(call, resolve_version(call.store, uri))
    if uri.kind == "logged":
        return call.store.get_logged_model(uri.model_id or "").artifact_location
    if mv.source.startswith("mlflow-artifacts:"):
        return mv.source
    base = (_source_run(call, uri.run_id or "", mv.source).artifact_uri or "").rstrip("/")
    return f"{base}/{uri.path}" if uri.path else base


def download_uri(call: Call) -> JsonDict:
    return {"artifact_uri": _location(call, call.store.get_model_version(_name(call), _version(call)))}


def search_versions(call: Call) -> JsonDict:
    body = call.body
    found, token = call.store.search_model_versions(
        filter_string=v.string(body, "filter") or None,
        max_results=v.max_results(body, 10_000, MAX_SEARCH_VERSIONS),
        order_by=[str(o) for o in v.array(body, "order_by")], page_token=v.string(body, "page_token") or None)
    return _paged("model_versions", [model_version(mv, aliases=False) for mv in found], token)


def set_version_tag(call: Call) -> JsonDict:
    value = v.text(call.body.get("value"), "value", MAX_TAG_VALUE_LENGTH)
    service.set_tag(call.store, _name(call), _version(call), _key(call), value, reason=_reason(call))
    return {}


def delete_version_tag(call: Call) -> JsonDict:
    service.delete_tag(call.store, _name(call), _version(call), _key(call), reason=_reason(call))
    return {}
