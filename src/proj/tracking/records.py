"""The run record as plain data. ``SCHEMA_VERSION`` versions both the SQLite layout and JSON output."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1
RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
STATUSES = (RUNNING, FINISHED, FAILED, KILLED)
DEFAULT_EXPERIMENT = "Default"


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
