"""Model URIs (``models:/NAME/VERSION``, ``/STAGE``, ``/latest``, ``@ALIAS``, ``models:/m-<id>``, ``runs:/RUN/path``),
parsed as MLflow parses them and resolved to a registered version."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from proj.errors import NotFound, UsageError
from proj.tracking.registry_records import ModelVersionRecord
from proj.tracking.registry_rules import canonical_stage
from proj.tracking.store import RunStore

LATEST = "latest"
# MLflow 3's logged-model ids; a models:/ URI with one path part is an id only in this shape
_LOGGED_ID = re.compile(r"^m-[0-9a-f]{32}$")
# what the MLflow client sends after resolving runs:/RUN/path: the run's artifact root and the path
_RUN_ARTIFACTS = re.compile(r"^mlflow-artifacts:/+(?P<exp>[^/]+)/(?P<run>[0-9a-f]{32})/artifacts(?:/(?P<path>.*))?$")
_MODEL_ARTIFACTS = re.compile(r"^mlflow-artifacts:/+(?P<exp>[^/]+)/models/(?P<id>m-[0-9a-f]{32})/artifacts/?$")


@dataclass(frozen=True)
class ModelUri:
    """One parsed model URI; ``kind`` is version, stage, latest, alias (a registered model's), logged (an MLflow 3
    logged model) or run (a run's artifact folder)."""

    kind: str
    text: str
    name: str | None = None
    version: int | None = None
    stage: str | None = None
    alias: str | None = None
    model_id: str | None = None
    run_id: str | None = None
    path: str = ""

    @property
    def registered(self) -> bool:
        return self.kind in ("version", "stage", "latest", "alias")


def improper(uri: str) -> UsageError:
    """MLflow's message for a models:/ URI it cannot read, with proj's other forms named."""
    return UsageError(f"Not a proper models:/ URI: {uri}. Models URIs must be of the form 'models:/name/suffix' or "
                      "'models:/name@alias' where suffix is a version, stage, or the string 'latest' and where alias "
                      "is a registered model alias. Only one of suffix or alias can be defined at a time "
                      "(or models:/m-<id> for a logged model, runs:/RUN/path for a run's model)")


def is_model_uri(text: str) -> bool:
    return text.startswith(("models:", "runs:", "mlflow-artifacts:"))


def parse(uri: str) -> ModelUri:
    """Parse ``uri``; UsageError (MLflow's message) when it is not one of the forms."""
    if uri.startswith("runs:"):
        return _parse_runs(uri)
    if uri.startswith("mlflow-artifacts:"):
        return _parse_artifacts(uri)
    parsed = urlparse(uri, allow_fragments=False)
    if parsed.scheme != "models" or parsed.netloc or not parsed.path.startswith("/") or len(parsed.path) <= 1:
        raise improper(uri)
    parts = parsed.path.lstrip("/").split("/")
    if len(parts) > 2 or not parts[0].strip():
        raise improper(uri)
    if len(parts) == 2:
        return _suffixed(uri, parts[0], parts[1])
    if "@" in parts[0]:
        name, _, alias = parts[0].rpartition("@")
        if not name.strip() or not alias.strip():
            raise improper(uri)
        return ModelUri("alias", uri, name=name, alias=alias)
    if not _LOGGED_ID.match(parts[0]):  # MLflow reads it as a logged-model id that cannot exist: say which forms work
        raise improper(uri)
    return ModelUri("logged", uri, model_id=parts[0])


def _suffixed(uri: str, name: str, suffix: str) -> ModelUri:
    if not suffix.strip():
        raise improper(uri)
    if suffix.isdigit():
        return ModelUri("version", uri, name=name, version=int(suffix))
    if suffix.lower() == LATEST:
        return ModelUri("latest", uri, name=name)
    return ModelUri("stage", uri, name=name, stage=canonical_stage(suffix))


def _parse_runs(uri: str) -> ModelUri:
    parsed = urlparse(uri, allow_fragments=False)
    run_id, _, path = parsed.path.lstrip("/").partition("/")
    if parsed.netloc or not run_id:
        raise UsageError(f"Not a proper runs:/ URI: {uri}. "
                         "Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'")
    return ModelUri("run", uri, run_id=run_id, path=unquote(path).strip("/"))


def _parse_artifacts(uri: str) -> ModelUri:
    """The proxied-artifact URI of a run's folder or a logged model (the client's resolved runs:/ source)."""
    run = _RUN_ARTIFACTS.match(uri)
    if run:
        return ModelUri("run", uri, run_id=run["run"], path=unquote(run["path"] or "").strip("/"))
    model = _MODEL_ARTIFACTS.match(uri)
    if model:
        return ModelUri("logged", uri, model_id=model["id"])
    raise UsageError(f"Invalid model version source: '{uri}': an mlflow-artifacts source must name a run's "
                     "artifacts (mlflow-artifacts:/<experiment>/<run>/artifacts/<path>) or a logged model's")


def resolve_version(store: RunStore, uri: ModelUri) -> ModelVersionRecord:
    """The registered version a registry URI names (NotFound with MLflow's messages)."""
    assert uri.name is not None, "resolve_version takes registry URIs only"
    if uri.kind == "version":
        return store.get_model_version(uri.name, uri.version or 0)
    if uri.kind == "alias":
        return store.get_model_version_by_alias(uri.name, uri.alias or "")
    stages = [uri.stage] if uri.kind == "stage" and uri.stage else None
    latest = store.get_latest_versions(uri.name, stages)
    if not latest:
        where = f" and stage '{uri.stage}'" if uri.kind == "stage" else ""
        raise NotFound(f"No versions of model with name '{uri.name}'{where} found")
    return max(latest, key=lambda v: v.version)
