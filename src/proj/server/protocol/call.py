"""What a handler gets: the request's fields (JSON body or query parameters), path parameters, and the store."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from proj.tracking.store import RunStore

if TYPE_CHECKING:
    from proj.registry.sources import ArtifactsRoot

JsonDict = dict[str, Any]


@dataclass
class Call:
    body: dict[str, Any]
    store: RunStore
    path: dict[str, str] = field(default_factory=dict)
    size: int = 0  # bytes of the request body (log-batch has a size limit)
    # where the server keeps uploaded artifacts, a folder or a bucket (registering copies from there)
    artifacts_root: ArtifactsRoot | None = None


Handler = Callable[[Call], JsonDict]
