"""What a handler gets: the request's fields (JSON body or query parameters), path parameters, and the store."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from proj.tracking.store import RunStore

JsonDict = dict[str, Any]


@dataclass
class Call:
    body: dict[str, Any]
    store: RunStore
    path: dict[str, str] = field(default_factory=dict)
    size: int = 0  # bytes of the request body (log-batch has a size limit)
    artifacts_root: Path | None = None  # where the server keeps uploaded artifacts (registering copies from there)


Handler = Callable[[Call], JsonDict]
