"""How a proj run looks in MLflow's conventions: the ``mlflow.*`` system tags any MLflow UI shows, and the
``proj.*`` tags that carry the rest of proj's record through the protocol (so a run recorded to a server,
proj's or MLflow's, reads back as the same RunRecord). The one home of these names: the server's JSON mapping
adds them to proj's runs, tracking.rest writes them and reads them back."""
from __future__ import annotations

import json
from typing import Any

from proj.tracking.records import RunRecord

# MLflow's system tags (mlflow.utils.mlflow_tags), as `mlflow run` sets them
RUN_NAME = "mlflow.runName"
USER = "mlflow.user"
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
GIT_COMMIT = "mlflow.source.git.commit"
GIT_BRANCH = "mlflow.source.git.branch"
GIT_REPO_URL = "mlflow.source.git.repoURL"
LEGACY_GIT_REPO_URL = "mlflow.gitRepoURL"
ENTRY_POINT = "mlflow.project.entryPoint"
PROJECT_ENV = "mlflow.project.env"
PROJECT_BACKEND = "mlflow.project.backend"
PARENT_RUN_ID = "mlflow.parentRunId"
LOG_MODEL_HISTORY = "mlflow.log-model.history"

# proj's own record, one tag per fact; JSON where the value is structured
PROJ_PREFIX = "proj."
PROJ_RUN = "proj.run"  # "1": this MLflow run is a proj run (what tells tracking.rest to read the rest)
PROJ_COMMAND = "proj.command"
PROJ_ENV = "proj.env"  # JSON: backend, key, lock digest, why it was chosen
PROJ_SOURCE = "proj.source"  # JSON: uri, kind, commit, branch, remote, dirty, ...
PROJ_PROJECT = "proj.project"
PROJ_EXIT_CODE = "proj.exit_code"
PROJ_FAILURE_PHASE = "proj.failure_phase"
PROJ_FAILURE_REASON = "proj.failure_reason"
PROJ_INPUTS = "proj.inputs"  # JSON: fingerprints of path parameters
PROJ_PARAM_TYPES = "proj.param_types"  # JSON: {key: [type, source, typed value]}
PROJ_REPRODUCES = "proj.reproduces"
PROJ_HOST = "proj.host"
PROJ_LOCAL_ID = "proj.local_run_id"  # the id of the run folder on the machine that ran it

# Where proj's own files of a run appear among its artifacts (the server serves them from the run folder and
# the store; tracking.rest uploads them there): the lock, the logs and the source's uncommitted patch.
PROJ_ARTIFACTS = "proj"

# The tag value limit MLflow enforces (server and client alike): longer values are cut, with a marker.
MAX_TAG_VALUE = 8000


def _cut(value: str) -> str:
    return value if len(value) <= MAX_TAG_VALUE else value[: MAX_TAG_VALUE - 14] + " ...(truncated)"


def _json(value: Any) -> str:
    return _cut(json.dumps(value, sort_keys=True, default=str))


def system_tags(run: RunRecord) -> dict[str, str]:
    """The ``mlflow.*`` and ``proj.*`` tags of a proj run, from its record. Tags the run logged itself win
    over these (callers merge ``{**system_tags(run), **run.tags}``)."""
    source = run.source or {}
    tags: dict[str, str] = {USER: run.user or "unknown"}
    if run.name:
        tags[RUN_NAME] = run.name
    if run.parent_run_id:
        tags[PARENT_RUN_ID] = run.parent_run_id
    if not run.entry_point and not run.command:  # a run an MLflow client opened: nothing of proj's to add
        return tags
    tags.update({SOURCE_TYPE: "PROJECT", PROJECT_BACKEND: "proj", PROJ_RUN: "1", PROJ_COMMAND: _cut(run.command),
                 ENTRY_POINT: run.entry_point})
    if source.get("uri") or source.get("dir"):
        tags[SOURCE_NAME] = _cut(str(source.get("uri") or source.get("dir")))
    if source.get("commit"):
        tags[GIT_COMMIT] = str(source["commit"])
    if source.get("branch"):
        tags[GIT_BRANCH] = str(source["branch"])
    if source.get("remote"):
        tags[GIT_REPO_URL] = tags[LEGACY_GIT_REPO_URL] = _cut(str(source["remote"]))
    if run.env.get("backend"):
        tags[PROJECT_ENV] = str(run.env["backend"])
    tags[PROJ_ENV] = _json(run.env)
    tags[PROJ_SOURCE] = _json(source)
    if run.project_name:
        tags[PROJ_PROJECT] = run.project_name
    if run.exit_code is not None:
        tags[PROJ_EXIT_CODE] = str(run.exit_code)
    if run.failure_phase:
        tags[PROJ_FAILURE_PHASE] = run.failure_phase
    if run.failure_reason:
        tags[PROJ_FAILURE_REASON] = _cut(run.failure_reason)
    if run.inputs:
        tags[PROJ_INPUTS] = _json(run.inputs)
    if run.params:
        tags[PROJ_PARAM_TYPES] = _json({p.key: [p.type, p.source, p.typed] for p in run.params})
    if run.reproduces:
        tags[PROJ_REPRODUCES] = run.reproduces
    if run.host:
        tags[PROJ_HOST] = run.host
    return tags
