"""The run record as plain data. ``SCHEMA_VERSION`` versions both the SQLite layout and JSON output."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
SCHEDULED = "SCHEDULED"  # MLflow's fifth status: a client may create a run SCHEDULED; proj's runner never does
STATUSES = (RUNNING, FINISHED, FAILED, KILLED)
MLFLOW_STATUSES = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)
DEFAULT_EXPERIMENT = "Default"
DEFAULT_EXPERIMENT_ID = "0"  # MLflow's: a client that names no experiment logs to "0"
ACTIVE, DELETED = "active", "deleted"  # lifecycle stages of experiments, runs and logged models
# run_view_type of searches, as MLflow names them
ACTIVE_ONLY, DELETED_ONLY, ALL = "ACTIVE_ONLY", "DELETED_ONLY", "ALL"
VIEW_TYPES = (ACTIVE_ONLY, DELETED_ONLY, ALL)


def millis(seconds: float) -> int:
    """Seconds as MLflow's integer milliseconds, rounded half away from zero exactly as SQLite's ROUND does:
    the store computes the same number in SQL (fast history pages, time filters), and both must agree."""
    scaled = seconds * 1000
    return int(scaled + (0.5 if scaled >= 0 else -0.5))


def json_number(value: float) -> float | str:
    """A double as MLflow's JSON carries it (protobuf's writer): NaN and the infinities as the strings "NaN",
    "Infinity" and "-Infinity", every other value as itself."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


@dataclass(frozen=True)
class ParamRecord:
    key: str
    value: str  # exactly what was given (never shell-quoted)
    typed: Any  # the coerced value (resolved absolute path for ``path``)
    type: str
    source: str  # user, default, extra, logged


@dataclass(frozen=True)
class MetricPoint:
    key: str
    value: float
    step: int
    timestamp: float


@dataclass(frozen=True)
class NewRun:
    """What the runner knows when it creates the record (everything validated already)."""

    experiment: str
    name: str | None
    source: dict[str, Any]
    project_name: str | None
    entry_point: str
    command: str
    params: list[ParamRecord]
    tags: dict[str, str]
    env_choice: str
    reproduces: str | None = None  # the run this one re-runs (`proj reproduce`)
    env_backend: str = ""  # known before the build, so a run that failed building still shows it
    inputs: dict[str, Any] = field(default_factory=dict)  # fingerprints of path parameters
    request: str | None = None  # the run request as JSON, kept where the child cannot rewrite it


@dataclass
class RunRecord:
    id: str
    experiment: str
    name: str | None
    status: str
    start_time: float
    end_time: float | None
    user: str
    host: str
    pid: int | None
    source: dict[str, Any]
    project_name: str | None
    entry_point: str
    command: str
    exit_code: int | None = None
    failure_phase: str | None = None
    failure_reason: str | None = None
    env: dict[str, Any] = field(default_factory=dict)
    parent_run_id: str | None = None  # set on a child run: one of several MLflow runs the program opened
    run_dir: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    pid_start: str | None = None  # kernel start time of the owner pid (tells pid reuse apart)
    collected: bool = True  # False: its runner died and no command has collected it yet (tracking.view.presented)
    reproduces: str | None = None  # the run this one re-runs (`proj reproduce`); not a parent
    mlflow_run_id: str | None = None  # the MLflow run a child run (or the run itself) was ingested from
    params: list[ParamRecord] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricPoint] = field(default_factory=dict)  # latest point per key
    # MLflow's view of the run (the tracking server's protocol); every run has them, proj's own included.
    experiment_id: str = ""
    lifecycle_stage: str = ACTIVE
    artifact_uri: str = ""  # where the run's artifacts are, as MLflow clients resolve it
    datasets: list["RunInput"] = field(default_factory=list)  # log-inputs; filled by get_run only
    outputs: list["ModelOutput"] = field(default_factory=list)  # log-outputs; filled by get_run only

    @property
    def duration(self) -> float | None:
        return None if self.end_time is None else self.end_time - self.start_time

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration"] = self.duration
        return data


@dataclass(frozen=True)
class ChildRun:
    """One MLflow run the program opened besides the first top-level one, as read from MLflow's files."""

    parent_run_id: str
    mlflow_run_id: str
    name: str | None
    status: str
    start_time: float
    end_time: float | None
    failure_reason: str | None = None


def envelope(kind: str, data: Any) -> dict[str, Any]:
    """The one versioned JSON envelope every ``--json`` output uses."""
    return {"schema_version": SCHEMA_VERSION, "kind": kind, "data": data}


# A model as the run store keeps it: where it is, what it is, and the hash of every file.
@dataclass
class ModelRecord:
    run_id: str
    path: str  # relative to the run's artifacts directory, e.g. "model"
    flavors: list[str]
    size: int
    files: list[dict[str, Any]]  # {"path", "size", "sha256"}, relative to the model directory
    valid: bool
    reason: str | None = None  # why the model is invalid
    mlmodel: dict[str, Any] = field(default_factory=dict)  # the MLmodel content as written back
    env_source: str | None = None  # the lock format the env files were written from, if any
    origin: str = "run"  # "run" (written by the entry point) or "mlflow" (logged with mlflow)
    created: float = 0.0
    experiment: str = ""  # filled in when read back

    @property
    def ref(self) -> str:
        return f"{self.run_id}/{self.path}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ref": self.ref}


# ---- MLflow's entities, as the tracking server's protocol needs them (timestamps in seconds, as above) ----

@dataclass
class ExperimentRecord:
    id: str  # a decimal string, as MLflow's; "0" is the Default experiment
    name: str
    artifact_location: str
    lifecycle_stage: str = ACTIVE
    creation_time: float = 0.0
    last_update_time: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset as MLflow logs it (mlflow.log_input): identified in an experiment by (name, digest)."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class RunInput:
    dataset: DatasetRecord
    tags: dict[str, str] = field(default_factory=dict)  # e.g. mlflow.data.context = training


@dataclass(frozen=True)
class ModelOutput:
    model_id: str
    step: int = 0


# MLflow 3's LoggedModelStatus names
MODEL_PENDING, MODEL_READY, MODEL_FAILED = "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"
MODEL_STATUSES = (MODEL_PENDING, MODEL_READY, MODEL_FAILED)


@dataclass(frozen=True)
class ModelMetric:
    """A metric linked to a logged model (logged with model_id, or by the run that produced it)."""

    key: str
    value: float
    step: int
    timestamp: float
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass
class LoggedModelRecord:
    """An MLflow 3 logged model (``models:/m-...``): its own id, artifacts, tags, params and metrics."""

    model_id: str  # "m-" + 32 hex digits, as MLflow's
    experiment_id: str
    name: str
    artifact_location: str
    creation_time: float
    last_updated_time: float
    status: str = MODEL_PENDING
    status_message: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    lifecycle_stage: str = ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[ModelMetric] = field(default_factory=list)
