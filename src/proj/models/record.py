"""A model as the run store keeps it: where it is, what it is, and the hash of every file."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
