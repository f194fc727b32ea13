"""The rule table: for every route (its path below the API prefix, and method) what it names (experiment, run,
logged model, registered model, artifact path) in which request field, and the permission it needs; checked
before the handler runs, as MLflow's basic-auth app's before-request validators."""
from __future__ import annotations

import re
from dataclasses import dataclass

from proj.auth.permissions import EDIT, MANAGE, NO_PERMISSIONS, READ, Permission

# What a rule checks (``kind``):
EXPERIMENT = "experiment"  # the experiment id in ``field``
EXPERIMENT_NAME = "experiment_name"  # an experiment by name (get-by-name)
RUN = "run"  # the run in ``field``: its experiment's permission
RUNS = "runs"  # every run in the list ``field``
LOGGED_MODEL = "logged_model"  # the logged model in ``field`` (a path parameter or a request field)
MODEL = "registered_model"  # the registered model named in ``field``
VERSION = "model_version"  # a model version (``name`` and ``version``): its model, and the run it came from
ARTIFACT = "artifact"  # an mlflow-artifacts path in ``field`` (its run, logged model or registered files)
EXPERIMENT_IDS = "experiment_ids"  # a search over the experiments in ``field``: narrowed to the readable ones
FILTERED = "filtered"  # a search whose answer is filtered (``field``: the list in the answer)
CREATE = "create"  # creating an experiment or registered model: any user whose token is not restricted
RESOURCE = "resource"  # MLflow 3's users/permissions grant|revoke: resource_type and resource_id
ADMIN = "admin"  # admins only
SELF = "self"  # the user named in ``field``, or an admin
AUTHENTICATED = "authenticated"  # anyone authenticated

# What runs after the handler answered (``then``)
GRANT_CREATOR = "grant_creator"  # the creator gets MANAGE on what it created (as MLflow)
RENAME_MODEL = "rename_model"  # grants follow a registered model's rename


@dataclass(frozen=True)
class Rule:
    kind: str
    field: str | None = None
    need: Permission = READ
    then: str | None = None


_PREFIX = re.compile(r"^/(?:ajax-)?api/[23]\.0(?=/)")


def route_key(path: str) -> str:
    """A route's path without its API prefix: ``/api/2.0/mlflow/runs/get`` -> ``/mlflow/runs/get`` (the REST and
    the UI's ajax prefix share one rule)."""
    return _PREFIX.sub("", path, count=1)


_R, _E, _M = READ, EDIT, MANAGE

