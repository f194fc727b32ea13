"""The model registry as plain data (MLflow's registered models and versions, and proj's event history).
Kept apart from tracking.records: only the registry, its CLI and the server import these."""
from __future__ import annotations

from dataclasses import dataclass, field

# MLflow's stages; "None" is a stage name, as MLflow spells it
STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED = "None", "Staging", "Production", "Archived"
STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)
VERSION_READY = "READY"  # MLflow's ModelVersionStatus: proj copies files at registration, so always READY


@dataclass
class ModelVersionRecord:
    name: str
    version: int  # auto-incremented per registered model, from 1, never reused
    creation_time: float  # seconds
    last_updated_time: float
    source: str  # as given: runs:/RUN/path, models:/m-..., a proj run's model ref, a local directory
    run_id: str | None = None
    model_id: str | None = None  # the MLflow 3 logged model, when the source was one
    user_id: str | None = None
    current_stage: str = STAGE_NONE
    description: str | None = None
    status: str = VERSION_READY
    status_message: str | None = None
    run_link: str | None = None
    storage_location: str | None = None  # where the version's own content-addressed copy of the files is
    files_sha256: str | None = None  # digest of the copied file set (name, size, sha256 of each file)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    deleted: bool = False


@dataclass
class RegisteredModelRecord:
    name: str
    creation_time: float
    last_updated_time: float
    description: str | None = None
    user_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)  # alias -> version
    latest_versions: list[ModelVersionRecord] = field(default_factory=list)  # the latest per stage
    protected: list[str] = field(default_factory=list)  # aliases and stages that need a reason to move


@dataclass(frozen=True)
class RegistryEvent:
    """One registry change, appended in the same transaction as the change itself; never updated."""

    id: int
    time: float
    user: str | None
    model: str  # the registered model's name at the time of the event
    version: int | None
    kind: str  # model_created, version_created, stage, alias_set, alias_deleted, tag_set, tag_deleted,
    #            description, renamed, model_deleted, version_deleted, protected, unprotected
    key: str | None = None  # the alias, tag key or stage the event is about
    old: str | None = None
    new: str | None = None
    reason: str | None = None
