"""The model registry's Python API: ``proj.registry.register(source, name)``, aliases, stages, tags, history, lineage."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from proj.errors import UsageError
from proj.registry import query as _query
from proj.registry import service as _service
from proj.registry import timeline as _history
from proj.registry import trace as _lineage
from proj.tracking.open import open_store, server_uri
from proj.tracking.registry_records import ModelVersionRecord, RegisteredModelRecord, RegistryEvent
from proj.tracking.store import RunStore

__all__ = ["register", "get_version", "get_model", "versions", "set_alias", "delete_alias", "transition_stage", "protect",
           "set_tag", "delete_tag", "describe", "rename", "delete", "history", "state_at", "lineage", "export"]


def local_store(tracking_uri: str | None, *, write: bool, create: bool = False) -> RunStore:
    """The local store the registry works on; a tracking server's registry is reached with MLflow's client
    for now (RestStore has no registry calls), so an http(s) URI is refused in one line."""
    remote = server_uri(tracking_uri)
    if remote is not None:
        raise UsageError(f"the registry commands work on a local store, not the tracking server {remote}: "
                         "use MLflow's client (MlflowClient, mlflow.register_model) against it, or run them "
                         "where the server's store is (--tracking-uri DIR)")
    return open_store(tracking_uri, create=create, write=write)


def _store(tracking_uri: str | None, write: bool) -> RunStore:
    return local_store(tracking_uri, write=write, create=write)


def register(source: str, name: str, *, description: str | None = None, tags: dict[str, str] | None = None,
             reason: str | None = None, tracking_uri: str | None = None) -> ModelVersionRecord:
    """Register ``source`` (``runs:/RUN/path``, ``RUN[/path]``, ``models:/m-<id>``, a registered version's URI or a
    local MLflow model directory) as the next version of ``name``, creating the model if needed."""
    return _service.register(_store(tracking_uri, True), source, name, description=description, tags=tags,
                             reason=reason)


def get_version(model_uri: str, *, tracking_uri: str | None = None) -> ModelVersionRecord:
    """The version ``models:/NAME/VERSION``, ``/STAGE``, ``/latest`` or ``@ALIAS`` names."""
    return _query.find(_store(tracking_uri, False), model_uri)


def get_model(name: str, *, tracking_uri: str | None = None) -> RegisteredModelRecord:
    return _store(tracking_uri, False).get_registered_model(name)


def versions(name: str, *, tracking_uri: str | None = None) -> list[ModelVersionRecord]:
    return _service.versions(_store(tracking_uri, False), name)


def set_alias(name: str, alias: str, version: int, *, reason: str | None = None, require_verdict: str | None = None,
              tracking_uri: str | None = None) -> ModelVersionRecord:
    return _service.set_alias(_store(tracking_uri, True), name, alias, int(version), reason=reason,
                              require_verdict=require_verdict)


def delete_alias(name: str, alias: str, *, reason: str | None = None, tracking_uri: str | None = None) -> None:
    _service.delete_alias(_store(tracking_uri, True), name, alias, reason=reason)


def transition_stage(name: str, version: int, stage: str, *, archive_existing: bool = False,
                     reason: str | None = None, tracking_uri: str | None = None) -> ModelVersionRecord:
    return _service.transition(_store(tracking_uri, True), name, int(version), stage,
                               archive_existing=archive_existing, reason=reason)


def protect(name: str, *, alias: str | None = None, stage: str | None = None, protected: bool = True,
            reason: str | None = None, tracking_uri: str | None = None) -> str:
    return _service.protect(_store(tracking_uri, True), name, alias=alias, stage=stage, protected=protected,
                            reason=reason)


def set_tag(name: str, key: str, value: str, *, version: int | None = None, reason: str | None = None,
            tracking_uri: str | None = None) -> None:
    _service.set_tag(_store(tracking_uri, True), name, version, key, value, reason=reason)


def delete_tag(name: str, key: str, *, version: int | None = None, reason: str | None = None,
               tracking_uri: str | None = None) -> None:
    _service.delete_tag(_store(tracking_uri, True), name, version, key, reason=reason)


def describe(name: str, text: str, *, version: int | None = None, reason: str | None = None,
             tracking_uri: str | None = None) -> None:
    _service.describe(_store(tracking_uri, True), name, version, text, reason=reason)


def rename(name: str, new_name: str, *, reason: str | None = None, tracking_uri: str | None = None) -> RegisteredModelRecord:
    return _service.rename(_store(tracking_uri, True), name, new_name, reason=reason)


def delete(name: str, *, version: int | None = None, reason: str | None = None, tracking_uri: str | None = None) -> None:
    _service.delete(_store(tracking_uri, True), name, version, reason=reason)


def history(name: str, *, until: float | str | None = None, tracking_uri: str | None = None) -> list[RegistryEvent]:
    """The model's events, oldest first, up to ``until`` (seconds, or a time as ``proj models history --at``)."""
    at = _history.parse_time(until) if isinstance(until, str) else until
    return _history.events(_store(tracking_uri, False), name, until=at)


def state_at(name: str, at: float | str, *, tracking_uri: str | None = None) -> _history.ModelState:
    """The model as it stood at ``at``: which version held each stage and alias."""
    moment = _history.parse_time(at) if isinstance(at, str) else at
    return _history.state_at(_store(tracking_uri, False), name, moment)


def lineage(model_uri: str, *, tracking_uri: str | None = None) -> dict[str, Any]:
    return _lineage.lineage(_store(tracking_uri, False), model_uri)


def export(model_uri: str, dest: str | Path, *, tracking_uri: str | None = None) -> Path:
    store = _store(tracking_uri, False)
    return _query.export_version(store, _query.find(store, model_uri), Path(dest).resolve())
