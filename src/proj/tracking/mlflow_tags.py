"""How a proj run looks in MLflow's conventions: the ``mlflow.*`` system tags any MLflow UI shows, and the
``proj.*`` tags that carry the rest of proj's record through the protocol (so a run recorded to a server,
proj's or MLflow's, reads back as the same RunRecord). The one home of these names: the server's JSON mapping
adds them to proj's runs, tracking.rest writes them and reads them back."""
from __future__ import annotations

import json
from typing import Any

from proj.paths import safe_name, unsafe_reason
from proj.tracking.records import MetricPoint, ParamRecord, RunRecord

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
PROJ_REQUEST_SHA256 = "proj.request_sha256"  # of the run request uploaded as proj/request.json (reproduce)

# Where proj's own files of a run appear among its artifacts (the server serves them from the run folder and
# the store; tracking.rest uploads them there): the lock, the logs and the source's uncommitted patch.
PROJ_ARTIFACTS = "proj"



def lock_artifact_name(lock_format: str) -> str:
    """The file name a run's lock has under ``proj/``: its format's name (``pylock.toml``, ``pip-freeze``), as
    proj server serves it and tracking.rest uploads it; a format name that is not a safe file name, a safe one."""
    return lock_format if unsafe_reason(lock_format) is None and "/" not in lock_format else safe_name(lock_format)

# The tag value limit MLflow enforces (server and client alike): longer values are cut, with a marker.
MAX_TAG_VALUE = 8000


def cut(value: str) -> str:
    """``value`` within MLflow's tag value limit."""
    return value if len(value) <= MAX_TAG_VALUE else value[: MAX_TAG_VALUE - 14] + " ...(truncated)"


def json_tag(value: Any) -> str:
    """A structured value as a tag: JSON, within the limit."""
    return cut(json.dumps(value, sort_keys=True, default=str))



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
    tags.update({SOURCE_TYPE: "PROJECT", PROJECT_BACKEND: "proj", PROJ_RUN: "1", PROJ_COMMAND: cut(run.command),
                 ENTRY_POINT: run.entry_point})
    if source.get("uri") or source.get("dir"):
        tags[SOURCE_NAME] = cut(str(source.get("uri") or source.get("dir")))
    if source.get("commit"):
        tags[GIT_COMMIT] = str(source["commit"])
    if source.get("branch"):
        tags[GIT_BRANCH] = str(source["branch"])
    if source.get("remote"):
        tags[GIT_REPO_URL] = tags[LEGACY_GIT_REPO_URL] = cut(str(source["remote"]))
    if run.env.get("backend"):
        tags[PROJECT_ENV] = str(run.env["backend"])
    tags[PROJ_ENV] = json_tag(run.env)
    tags[PROJ_SOURCE] = json_tag(source)
    if run.project_name:
        tags[PROJ_PROJECT] = run.project_name
    if run.exit_code is not None:
        tags[PROJ_EXIT_CODE] = str(run.exit_code)
    if run.failure_phase:
        tags[PROJ_FAILURE_PHASE] = run.failure_phase
    if run.failure_reason:
        tags[PROJ_FAILURE_REASON] = cut(run.failure_reason)
    if run.inputs:
        tags[PROJ_INPUTS] = json_tag(run.inputs)
    if run.params:
        tags[PROJ_PARAM_TYPES] = json_tag({p.key: [p.type, p.source, p.typed] for p in run.params})
    if run.reproduces:
        tags[PROJ_REPRODUCES] = run.reproduces
    if run.host:
        tags[PROJ_HOST] = run.host
    return tags


# Tags system_tags writes: read back into RunRecord fields, so they are not the run's own tags.
_SYSTEM = frozenset({RUN_NAME, USER, SOURCE_NAME, SOURCE_TYPE, GIT_COMMIT, GIT_BRANCH, GIT_REPO_URL, LEGACY_GIT_REPO_URL,
                     ENTRY_POINT, PROJECT_ENV, PROJECT_BACKEND, PARENT_RUN_ID, LOG_MODEL_HISTORY})


def _loads(text: str | None, default: Any) -> Any:
    """A JSON tag; one cut at the tag limit (or not JSON) reads as ``default``."""
    try:
        value = json.loads(text) if text else default
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def record_from_mlflow(run: dict[str, Any], experiment: str = "") -> RunRecord:
    """The RunRecord of a run as MLflow's REST API returns it (``{"info", "data"}``): the inverse of
    ``system_tags`` for a proj run; a run no proj runner made reads as a plain MLflow run (no command)."""
    info, data = run.get("info", {}), run.get("data", {})
    tags = {t["key"]: t.get("value", "") for t in data.get("tags", [])}
    proj = tags.get(PROJ_RUN) == "1"
    types = _loads(tags.get(PROJ_PARAM_TYPES), {}) if proj else {}
    params = []
    for p in data.get("params", []):
        kind, source, typed = (types.get(p["key"]) or ["string", "logged", p.get("value", "")])[:3]
        params.append(ParamRecord(p["key"], p.get("value", ""), typed, kind, source))
    metrics = {m["key"]: MetricPoint(m["key"], float(m.get("value", 0)), int(m.get("step", 0)),
                                     int(m.get("timestamp", 0)) / 1000) for m in data.get("metrics", [])}
    end = info.get("end_time")
    exit_code = tags.get(PROJ_EXIT_CODE)
    source = _loads(tags.get(PROJ_SOURCE), {}) if proj else {}
    if not source and tags.get(GIT_COMMIT):
        source = {"commit": tags[GIT_COMMIT], "uri": tags.get(SOURCE_NAME)}
    return RunRecord(
        id=info.get("run_id", ""), experiment=experiment or str(info.get("experiment_id", "")),
        name=info.get("run_name") or tags.get(RUN_NAME), status=info.get("status", "RUNNING"),
        start_time=int(info.get("start_time", 0)) / 1000, end_time=None if end is None else int(end) / 1000,
        user=info.get("user_id") or tags.get(USER, ""), host=tags.get(PROJ_HOST, ""), pid=None, source=source,
        project_name=tags.get(PROJ_PROJECT), entry_point=tags.get(ENTRY_POINT, ""),
        command=tags.get(PROJ_COMMAND, ""),
        exit_code=int(exit_code) if exit_code and exit_code.lstrip("-").isdigit() else None,
        failure_phase=tags.get(PROJ_FAILURE_PHASE), failure_reason=tags.get(PROJ_FAILURE_REASON),
        env=_loads(tags.get(PROJ_ENV), {}) if proj else {}, parent_run_id=tags.get(PARENT_RUN_ID),
        inputs=_loads(tags.get(PROJ_INPUTS), {}) if proj else {}, reproduces=tags.get(PROJ_REPRODUCES),
        mlflow_run_id=info.get("run_id"), params=params,
        tags={k: v for k, v in tags.items() if k not in _SYSTEM and not k.startswith(PROJ_PREFIX)},
        metrics=metrics, experiment_id=str(info.get("experiment_id", "")),
        lifecycle_stage=info.get("lifecycle_stage", "active"), artifact_uri=info.get("artifact_uri", ""))
