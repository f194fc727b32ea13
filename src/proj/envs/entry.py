"""The record of one cached environment, shared by the env cache listing and the Docker image inventory."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class EnvEntry:
    """One cached environment as ``proj env list`` shows it (any backend: metadata names it)."""

    key: str
    backend: str
    python: str
    size_bytes: int
    created: float
    last_used: float
    runs: int
    path: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