RULES: dict[tuple[str, str], Rule] = {
    # experiments
    ("/mlflow/experiments/create", "POST"): Rule(CREATE, None, _E, GRANT_CREATOR),
    ("/mlflow/experiments/get", "GET"): Rule(EXPERIMENT, "experiment_id", _R),
    ("/mlflow/experiments/get-by-name", "GET"): Rule(EXPERIMENT_NAME, "experiment_name", _R),
    ("/mlflow/experiments/search", "GET"): Rule(FILTERED, "experiments"),
    ("/mlflow/experiments/search", "POST"): Rule(FILTERED, "experiments"),
    ("/mlflow/experiments/update", "POST"): Rule(EXPERIMENT, "experiment_id", _E),
    ("/mlflow/experiments/delete", "POST"): Rule(EXPERIMENT, "experiment_id", _M),
    ("/mlflow/experiments/restore", "POST"): Rule(EXPERIMENT, "experiment_id", _M),
    ("/mlflow/experiments/set-experiment-tag", "POST"): Rule(EXPERIMENT, "experiment_id", _E),
    ("/mlflow/experiments/delete-experiment-tag", "POST"): Rule(EXPERIMENT, "experiment_id", _E),
    # runs
    ("/mlflow/runs/create", "POST"): Rule(EXPERIMENT, "experiment_id", _E),
    ("/mlflow/runs/get", "GET"): Rule(RUN, "run_id", _R),
    ("/mlflow/runs/update", "POST"): Rule(RUN, "run_id", _E),
    ("/mlflow/runs/delete", "POST"): Rule(RUN, "run_id", _M),
    ("/mlflow/runs/restore", "POST"): Rule(RUN, "run_id", _M),
    ("/mlflow/runs/set-tag", "POST"): Rule(RUN, "run_id", _E),
    ("/mlflow/runs/delete-tag", "POST"): Rule(RUN, "run_id", _E),
    ("/mlflow/runs/log-metric", "POST"): Rule(RUN, "run_id", _E),
    ("/mlflow/runs/log-parameter", "POST"): Rule(RUN, "run_id", _E),
    ("/mlflow/runs/log-batch", "POST"): Rule(RUN, "run_id", _E),
    ("/mlflow/runs/log-inputs", "POST"): Rule(RUN, "run_id", _E),
    ("/mlflow/runs/outputs", "POST"): Rule(RUN, "run_id", _E),
    ("/mlflow/runs/log-model", "POST"): Rule(RUN, "run_id", _E),
    ("/mlflow/runs/search", "GET"): Rule(EXPERIMENT_IDS, "experiment_ids"),
    ("/mlflow/runs/search", "POST"): Rule(EXPERIMENT_IDS, "experiment_ids"),
    ("/mlflow/metrics/get-history", "GET"): Rule(RUN, "run_id", _R),
    ("/mlflow/metrics/get-history-bulk-interval", "GET"): Rule(RUNS, "run_ids", _R),
    # logged models
    ("/mlflow/logged-models", "POST"): Rule(EXPERIMENT, "experiment_id", _E),
    ("/mlflow/logged-models/search", "POST"): Rule(EXPERIMENT_IDS, "experiment_ids"),
    ("/mlflow/logged-models/{model_id}", "GET"): Rule(LOGGED_MODEL, "model_id", _R),
    ("/mlflow/logged-models/{model_id}", "PATCH"): Rule(LOGGED_MODEL, "model_id", _E),
    ("/mlflow/logged-models/{model_id}", "DELETE"): Rule(LOGGED_MODEL, "model_id", _M),
    ("/mlflow/logged-models/{model_id}/tags", "PATCH"): Rule(LOGGED_MODEL, "model_id", _E),
    ("/mlflow/logged-models/{model_id}/tags/{tag_key:path}", "DELETE"): Rule(LOGGED_MODEL, "model_id", _E),
    ("/mlflow/logged-models/{model_id}/params", "POST"): Rule(LOGGED_MODEL, "model_id", _E),
    # the model registry
    ("/mlflow/registered-models/create", "POST"): Rule(CREATE, None, _E, GRANT_CREATOR),
    ("/mlflow/registered-models/get", "GET"): Rule(MODEL, "name", _R),
    ("/mlflow/registered-models/search", "GET"): Rule(FILTERED, "registered_models"),
    ("/mlflow/registered-models/update", "PATCH"): Rule(MODEL, "name", _E),
    ("/mlflow/registered-models/rename", "POST"): Rule(MODEL, "name", _M, RENAME_MODEL),
    ("/mlflow/registered-models/delete", "DELETE"): Rule(MODEL, "name", _M),
    ("/mlflow/registered-models/get-latest-versions", "GET"): Rule(MODEL, "name", _R, "filter:model_versions"),
    ("/mlflow/registered-models/get-latest-versions", "POST"): Rule(MODEL, "name", _R, "filter:model_versions"),
    ("/mlflow/registered-models/set-tag", "POST"): Rule(MODEL, "name", _E),
    ("/mlflow/registered-models/delete-tag", "DELETE"): Rule(MODEL, "name", _E),
    ("/mlflow/registered-models/alias", "POST"): Rule(MODEL, "name", _E),
    ("/mlflow/registered-models/alias", "DELETE"): Rule(MODEL, "name", _E),
    ("/mlflow/registered-models/alias", "GET"): Rule(MODEL, "name", _R, "filter:model_version"),
    ("/mlflow/model-versions/create", "POST"): Rule(MODEL, "name", _E),  # and READ on its source run
    ("/mlflow/model-versions/get", "GET"): Rule(VERSION, "name", _R),
    ("/mlflow/model-versions/update", "PATCH"): Rule(VERSION, "name", _E),
    ("/mlflow/model-versions/transition-stage", "POST"): Rule(VERSION, "name", _E),
    ("/mlflow/model-versions/delete", "DELETE"): Rule(VERSION, "name", _M),
    ("/mlflow/model-versions/get-download-uri", "GET"): Rule(VERSION, "name", _R),
    ("/mlflow/model-versions/search", "GET"): Rule(FILTERED, "model_versions"),
    ("/mlflow/model-versions/set-tag", "POST"): Rule(VERSION, "name", _E),
    ("/mlflow/model-versions/delete-tag", "DELETE"): Rule(VERSION, "name", _E),
    # artifacts (mlflow-artifacts, ListArtifacts, get-artifact, logged-model artifacts)
    ("/mlflow-artifacts/artifacts", "GET"): Rule(ARTIFACT, "path", _R),
    ("/mlflow-artifacts/artifacts/{path:path}", "GET"): Rule(ARTIFACT, "path", _R),
    ("/mlflow-artifacts/artifacts/{path:path}", "PUT"): Rule(ARTIFACT, "path", _E),
    ("/mlflow-artifacts/artifacts/{path:path}", "DELETE"): Rule(ARTIFACT, "path", _M),
    ("/mlflow/artifacts/list", "GET"): Rule(RUN, "run_id", _R),
    ("/get-artifact", "GET"): Rule(RUN, "run_id", _R),
    ("/mlflow/get-artifact", "GET"): Rule(RUN, "run_id", _R),
    ("/mlflow/logged-models/{model_id}/artifacts/directories", "GET"): Rule(LOGGED_MODEL, "model_id", _R),
    ("/mlflow/logged-models/{model_id}/artifacts/files", "GET"): Rule(LOGGED_MODEL, "model_id", _R),
    # proj's UI endpoints (server/ui/api.py)
    ("/proj/runs/table", "GET"): Rule(EXPERIMENT_IDS, "experiment_ids"),
    ("/proj/runs/keys", "GET"): Rule(EXPERIMENT_IDS, "experiment_ids"),
    ("/proj/runs/groups", "GET"): Rule(EXPERIMENT_IDS, "experiment_ids"),
    ("/proj/runs/export.csv", "GET"): Rule(EXPERIMENT_IDS, "experiment_ids"),
    ("/proj/experiments/summary", "GET"): Rule(EXPERIMENT_IDS, "experiment_ids"),
    ("/proj/metrics/sampled", "GET"): Rule(RUNS, "run_ids", _R),
    ("/proj/runs/compare", "GET"): Rule(RUNS, "run_ids", _R),
    ("/proj/runs/record", "GET"): Rule(RUN, "run_id", _R),
    ("/proj/runs/log", "GET"): Rule(RUN, "run_id", _R),
    ("/proj/runs/patch", "GET"): Rule(RUN, "run_id", _R),
    ("/proj/artifacts/preview", "GET"): Rule(RUN, "run_id", _R),
    ("/proj/registry/history", "GET"): Rule(VERSION, "name", _R),
    ("/proj/registry/lineage", "GET"): Rule(VERSION, "name", _R),
    # users and permissions (MLflow's basic-auth API)
    ("/mlflow/users/create", "POST"): Rule(ADMIN),
    ("/mlflow/users/get", "GET"): Rule(SELF, "username"),
    ("/mlflow/users/current", "GET"): Rule(AUTHENTICATED),
    ("/mlflow/users/list", "GET"): Rule(ADMIN),
    ("/mlflow/users/update-password", "PATCH"): Rule(SELF, "username"),
    ("/mlflow/users/update-admin", "PATCH"): Rule(ADMIN),
    ("/mlflow/users/delete", "DELETE"): Rule(ADMIN),
    ("/mlflow/users/permissions/grant", "POST"): Rule(RESOURCE, None, _M),
    ("/mlflow/users/permissions/revoke", "POST"): Rule(RESOURCE, None, _M),
    ("/mlflow/users/permissions/get", "GET"): Rule(SELF, "username"),
    ("/mlflow/users/permissions/list", "GET"): Rule(SELF, "username"),
    ("/mlflow/users/current/permissions", "GET"): Rule(AUTHENTICATED),
    ("/mlflow/experiments/permissions/create", "POST"): Rule(EXPERIMENT, "experiment_id", _M),
    ("/mlflow/experiments/permissions/get", "GET"): Rule(EXPERIMENT, "experiment_id", _M),
    ("/mlflow/experiments/permissions/update", "PATCH"): Rule(EXPERIMENT, "experiment_id", _M),
    ("/mlflow/experiments/permissions/delete", "DELETE"): Rule(EXPERIMENT, "experiment_id", _M),
    ("/mlflow/registered-models/permissions/create", "POST"): Rule(MODEL, "name", _M),
    ("/mlflow/registered-models/permissions/get", "GET"): Rule(MODEL, "name", _M),
    ("/mlflow/registered-models/permissions/update", "PATCH"): Rule(MODEL, "name", _M),
    ("/mlflow/registered-models/permissions/delete", "DELETE"): Rule(MODEL, "name", _M),
}

# Paths anyone may reach: health checks, the version, server-info (no secrets), the UI's page and static files
OPEN_PATHS = ("/health", "/version", "/", "/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info")
OPEN_PREFIXES = ("/static/",)
NO_RULE = Rule(ADMIN, None, NO_PERMISSIONS)  # a route without a rule: only admins (fail closed)


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def rule_for(path_template: str, method: str) -> Rule | None:
    return RULES.get((route_key(path_template), method.upper()))
